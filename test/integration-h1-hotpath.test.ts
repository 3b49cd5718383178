// Nasty upstream answers through the gateway, against the h1 client's hot-path shortcuts
// (worker/h1-client.ts): a status line that is 'HTTP/1.1 200 OK' plus a NUL, a bare CR at the
// end of a value, one name in two cases, and `Keep-Alive: timeout=0` (the remembered hint).
import t from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { parseResponses, type RawResponse, rawConnection } from './helpers/raw-http.js';

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
/**
 * An answer of many headers: the gateway writes the status line, `server` and every relayed
 * header in one uWS call, joined by CRLF (worker/uws-io.ts writeProxiedHead). Lines as
 * [name as sent, value as sent]; bytes above 0x7f are latin1 (0xe9) and UTF-8 (0xc3 0xa9).
 */
const MANY: [string, string][] = [
  ['Content-Type', 'text/plain; charset=utf-8'],
  ['Set-Cookie', 'a=1; Path=/'],
  ['X-Tab', 'a\tb'],
  ['set-cookie', 'b=2'],
  ['X-Empty', ''],
  ['X-Latin1', 'caf\u00e9'],
  ['X-Utf8', 'caf\u00c3\u00a9'],
  ['ETAG', '"v1"'],
  ['Cache-Control', 'no-cache'],
  ['X-Long', 'L'.repeat(4000)],
  ['SET-COOKIE', 'c=3'],
  ['Vary', 'Accept'],
];
const MANY_HEAD = `HTTP/1.1 200 OK\r\n${MANY.map(([n, v]) => `${n}: ${v}\r\n`).join('')}content-length: 2\r\n\r\n`;

const up = await startHostileUpstream((req) => {
  switch (req.target) {
    case '/nul-status':
      return { chunks: ['HTTP/1.1 200 OK\0\r\ncontent-length: 2\r\n\r\nok'], after: 'keep' };
    case '/cr-value':
      return {
        chunks: ['HTTP/1.1 200 OK\r\nx-a: 1\r\r\ncontent-length: 2\r\n\r\nok'],
        after: 'keep',
      };
    case '/two-cases':
      return {
        chunks: ['HTTP/1.1 200 OK\r\nX-Dup: 1\r\nx-dup: 2\r\ncontent-length: 2\r\n\r\nok'],
        after: 'keep',
      };
    case '/zero':
      return {
        chunks: ['HTTP/1.1 200 OK\r\nkeep-alive: timeout=0\r\ncontent-length: 2\r\n\r\nok'],
        after: 'keep',
      };
    case '/size/1':
    case '/size/1024':
    case '/size/16384':
    case '/size/60000': {
      const size = Number(req.target.slice(6));
      const body = Buffer.alloc(size, 0x61);
      for (let i = 0; i < size; i += 997) body[i] = 0x30 + (i % 10);
      return {
        chunks: [
          Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`), body]),
        ],
        after: 'keep',
      };
    }
    case '/many':
      return {
        chunks: [Buffer.concat([Buffer.from(MANY_HEAD, 'latin1'), Buffer.from('ok')])],
        after: 'keep',
      };
    case '/cr-mid-value':
      return {
        chunks: ['HTTP/1.1 200 OK\r\nx-a: 1\rx-injected: yes\r\ncontent-length: 2\r\n\r\nok'],
        after: 'keep',
      };
    case '/nul-value':
      return {
        chunks: ['HTTP/1.1 200 OK\r\nx-a: 1\0x\r\ncontent-length: 2\r\n\r\nok'],
        after: 'keep',
      };
    case '/lf-in-reason':
      return { chunks: ['HTTP/1.1 200 O\rK\r\ncontent-length: 2\r\n\r\nok'], after: 'keep' };
    default:
      return { chunks: [OK], after: 'keep' };
  }
});

const gw: RunningGateway = await startGateway({
  // One edge: every request below goes through the same upstream pool.
  config: { num_instances: 1 },
  routes: `routes:
  - prefix: /h
    target: ${up.origin}
    secure: false
`,
});
t.teardown(async () => {
  await gw.stop();
  await up.close();
});

/** GETs `paths` one after another on one client connection. */
async function getAll(paths: string[]): Promise<RawResponse[]> {
  const socket = await rawConnection(gw.port);
  const got: RawResponse[] = [];
  let data: Buffer = Buffer.alloc(0);
  for (const path of paths) {
    socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        data = Buffer.concat([data, d]);
        const { responses, rest } = parseResponses(data, ['GET']);
        const res = responses[0];
        if (res === undefined) return;
        socket.off('data', onData);
        data = rest;
        got.push(res);
        resolve();
      };
      socket.on('data', onData);
    });
  }
  socket.destroy();
  return got;
}

t.test('malformed heads: 502, and the route still serves', async (t) => {
  const got = await getAll(['/h/nul-status', '/h/plain', '/h/cr-value', '/h/plain']);
  t.same(
    got.map((g) => g.status),
    [502, 200, 502, 200],
  );
});

t.test('one header name in two cases reaches the client with both values', async (t) => {
  const [got] = await getAll(['/h/two-cases']);
  t.equal(got?.status, 200);
  t.same(got?.headers.get('x-dup'), ['1', '2']);
});

t.test('after Keep-Alive: timeout=0 the next request goes on a new connection', async (t) => {
  const before = up.requests.length;
  const got = await getAll(['/h/plain', '/h/plain', '/h/zero', '/h/plain']);
  t.same(
    got.map((g) => g.status),
    [200, 200, 200, 200],
  );
  const conns = up.requests.slice(before).map((r) => r.connection);
  t.equal(conns[1], conns[2], 'a plain answer: connection reused');
  t.not(conns[3], conns[2], 'timeout=0: not reused');
});

t.test('many headers: every line relayed byte for byte, in order, server first', async (t) => {
  const socket = await rawConnection(gw.port);
  socket.write('GET /h/many HTTP/1.1\r\nhost: x\r\n\r\n');
  let data: Buffer = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      const end = data.indexOf('\r\n\r\n');
      if (end !== -1 && data.length >= end + 4 + 2) resolve();
    });
  });
  socket.destroy();
  const end = data.indexOf('\r\n\r\n');
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  t.equal(lines[0], 'HTTP/1.1 200 OK');
  t.equal(lines[1], 'server: ProxyAuth', 'server right after the status line');
  const relayed = lines.filter((l) =>
    /^(?:content-type|set-cookie|x-[a-z0-9]+|etag|cache-control|vary):/.test(l),
  );
  // Repeated names are grouped in order of first appearance (one key per name), values in order.
  const expected: string[] = [];
  const seen = new Set<string>();
  for (const [name] of MANY) {
    const lower = name.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    for (const [n, v] of MANY) if (n.toLowerCase() === lower) expected.push(`${lower}: ${v}`);
  }
  t.same(relayed, expected, 'the same lines, bytes above 0x7f unchanged');
  t.equal(data.subarray(end + 4, end + 6).toString(), 'ok');
  t.notOk(
    lines.some((l) => l === '' || /\r|\n/.test(l)),
    'no empty or broken line in the head',
  );
});

t.test('a CR or NUL inside a value, or a CR in the reason: 502, nothing injected', async (t) => {
  const got = await getAll([
    '/h/cr-mid-value',
    '/h/plain',
    '/h/nul-value',
    '/h/plain',
    '/h/lf-in-reason',
  ]);
  t.same(
    got.map((g) => g.status),
    [502, 200, 502, 200, 502],
  );
  for (const g of got) t.notOk(g.headers.has('x-injected'), 'no injected header');
});

t.test(
  'a body read whole at once reaches a slow client intact, the connection reused',
  async (t) => {
    // The relay ends such an answer with one uWS end() (worker/uws-io.ts endProxiedWith) instead
    // of tryEnd: the bytes must be the same, whatever the client's pace.
    const socket = await rawConnection(gw.port);
    const sizes = [1, 1024, 16384, 60000];
    let data: Buffer = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
    });
    for (const size of sizes) {
      socket.pause();
      socket.write(`GET /h/size/${size} HTTP/1.1\r\nhost: x\r\n\r\n`);
      await new Promise((r) => setTimeout(r, 300));
      socket.resume();
      const deadline = Date.now() + 5000;
      for (;;) {
        const { responses } = parseResponses(data, ['GET']);
        if (responses.length === 1) break;
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const { responses, rest } = parseResponses(data, ['GET']);
      data = rest;
      const res = responses[0];
      t.equal(res?.status, 200, `${size} B: answered`);
      const expected = Buffer.alloc(size, 0x61);
      for (let i = 0; i < size; i += 997) expected[i] = 0x30 + (i % 10);
      t.ok(res?.body.equals(expected), `${size} B: the bytes intact`);
      t.equal(rest.length, 0, `${size} B: nothing more`);
    }
    socket.destroy();
  },
);

// What the own upstream client (worker/h1-client.ts) sends, and when it stops, under clients
// that push the edges of HTTP/1.1 (pipelining is uWS's known limit: not here): bodies on GET,
// HEAD, DELETE and OPTIONS, odd header values, chunked uploads, uploads and downloads the
// client abandons, uploads the upstream refuses early, and upstreams that close each
// connection right after answering.
import t from 'tap';
import { login, type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';
import { type HostileRequest, startHostileUpstream } from './helpers/hostile-upstream.js';
import { rawConnection, rawExchange } from './helpers/raw-http.js';

function headerOf(req: HostileRequest, name: string): string | undefined {
  return req.headers.find(([n]) => n === name)?.[1];
}

function answer(body: string, status = '200 OK'): string {
  return `HTTP/1.1 ${status}\r\ncontent-length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;
}

/** What the upstream tells about a request: user, request id, method and body. */
function describe(req: HostileRequest): string {
  return `${headerOf(req, 'x-user') ?? '-'} ${headerOf(req, 'x-req') ?? '-'} ${req.method} ${req.body.toString('latin1')}`;
}

const up = await startHostileUpstream((req) => {
  const [, kind] = req.target.split('/');
  switch (kind) {
    case 'jitter':
      // Answers out of step with arrival: later requests may be answered sooner.
      return { chunks: [{ data: answer(describe(req)), delayMs: Math.floor(Math.random() * 15) }] };
    case 'drip':
      return {
        chunks: [
          'HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n',
          ...Array.from({ length: 50 }, () => ({ data: 'x'.repeat(100), delayMs: 50 })),
        ],
      };
    case 'refuse-reset':
      return {
        chunks: [answer('too big', '413 Payload Too Large')],
        readBody: false,
        after: 'destroy',
      };
    case 'close-after':
      // Answers, then closes the connection (no `Connection: close` said).
      return { chunks: [answer(describe(req))], after: 'end' };
    default:
      return { chunks: [answer(describe(req))] };
  }
});

const gw: RunningGateway = await startGateway({
  users: [{ username: 'ann', password: 'ann-password' }],
  config: { client_timeout: 3000 },
  routes: `routes:
  - prefix: /s
    target: ${up.origin}
  - prefix: /p
    target: ${up.origin}
    secure: false
`,
});
const ann = await login(gw.url, 'ann', 'ann-password');
t.teardown(async () => {
  await gw.stop();
  await up.close();
});

t.test(
  'a body on GET, HEAD, DELETE, OPTIONS goes upstream on a connection used once',
  async (t) => {
    // The body is a whole request: a backend that ignores bodies there would read it as one.
    const smuggled = 'GET /p/smuggled HTTP/1.1\r\nhost: x\r\nx-user: admin\r\n\r\n';
    for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
      const before = up.requests.length;
      const result = await rawExchange(
        gw.port,
        [
          `${method} /p/body HTTP/1.1\r\nhost: x\r\ncontent-length: ${smuggled.length}\r\n\r\n${smuggled}`,
        ],
        { methods: [method], waitMs: 500 },
      );
      t.equal(result.responses[0]?.status, 200, `${method}: answered`);
      const seen = up.requests.slice(before);
      t.equal(seen.length, 1, `${method}: one request upstream`);
      const req = seen[0]!;
      t.equal(headerOf(req, 'connection'), 'close', `${method}: sent with connection: close`);
      t.equal(req.body.toString('latin1'), smuggled, `${method}: the body as the body`);
      t.ok(
        await waitFor(() => up.connections[req.connection]?.closed !== undefined, 1000),
        `${method}: that connection is not reused`,
      );
    }
    t.notOk(
      up.requests.some((r) => r.target === '/smuggled'),
      'nothing smuggled',
    );
  },
);

t.test('header values pass as sent; identity headers are the gateway’s', async (t) => {
  const many = Array.from({ length: 60 }, (_, i) => `x-h${i}: v${i}\r\n`).join('');
  const long = 'L'.repeat(3000);
  const head =
    `GET /s/headers HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ann}\r\n` +
    `x-user: admin\r\nx-user-roles: root\r\nx-forwarded-for: 6.6.6.6\r\n` +
    `x-utf8: caf\u00c3\u00a9!\r\nx-long: ${long}\r\n${many}\r\n`;
  const before = up.requests.length;
  const result = await rawExchange(gw.port, [Buffer.from(head, 'latin1')], { waitMs: 500 });
  t.equal(result.responses[0]?.status, 200);
  const req = up.requests[before]!;
  t.same(
    req.headers.filter(([n]) => n === 'x-user').map(([, v]) => v),
    ['ann'],
    'one x-user, the token’s',
  );
  t.notOk(
    req.headers.some(([, v]) => v === 'root' || v === '6.6.6.6'),
    'client claims dropped',
  );
  t.equal(
    headerOf(req, 'x-utf8'),
    'caf\u00c3\u00a9!',
    'UTF-8 bytes as sent (uWS strips them at a value’s end)',
  );
  t.equal(headerOf(req, 'x-long'), long);
  t.equal(req.headers.filter(([n]) => n.startsWith('x-h')).length, 60, 'every header');
  t.notOk(headerOf(req, 'authorization'), 'the gateway’s token stays at the gateway');
});

t.test('a chunked upload goes upstream chunked, its bytes intact', async (t) => {
  const before = up.requests.length;
  const result = await rawExchange(
    gw.port,
    [
      'POST /p/upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n',
      // Neither extensions nor trailers: uWS refuses them (README, Known limits).
      '5\r\nhello\r\n',
      '6\r\n world\r\n0\r\n\r\n',
    ],
    { gapMs: 50, waitMs: 500 },
  );
  t.equal(result.responses[0]?.body.toString(), '- - POST hello world');
  const req = up.requests[before]!;
  t.equal(headerOf(req, 'transfer-encoding'), 'chunked');
  t.notOk(headerOf(req, 'content-length'));
});

t.test(
  'a client that leaves mid-upload: the upstream connection closes, no request completes',
  async (t) => {
    const before = up.requests.length;
    const socket = await rawConnection(gw.port);
    socket.on('error', () => {});
    socket.write('POST /p/upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n');
    socket.write(Buffer.alloc(200_000, 97));
    // The connection carrying it (a new one, or an idle one reused): it holds a request cut short.
    const carrying = () => up.connections.find((c) => c.closed === undefined && c.pending() > 0);
    t.ok(await waitFor(() => carrying() !== undefined, 1000), 'the upload reached the upstream');
    const carrier = carrying()!;
    socket.destroy();
    t.ok(await waitFor(() => carrier.closed === 'client', 1000), 'the gateway closed it');
    t.equal(up.requests.length, before, 'no request completed upstream');
  },
);

t.test('a client that leaves mid-download: the upstream connection closes at once', async (t) => {
  const socket = await rawConnection(gw.port);
  socket.on('error', () => {});
  let got = 0;
  socket.on('data', (d: Buffer) => {
    got += d.length;
  });
  socket.write('GET /p/drip HTTP/1.1\r\nhost: x\r\n\r\n');
  t.ok(await waitFor(() => got > 200, 2000), 'the download started');
  // The connection it came on: a new one, or an idle one reused.
  const drip = up.requests.findLast((r) => r.target === '/drip');
  const carrier = up.connections[drip?.connection ?? -1];
  t.ok(carrier, 'the upstream got it');
  socket.destroy();
  const left = performance.now();
  t.ok(await waitFor(() => carrier?.closed === 'client', 1000), 'the gateway closed it');
  t.ok(performance.now() - left < 500, 'at once');
});

t.test(
  'an upload the upstream refuses early, then resets: the refusal or a 502, at once',
  async (t) => {
    for (let i = 0; i < 2; i++) {
      const result = await rawExchange(
        gw.port,
        [
          'POST /p/refuse-reset HTTP/1.1\r\nhost: x\r\ncontent-length: 4000000\r\n\r\n',
          Buffer.alloc(500_000, 97),
        ],
        { waitMs: 800 },
      );
      const status = result.responses[0]?.status;
      t.ok(status === 413 || status === 502, `#${i}: 413, or 502 when the reset won (${status})`);
    }
  },
);

t.test(
  'an upstream that closes each connection after answering: GETs never fail, POSTs never go twice',
  async (t) => {
    const outcomes = await Promise.all(
      Array.from({ length: 160 }, async (_, i) => {
        const method = i % 2 === 0 ? 'GET' : 'POST';
        const res = await fetch(`${gw.url}/p/close-after`, {
          method,
          headers: { 'x-req': String(i) },
          ...(method === 'POST' ? { body: `b${i}` } : {}),
        });
        return { method, i, status: res.status, body: await res.text() };
      }),
    );
    // A GET that met a connection the upstream was closing is sent again on a new one. A POST
    // written to such a connection (its FIN not read yet: a race no client can close) fails
    // with 502 rather than risk running twice.
    t.same(
      outcomes.filter((o) => o.method === 'GET' && o.status !== 200).map((o) => o.status),
      [],
      'every GET answered',
    );
    t.ok(
      outcomes.every((o) => o.status === 200 || (o.method === 'POST' && o.status === 502)),
      'each POST answered or 502',
    );
    for (const o of outcomes)
      if (o.status === 200)
        t.equal(o.body, `- ${o.i} ${o.method} ${o.method === 'POST' ? `b${o.i}` : ''}`);
    const posts = up.requests.filter((r) => r.target === '/close-after' && r.method === 'POST');
    t.equal(
      new Set(posts.map((r) => headerOf(r, 'x-req'))).size,
      posts.length,
      'no POST sent twice',
    );
  },
);

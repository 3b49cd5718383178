// Nasty upstream answers through the gateway, against the h1 client's hot-path shortcuts
// (worker/h1-client.ts): a status line that is 'HTTP/1.1 200 OK' plus a NUL, a bare CR at the
// end of a value, one name in two cases, and `Keep-Alive: timeout=0` (the remembered hint).
import t from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { parseResponses, type RawResponse, rawConnection } from './helpers/raw-http.js';

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

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

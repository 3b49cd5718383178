// Answer heads byte for byte through the real CLI with CORS on, after worker/uws-io.ts joined
// every head into one writeStatus (Head): relayed latin1 bytes kept, upstream Vary lines merged
// with Origin after the relayed headers, the upstream's Access-Control-* dropped, gateway
// answers (404, 401, preflight) with their decoration. The expected heads are what the
// writeHeader-per-header build (ddc04cb) sent for the same requests, compared byte for byte.
import { connect } from 'node:net';
import t from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';

const L = (s: string) => Buffer.from(s, 'latin1');
const ANSWERS: Record<string, Buffer> = {
  '/mixed': L(
    'HTTP/1.1 200 OK\r\nVary: Accept-Encoding\r\nX-Latin1: caf\xe9\r\nvary: Accept-Language\r\n' +
      'Access-Control-Allow-Origin: *\r\nSet-Cookie: a=1\r\nSET-COOKIE: b=\xff\xfe\r\n' +
      'X-Utf8: \xe6\x97\xa5\r\nContent-Type: text/plain\r\ncontent-length: 2\r\n\r\nok',
  ),
  '/not-modified': L(
    'HTTP/1.1 304 Not Modified\r\nETag: "\xe9"\r\nCache-Control: max-age=1\r\n\r\n',
  ),
  '/hop': L(
    'HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nX-Keep: \xe9\r\n' +
      'content-length: 2\r\n\r\nok',
  ),
};
const up = await startHostileUpstream((req) => ({
  chunks: [ANSWERS[req.target] ?? L('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')],
  after: 'keep',
}));
const gw: RunningGateway = await startGateway({
  config: { num_instances: 1, cors_origins: ['https://app.test'] },
  routes: `routes:
  - prefix: /h
    target: ${up.origin}
    secure: false
  - prefix: /sec
    target: ${up.origin}
    secure: true
`,
});
t.teardown(async () => {
  await gw.stop();
  await up.close();
});

/** The answer's head (latin1, up to the blank line), Date and uWS's Content-Length masked. */
async function head(request: string): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port: gw.port });
  socket.on('error', () => {});
  let data = Buffer.alloc(0);
  socket.write(request);
  await new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (data.includes('\r\n\r\n')) resolve();
    });
    socket.on('close', () => resolve());
  });
  socket.destroy();
  const text = data.toString('latin1');
  return text
    .slice(0, text.indexOf('\r\n\r\n'))
    .replace(/\r\ndate: [^\r]*/i, '\r\ndate: X')
    .replace(/\r\nContent-Length: \d+/, '\r\nContent-Length: N');
}

const ORIGIN = 'origin: https://app.test\r\n';
const CORS =
  'access-control-allow-origin: https://app.test\r\naccess-control-allow-credentials: true\r\n' +
  'access-control-expose-headers: Retry-After, RateLimit, RateLimit-Policy, WWW-Authenticate\r\n';

t.test('proxied: latin1 bytes, repeated names, Vary merged, upstream CORS dropped', async (t) => {
  const relayed =
    'HTTP/1.1 200 OK\r\nserver: ProxyAuth\r\nx-latin1: caf\xe9\r\nset-cookie: a=1\r\n' +
    'set-cookie: b=\xff\xfe\r\nx-utf8: \xe6\x97\xa5\r\ncontent-type: text/plain\r\n' +
    'vary: Accept-Encoding, Accept-Language, Origin\r\n';
  t.equal(
    await head(`GET /h/mixed HTTP/1.1\r\nhost: x\r\n${ORIGIN}\r\n`),
    `${relayed}${CORS}date: X\r\nContent-Length: N`,
  );
  t.equal(
    await head(`GET /h/mixed HTTP/1.1\r\nhost: x\r\n\r\n`),
    `${relayed}date: X\r\nContent-Length: N`,
    'no Origin: Vary still merged, no CORS headers',
  );
  t.equal(
    await head(`HEAD /h/mixed HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${ORIGIN}\r\n`),
    `${relayed}${CORS}content-length: 2\r\ndate: X`,
  );
});

t.test('proxied 304 and Connection-listed headers', async (t) => {
  t.equal(
    await head(`GET /h/not-modified HTTP/1.1\r\nhost: x\r\n${ORIGIN}\r\n`),
    `HTTP/1.1 304 Not Modified\r\nserver: ProxyAuth\r\netag: "\xe9"\r\ncache-control: max-age=1\r\nvary: Origin\r\n${CORS}date: X`,
  );
  t.equal(
    await head(`GET /h/hop HTTP/1.1\r\nhost: x\r\n\r\n`),
    'HTTP/1.1 200 OK\r\nserver: ProxyAuth\r\nx-keep: \xe9\r\nvary: Origin\r\ndate: X\r\nContent-Length: N',
  );
});

t.test('gateway answers: 401 challenge, preflight, unread body', async (t) => {
  const json = 'server: ProxyAuth\r\ncontent-type: application/json\r\ncache-control: no-store\r\n';
  t.equal(
    await head(`GET /sec/x HTTP/1.1\r\nhost: x\r\nauthorization: Bearer zz\r\n${ORIGIN}\r\n`),
    `HTTP/1.1 401 Unauthorized\r\n${json}www-authenticate: Bearer realm="ProxyAuth", error="invalid_token"\r\nvary: Origin\r\n${CORS}date: X\r\nContent-Length: N`,
  );
  t.equal(
    await head(
      `OPTIONS /h/x HTTP/1.1\r\nhost: x\r\n${ORIGIN}access-control-request-method: PUT\r\n\r\n`,
    ),
    'HTTP/1.1 204 No Content\r\nserver: ProxyAuth\r\n' +
      'access-control-allow-methods: GET, HEAD, POST, PUT, PATCH, DELETE\r\n' +
      'access-control-allow-headers: Authorization, Content-Type, X-CSRF-Token\r\n' +
      `access-control-max-age: 600\r\nvary: Origin\r\n${CORS}date: X`,
  );
  t.match(
    await head(`POST /nosuch HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n${ORIGIN}\r\nabc`),
    /^HTTP\/1\.1 404 Not Found\r\n[\s\S]*\r\nConnection: close\r\ndate: X\r\nContent-Length: N$/,
  );
});

// Request buffering (worker/proxy-handler.ts) on routes whose steps read the body first (body
// filters: ctx.body) and on routes that read none: every byte arrives at the sizes around the
// buffering (16 KiB) and joined-write (64 KiB) limits, a declared-small body is never 413 on a
// route without body conditions, and the content-length sent upstream is the body's.
import { createHash } from 'node:crypto';
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { rawExchange } from './helpers/raw-http.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);

const upstream = await startHostileUpstream((req) => {
  const length = req.headers.filter(([n]) => n === 'content-length').map(([, v]) => v);
  const answer = `${req.body.length} ${sha(req.body)} cl=${length.join(',')}`;
  return { chunks: [`HTTP/1.1 200 OK\r\ncontent-length: ${answer.length}\r\n\r\n${answer}`] };
});
const gw = await startGateway({
  config: { num_instances: 1 },
  routes: `routes:
  - prefix: /filtered
    target: ${upstream.origin}/filtered
    secure: false
    filters:
      default_allow: true
      deny:
        - { field: body_raw, pattern: "forbidden" }
      max_body_bytes: 70000
  - prefix: /small-limit
    target: ${upstream.origin}/small-limit
    secure: false
    filters:
      default_allow: true
      max_body_bytes: 100
  - prefix: /pub
    target: ${upstream.origin}/pub
    secure: false
  - prefix: /ws
    target: ${upstream.origin}/ws
    secure: false
    websocket: true
`,
  env: { PROXYAUTH_LOG_LEVEL: 'warn' },
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

/** A UTF-8 text body (body_raw refuses others) of exactly `n` bytes. */
const text = (n: number) => Buffer.from('abcdefghij'.repeat(Math.ceil(n / 10)).slice(0, n));

t.test('a body filter route: the body the filter read goes upstream, whole', async (t) => {
  for (const size of [1, 16383, 16384, 16385, 65536, 65537, 70000]) {
    const body = text(size);
    const res = await fetch(`${gw.url}/filtered/x`, { method: 'POST', body });
    t.equal(await res.text(), `${size} ${sha(body)} cl=${size}`, `${size} bytes`);
  }
  const res = await fetch(`${gw.url}/filtered/x`, { method: 'POST', body: 'a forbidden word' });
  t.equal(res.status, 403, 'the filter still reads it');
  const over = await fetch(`${gw.url}/filtered/x`, { method: 'POST', body: text(70001) });
  t.equal(over.status, 413, 'over max_body_bytes: 413');
});

t.test('no body conditions: never 413, whatever max_body_bytes says', async (t) => {
  for (const size of [101, 16384, 16385]) {
    const body = text(size);
    const res = await fetch(`${gw.url}/small-limit/x`, { method: 'POST', body });
    t.equal(res.status, 200, `${size} bytes`);
    t.equal(await res.text(), `${size} ${sha(body)} cl=${size}`);
  }
});

t.test('a route without filters: content-length upstream is the body length', async (t) => {
  for (const size of [1, 1024, 16384, 16385]) {
    const body = text(size);
    const res = await fetch(`${gw.url}/pub/x`, { method: 'PUT', body });
    t.equal(await res.text(), `${size} ${sha(body)} cl=${size}`, `${size} bytes`);
  }
});

t.test('a WebSocket handshake with a Content-Length: refused, nothing upstream', async (t) => {
  const handshake = (method: string) =>
    `${method} /ws/x HTTP/1.1\r\nhost: gw\r\nupgrade: websocket\r\nconnection: upgrade\r\n` +
    'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n' +
    'content-length: 5\r\n\r\nhello';
  const get = await rawExchange(gw.port, [handshake('GET')]);
  t.equal(get.responses[0]?.status, 400, 'GET handshake with a body: 400');
  t.ok(get.closed, 'and the connection closed');
  t.equal(upstream.requests.filter((r) => r.method === 'GET' && r.target === '/ws/x').length, 0);
  // uWS hands a POST with Upgrade to the plain handler: a plain request, Upgrade dropped.
  const post = await rawExchange(gw.port, [handshake('POST')]);
  t.match(post.responses[0]?.body.toString(), /^5 [0-9a-f]{16} cl=5$/, 'POST: a plain request');
  const seen = upstream.requests.find((r) => r.method === 'POST' && r.target === '/ws/x');
  t.notOk(
    seen?.headers.some(([n]) => n === 'upgrade'),
    'without its Upgrade',
  );
});

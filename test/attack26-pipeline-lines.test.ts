// Attack on the pipeline's response header lines (worker/uws-io.ts `headLines`: addResponseHeader
// checks a value when added, addOwnHeadLine appends the rate limiter's RateLimit unscanned, an
// upgrade's 101 splits them back into writeHeader calls) through a real gateway, read off the
// wire line by line: RateLimit on every kind of answer of an admitted request, exactly once,
// with its policy's name; none where no limit ran; CORS lines once beside it, on a 101 too; the
// forward-auth lines with hostile original URIs (encoded CR/LF, NUL, non-ASCII, very long) on
// plain and upgrade-shaped asks: no injected line, no split, the redirect's exact bytes.
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { login, startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { type RawAnswer, rawAnswer, valuesOf } from './helpers/raw-answer.js';
import { startWsBackend } from './helpers/ws-backend.js';

const APP = 'https://app.test';

const upstream = await startHostileUpstream((req) => {
  const path = req.target;
  if (path.endsWith('/gone')) return { chunks: [], after: 'destroy' };
  if (path.endsWith('/nc')) return { chunks: ['HTTP/1.1 204 No Content\r\nx-up: 1\r\n\r\n'] };
  if (path.endsWith('/nm')) return { chunks: ['HTTP/1.1 304 Not Modified\r\nx-up: 1\r\n\r\n'] };
  return { chunks: ['HTTP/1.1 200 OK\r\nx-up: 1\r\ncontent-length: 2\r\n\r\nok'] };
});
const ws = await startWsBackend({
  onConnection: (socket) => {
    socket.on('error', () => {});
    socket.on('message', (data) => socket.send(data));
  },
});
const H = upstream.origin;
const gw = await startGateway({
  config: {
    num_instances: 1,
    session_cookie: true,
    trusted_proxies: ['127.0.0.1'],
    cors_origins: [APP],
    ratelimit_proxy: { requests_per_second: 1000, burst: 1000 },
    ratelimit_auth: { requests_per_second: 100, burst: 100 },
  },
  users: [
    { username: 'alice', password: 'alice-password', roles: ['read'] },
    { username: 'bob', password: 'bob-password' },
  ],
  routes: `routes:
  - prefix: /api
    target: ${H}
  - prefix: /pub
    target: ${H}
    secure: false
  - prefix: /own
    target: ${H}
    secure: false
    ratelimit: { requests_per_second: 1000, burst: 1000 }
  - prefix: /few
    target: ${H}
    secure: false
    ratelimit: { requests_per_second: 0.5, burst: 0, block_delay: 0 }
  - prefix: /fa-few
    target: ${H}
    secure: false
    ratelimit: { requests_per_second: 0.5, burst: 0, block_delay: 0 }
  - prefix: /filt
    target: ${H}
    secure: false
    filters:
      default_allow: true
      deny:
        - field: body_raw
          pattern: evil
  - prefix: /bob
    target: ${H}
    username: [bob]
  - prefix: /ws
    target: ${ws.origin}
`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
  await ws.close();
});
const token = await login(gw.url);
const bearer = `Authorization: Bearer ${token}\r\n`;

function ask(path: string, method = 'GET', extra = ''): Promise<RawAnswer> {
  return rawAnswer(
    gw.port,
    `${method} ${path} HTTP/1.1\r\nHost: gw\r\n${extra}Connection: close\r\n\r\n`,
  );
}

/** Every line is `name: value` with a token name: nothing split or injected. */
function wellFormed(t: Test, a: RawAnswer): void {
  const bad = a.lines.filter(
    (l) => !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+: [\t\x20-\x7e\x80-\xff]*$/.test(l),
  );
  t.same(bad, [], 'every head line well formed');
}

const ANNOUNCED = (policy: string) => new RegExp(`^"${policy}";r=\\d+;t=\\d+$`);

t.test('RateLimit once on each kind of answer of an admitted request', async (t) => {
  const cases: [string, string, string, number, string][] = [
    ['proxied 200', 'GET', '/api/ok', 200, 'proxy'],
    ['proxied POST', 'POST', '/filt/ok', 200, 'proxy'],
    ['HEAD', 'HEAD', '/api/ok', 200, 'proxy'],
    ['204', 'GET', '/pub/nc', 204, 'proxy'],
    ['304', 'GET', '/pub/nm', 304, 'proxy'],
    ['502 (upstream reset)', 'GET', '/pub/gone', 502, 'proxy'],
    ['a route’s own limit', 'GET', '/own/ok', 200, 'route'],
    ['403 of a body filter (after the limit)', 'POST', '/filt/deny', 403, 'proxy'],
  ];
  for (const [name, method, path, status, policy] of cases) {
    const body = path === '/filt/deny' ? 'evil' : 'fine';
    const extra = method === 'POST' ? `${bearer}Content-Length: 4\r\n` : bearer;
    const a = await rawAnswer(
      gw.port,
      `${method} ${path} HTTP/1.1\r\nHost: gw\r\n${extra}Connection: close\r\n\r\n${method === 'POST' ? body : ''}`,
    );
    t.equal(a.status, status, `${name} ${a.body.toString().slice(0, 300)}`);
    t.equal(valuesOf(a, 'ratelimit').length, 1, `${name}: one RateLimit`);
    t.match(valuesOf(a, 'ratelimit')[0], ANNOUNCED(policy), `${name}: ${policy}`);
    t.same(valuesOf(a, 'ratelimit-policy'), [], `${name}: no policy line`);
    t.same(valuesOf(a, 'server'), ['ProxyAuth']);
    wellFormed(t, a);
  }
});

t.test('the 429: its own RateLimit and policy, once each', async (t) => {
  const first = await ask('/few/a');
  t.equal(first.status, 200);
  t.same(valuesOf(first, 'ratelimit'), ['"route";r=0;t=2']);
  const refused = await ask('/few/a');
  t.equal(refused.status, 429);
  t.equal(valuesOf(refused, 'ratelimit').length, 1);
  t.match(valuesOf(refused, 'ratelimit')[0], /^"route";r=0;t=[12]$/);
  t.same(valuesOf(refused, 'ratelimit-policy'), ['"route";q=1;w=2']);
  t.equal(valuesOf(refused, 'retry-after').length, 1);
});

t.test('no RateLimit where no limit ran', async (t) => {
  const cases: [string, string, string, string, number][] = [
    ['401 before the limit (credential)', 'GET', '/api/ok', '', 401],
    ['403 before the limit (user list)', 'GET', '/bob/ok', bearer, 403],
    ['404 (no route)', 'GET', '/nowhere', bearer, 404],
  ];
  for (const [name, method, path, extra, status] of cases) {
    const a = await ask(path, method, extra);
    t.equal(a.status, status, name);
    t.same(valuesOf(a, 'ratelimit'), [], name);
    wellFormed(t, a);
  }
  const pre = await ask(
    '/api/ok',
    'OPTIONS',
    `Origin: ${APP}\r\nAccess-Control-Request-Method: PUT\r\n`,
  );
  t.equal(pre.status, 204, 'a preflight is the gateway’s, before any route');
  t.same(valuesOf(pre, 'ratelimit'), []);
  t.same(valuesOf(pre, 'vary'), ['Origin']);
  t.same(valuesOf(pre, 'access-control-allow-origin'), [APP]);
});

t.test('logins: the auth limit once, on success and failure', async (t) => {
  for (const [password, status] of [
    ['alice-password', 200],
    ['wrong', 401],
  ] as const) {
    const body = JSON.stringify({ username: 'alice', password });
    const a = await rawAnswer(
      gw.port,
      `POST /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    t.equal(a.status, status, a.body.toString());
    t.equal(valuesOf(a, 'ratelimit').length, 1);
    t.match(valuesOf(a, 'ratelimit')[0], ANNOUNCED('auth'));
  }
});

t.test('CORS and RateLimit side by side, once each, on a 200 and on a 101', async (t) => {
  const a = await ask('/api/ok', 'GET', `${bearer}Origin: ${APP}\r\n`);
  t.equal(a.status, 200);
  t.same(valuesOf(a, 'vary'), ['Origin']);
  t.same(valuesOf(a, 'access-control-allow-origin'), [APP]);
  t.equal(valuesOf(a, 'ratelimit').length, 1);
  const up = await rawAnswer(
    gw.port,
    'GET /ws/echo HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${bearer}` +
      `Origin: ${APP}\r\n\r\n`,
    400,
  );
  t.equal(up.status, 101);
  t.equal(valuesOf(up, 'ratelimit').length, 1, 'one RateLimit on the 101');
  t.match(valuesOf(up, 'ratelimit')[0], ANNOUNCED('proxy'));
  t.same(valuesOf(up, 'vary'), ['Origin']);
  t.same(valuesOf(up, 'access-control-allow-origin'), [APP]);
  t.same(valuesOf(up, 'sec-websocket-accept'), ['s3pPLMBiTxaQ9kYGzzhZRbK+xOo=']);
  wellFormed(t, up);
  // And the socket still carries WebSocket frames (the head ended where it should).
  const socket = new WebSocket(`ws://127.0.0.1:${gw.port}/ws/echo`, {
    headers: { authorization: `Bearer ${token}`, origin: APP },
    perMessageDeflate: false,
  });
  const echoed = await new Promise<string>((resolve, reject) => {
    socket.on('open', () => socket.send('ping-text'));
    socket.on('message', (d) => resolve(String(d)));
    socket.on('error', reject);
  });
  socket.close();
  t.equal(echoed, 'ping-text');
});

/** A forward-auth ask for the original `uri` (raw bytes), as nginx sends it. */
function verify(uri: string | Buffer, extra = ''): Promise<RawAnswer> {
  const head = Buffer.concat([
    Buffer.from(
      'GET /auth/verify HTTP/1.1\r\nHost: gw\r\nAccept: text/html\r\nX-Original-Method: GET\r\nX-Original-URI: ',
    ),
    typeof uri === 'string' ? Buffer.from(uri, 'latin1') : uri,
    Buffer.from(`\r\n${extra}Connection: close\r\n\r\n`),
  ]);
  return rawAnswer(gw.port, head);
}

const HOSTILE_URIS: [string, string | Buffer][] = [
  ['plain', '/api/x?a=1'],
  ['encoded CR LF', '/api/x%0d%0aX-Injected:%20yes'],
  ['encoded CR LF in the query', '/api/x?a=%0D%0AX-Injected: yes'],
  ['encoded NUL', '/api/x%00y'],
  ['UTF-8 bytes', Buffer.concat([Buffer.from('/api/'), Buffer.from('é日', 'utf8')])],
  ['latin1 bytes', Buffer.from([0x2f, 0x61, 0x70, 0x69, 0x2f, 0xe9, 0xff])],
  ['very long', `/api/${'a'.repeat(6000)}?q=${'b'.repeat(1500)}`],
  ['quotes and angle brackets', '/api/"x"<script>?q=\'1\''],
  ['a header-like query', '/api/x?: x-injected: yes'],
];

t.test('forward-auth lines with hostile original URIs: no split, exact redirect', async (t) => {
  for (const [name, uri] of HOSTILE_URIS) {
    for (const upgrade of [false, true]) {
      const extra = upgrade
        ? 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
        : '';
      const label = `${name}${upgrade ? ' (upgrade-shaped)' : ''}`;
      const a = await verify(uri, extra);
      t.not(a.status, 101, `${label}: never a 101`);
      t.ok(a.status >= 300, `${label}: refused (${a.status})`);
      wellFormed(t, a);
      t.same(
        a.lines.filter((l) => /x-injected/i.test(l.slice(0, l.indexOf(':') + 1))),
        [],
        `${label}: nothing injected`,
      );
      t.same(valuesOf(a, 'x-proxyauth-status'), [String(a.status)], `${label}: status once`);
      t.equal(valuesOf(a, 'x-proxyauth-error').length, 1, `${label}: error once`);
      const redirect = valuesOf(a, 'x-proxyauth-redirect');
      if (a.status === 401 && typeof uri === 'string') {
        const printable = /^[\x21-\x7e]*$/.test(uri) && !uri.includes('\\');
        t.same(
          redirect,
          [printable ? `/auth?rd=${encodeURIComponent(uri)}` : '/auth'],
          `${label}: the login address, rd encoded`,
        );
      } else if (a.status === 401) {
        // uWS strips bytes above 0x7f at either end of a header value (README, known
        // limitations): the URI judged is the rest, and its rd is that rest, encoded.
        t.same(redirect, ['/auth?rd=%2Fapi%2F'], `${label}: the stripped URI, encoded`);
      } else t.same(redirect, [], `${label}: no redirect on a ${a.status}`);
    }
  }
});

t.test('forward-auth allowed: its lines and the route’s RateLimit, once each', async (t) => {
  const a = await rawAnswer(
    gw.port,
    `GET /auth/verify HTTP/1.1\r\nHost: gw\r\nX-Original-Method: GET\r\nX-Original-URI: /api/x\r\n${bearer}Connection: close\r\n\r\n`,
  );
  t.equal(a.status, 200);
  t.same(valuesOf(a, 'x-proxyauth-status'), ['200']);
  t.same(valuesOf(a, 'x-user'), ['alice']);
  t.equal(valuesOf(a, 'ratelimit').length, 1);
  t.match(valuesOf(a, 'ratelimit')[0], ANNOUNCED('proxy'));
  wellFormed(t, a);
  // nginx's auth_request passes the client's Upgrade headers on: uWS hands the ask to the
  // upgrade handler, and the answer is still a plain 200 with the same lines, never a 101.
  const upgrade = await rawAnswer(
    gw.port,
    'GET /auth/verify HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      `X-Original-Method: GET\r\nX-Original-URI: /ws/echo\r\n${bearer}\r\n`,
    400,
  );
  t.equal(upgrade.status, 200);
  t.same(valuesOf(upgrade, 'x-proxyauth-status'), ['200']);
  t.same(valuesOf(upgrade, 'x-user'), ['alice']);
  t.equal(valuesOf(upgrade, 'ratelimit').length, 1);
  t.same(valuesOf(upgrade, 'sec-websocket-accept'), []);
  wellFormed(t, upgrade);
  const ask = () =>
    rawAnswer(
      gw.port,
      'GET /auth/verify HTTP/1.1\r\nHost: gw\r\nX-Original-Method: GET\r\nX-Original-URI: /fa-few/x\r\nConnection: close\r\n\r\n',
    );
  const admitted = await ask();
  t.equal(admitted.status, 200);
  t.same(valuesOf(admitted, 'ratelimit'), ['"route";r=0;t=2']);
  const refused = await ask();
  t.equal(refused.status, 429, 'the route’s limit refuses the second');
  t.same(valuesOf(refused, 'x-proxyauth-status'), ['429']);
  t.same(valuesOf(refused, 'x-proxyauth-error'), ['RATE_LIMITED']);
  t.equal(valuesOf(refused, 'ratelimit').length, 1, 'the 429’s own RateLimit, once');
  t.same(valuesOf(refused, 'ratelimit-policy'), ['"route";q=1;w=2']);
  wellFormed(t, refused);
});

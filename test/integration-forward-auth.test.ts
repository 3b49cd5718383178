// Forward-auth (`/auth/verify`): the gateway judges, for a trusted proxy, the request the proxy
// describes, with the same route steps as a proxied request, and forwards nothing.
import { request } from 'node:http';
import t, { type Test } from 'tap';
import { forwardAuthRoutes } from './helpers/forward-proxies.js';
import { loginWithId, type RunningGateway, startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
let upstreamHits = 0;
upstream.server.on('request', () => upstreamHits++);
const ADMIN = 'a'.repeat(64);
const gw: RunningGateway = await startGateway({
  users: [
    { username: 'alice', password: 'alice-password', roles: ['read', 'write'] },
    { username: 'bob', password: 'bob-password', roles: ['r\u00f4le'] },
  ],
  config: { trusted_proxies: ['127.0.0.1'] },
  routes: forwardAuthRoutes(
    upstream.origin,
    `  - prefix: /bodyfilter
    target: ${upstream.origin}
    filters:
      deny: [{ field: body_raw, pattern: "secret" }]
  - prefix: /headfilter
    target: ${upstream.origin}
    filters:
      deny: [{ field: header, name: "^x-bad$", pattern: "." }]
  - prefix: /limited
    target: ${upstream.origin}
    ratelimit: { requests_per_second: 0.01, burst: 0 }
`,
  ),
});
const alice = await loginWithId(gw.url, 'alice', 'alice-password');
const bob = await loginWithId(gw.url, 'bob', 'bob-password');
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request to the gateway, from `localAddress` (127.0.0.1 is the trusted proxy). */
function ask(
  headers: Record<string, string | string[]>,
  options: { method?: string; localAddress?: string; path?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${gw.url}${options.path ?? '/auth/verify'}`,
      { method: options.method ?? 'GET', headers, localAddress: options.localAddress },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const nginx = (method: string, uri: string) => ({
  'x-original-method': method,
  'x-original-uri': uri,
});

/** `header`: the stable code in X-ProxyAuth-Error when the body's `error` differs (429). */
function refusedWith(t: Test, a: Answer, status: number, code: string, header = code): void {
  t.equal(a.status, status, a.body);
  t.equal(JSON.parse(a.body).error, code);
  t.equal(a.headers['x-proxyauth-status'], String(status));
  t.equal(a.headers['x-proxyauth-error'], header);
  t.notOk(a.headers['x-user'], 'no identity on a refusal');
}

t.test('allowed: 200, the identity as proxied requests get it, nothing forwarded', async (t) => {
  const before = upstreamHits;
  const a = await ask({ ...bearer(alice.token), ...nginx('GET', '/app/page?x=1') });
  t.equal(a.status, 200, a.body);
  t.equal(a.body, '');
  t.equal(a.headers['x-user'], 'alice');
  t.equal(a.headers['x-user-roles'], 'read,write');
  t.equal(a.headers['x-proxyauth-status'], '200');
  const b = await ask({ ...bearer(bob.token), ...nginx('POST', '/app/form') });
  t.equal(b.status, 200, 'a bearer POST needs no CSRF token');
  t.equal(b.headers['x-user-roles'], 'r%C3%B4le', 'roles percent-encoded as upstream gets them');
  const head = await ask({ ...bearer(alice.token), ...nginx('GET', '/app/') }, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '', 'HEAD: no body');
  t.equal(head.headers['x-user'], 'alice');
  t.equal(upstreamHits, before, 'the upstream is never contacted');
});

t.test('Traefik / Caddy headers: X-Forwarded-Method and -Uri', async (t) => {
  const a = await ask({
    ...bearer(alice.token),
    'x-forwarded-method': 'GET',
    'x-forwarded-uri': '/alice-only/x',
    'x-forwarded-host': 'app.test',
    'x-forwarded-proto': 'https',
  });
  t.equal(a.status, 200, a.body);
  t.equal(a.headers['x-user'], 'alice');
  const b = await ask({
    ...bearer(bob.token),
    'x-forwarded-method': 'get',
    'x-forwarded-uri': '/alice-only/x',
  });
  refusedWith(t, b, 403, 'USER_NOT_ALLOWED');
});

t.test("refusals carry the pipeline's status and code, in headers too", async (t) => {
  refusedWith(t, await ask(nginx('GET', '/app/x')), 401, 'TOKEN_MISSING');
  refusedWith(
    t,
    await ask({ ...bearer('x'.repeat(80)), ...nginx('GET', '/app/x') }),
    401,
    'TOKEN_INVALID',
  );
  refusedWith(
    t,
    await ask({ ...bearer(bob.token), ...nginx('GET', '/alice-only/') }),
    403,
    'USER_NOT_ALLOWED',
  );
  const m = await ask({ ...bearer(alice.token), ...nginx('DELETE', '/read/x') });
  refusedWith(t, m, 405, 'METHOD_NOT_ALLOWED');
  t.equal(m.headers.allow, 'GET, HEAD');
  refusedWith(
    t,
    await ask({ ...bearer(alice.token), ...nginx('GET', '/nowhere') }),
    404,
    'NO_ROUTE',
  );
  refusedWith(
    t,
    await ask({ ...bearer(alice.token), ...nginx('GET', '/app/a;b') }),
    400,
    'BAD_PATH',
  );
  refusedWith(t, await ask({ ...bearer(alice.token), ...nginx('GET', '/APP/x') }), 404, 'NO_ROUTE');
  refusedWith(
    t,
    await ask({ ...bearer(alice.token), ...nginx('GET', '/headfilter/'), 'x-bad': '1' }),
    403,
    'FILTER_DENIED',
  );
  refusedWith(
    t,
    await ask({ ...bearer(alice.token), ...nginx('GET', '/bodyfilter/') }),
    403,
    'FORWARD_AUTH_NEEDS_BODY',
  );
});

t.test('public routes pass without identity; the rate limit is the route one', async (t) => {
  const a = await ask(nginx('GET', '/public/page'));
  t.equal(a.status, 200);
  t.equal(a.headers['x-user'], '', 'empty identity: a proxy copying it overwrites a client copy');
  const first = await ask({ ...bearer(alice.token), ...nginx('GET', '/limited/') });
  t.equal(first.status, 200);
  const second = await ask({ ...bearer(alice.token), ...nginx('GET', '/limited/') });
  refusedWith(t, second, 429, 'TooManyRequests', 'RATE_LIMITED');
  t.ok(Number(second.headers['retry-after']) > 0);
});

t.test('a revoked token is refused', async (t) => {
  const victim = await loginWithId(gw.url, 'alice', 'alice-password');
  t.equal((await ask({ ...bearer(victim.token), ...nginx('GET', '/app/') })).status, 200);
  const res = await fetch(`${gw.url}/adm/revoke`, {
    method: 'POST',
    headers: { 'x-auth-token': ADMIN, 'content-type': 'application/json' },
    body: JSON.stringify({ token_id: victim.tokenId }),
  });
  t.equal(res.status, 200, await res.text());
  refusedWith(
    t,
    await ask({ ...bearer(victim.token), ...nginx('GET', '/app/') }),
    401,
    'TOKEN_REVOKED',
  );
});

t.test('an untrusted peer is refused, whatever it says', async (t) => {
  const headers = { ...bearer(alice.token), ...nginx('GET', '/app/') };
  const a = await ask(headers, { localAddress: '127.0.0.2' });
  refusedWith(t, a, 403, 'FORWARD_AUTH_UNTRUSTED');
  const b = await ask(
    { ...headers, 'x-forwarded-for': '127.0.0.1' },
    { localAddress: '127.0.0.2' },
  );
  refusedWith(t, b, 403, 'FORWARD_AUTH_UNTRUSTED');
  // Sent to a proxied route instead, the headers change nothing: the path is the request's.
  const c = await ask(
    { ...nginx('GET', '/public/x'), 'x-forwarded-uri': '/public/x' },
    { path: '/app/x', localAddress: '127.0.0.2' },
  );
  t.equal(c.status, 401, 'judged on its own path');
});

t.test('ambiguous or missing descriptions are refused, never guessed', async (t) => {
  const token = bearer(alice.token);
  const cases: [string, Record<string, string | string[]>, number, string][] = [
    ['no method', { 'x-original-uri': '/app/' }, 400, 'FORWARD_AUTH_BAD_REQUEST'],
    ['no URI', { 'x-original-method': 'GET' }, 400, 'FORWARD_AUTH_BAD_REQUEST'],
    [
      'families disagree on the URI',
      { ...nginx('GET', '/app/'), 'x-forwarded-uri': '/public/' },
      400,
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'families disagree on the method',
      { ...nginx('POST', '/app/'), 'x-forwarded-method': 'GET' },
      400,
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'two URIs',
      { 'x-original-method': 'GET', 'x-original-uri': ['/app/', '/public/'] },
      400,
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'a list of hosts',
      { ...nginx('GET', '/app/'), 'x-forwarded-host': 'a.test, b.test' },
      400,
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    [
      'a bad proto',
      { ...nginx('GET', '/app/'), 'x-forwarded-proto': 'ftp' },
      400,
      'FORWARD_AUTH_BAD_REQUEST',
    ],
    ['not origin-form', nginx('GET', 'http://evil/app/'), 400, 'FORWARD_AUTH_BAD_REQUEST'],
    ['TRACE', nginx('TRACE', '/app/'), 501, 'METHOD_NOT_SUPPORTED'],
  ];
  for (const [name, headers, status, code] of cases) {
    const a = await ask({ ...token, ...headers });
    t.equal(a.status, status, `${name}: ${a.body}`);
    t.equal(JSON.parse(a.body).error, code, name);
  }
  const agreeing = await ask({ ...token, ...nginx('GET', '/app/'), 'x-forwarded-uri': '/app/' });
  t.equal(agreeing.status, 200, 'both families naming the same request is fine');
});

t.test('a path the backend would read as another route is refused, not judged', async (t) => {
  // The proxy sends the raw URI to the backend: judging its canonical form (/public/x) would
  // let a router that does not resolve these serve /alice-only to anyone.
  for (const uri of [
    '/alice-only/..%2fpublic/x',
    '/alice-only/..%2Fpublic/x',
    '/alice-only/%2e%2e/public/x',
    '/alice-only/.%2E/public/x',
    '/alice-only/..%5cpublic/x',
    '/alice-only/..\\public/x',
    '/alice-only/../public/x',
    '/alice-only//..//public/x',
    '/alice-only/x/./../../public/x',
    '/public//x',
    '/public/%2fx',
  ]) {
    for (const token of [undefined, bob.token]) {
      const a = await ask({ ...(token ? bearer(token) : {}), ...nginx('GET', uri) });
      refusedWith(t, a, 400, 'BAD_PATH');
    }
  }
  // Escapes that leave the segments as they are still pass, judged on the decoded path.
  const ok = await ask({ ...bearer(alice.token), ...nginx('GET', '/alice-only/%41b%20c/?q=%2f') });
  t.equal(ok.status, 200, ok.body);
  const slash = await ask(nginx('GET', '/public/'));
  t.equal(slash.status, 200, 'a trailing slash is not an empty segment');
  const bobAlice = await ask({ ...bearer(bob.token), ...nginx('GET', '/alice-only/%41') });
  refusedWith(t, bobAlice, 403, 'USER_NOT_ALLOWED');
});

t.test('other methods of the endpoint are 405; the path is reserved', async (t) => {
  const a = await ask({ ...bearer(alice.token), ...nginx('GET', '/app/') }, { method: 'POST' });
  t.equal(a.status, 405);
  t.equal(a.headers.allow, 'GET, HEAD');
});

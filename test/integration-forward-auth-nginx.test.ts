// Forward-auth behind a real nginx (auth_request), with the configuration README "Forward-auth"
// gives: nginx asks the gateway, copies the identity, maps refusals, sends browsers to log in.
import { request } from 'node:http';
import t from 'tap';
import {
  FORWARD_AUTH_USERS,
  forwardAuthRoutes,
  startForwardAuthNginx,
} from './helpers/forward-proxies.js';
import { loginWithId, type RunningGateway, startGateway } from './helpers/gateway.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

const backend = await startUpstream();
const gw: RunningGateway = await startGateway({
  users: FORWARD_AUTH_USERS,
  config: { trusted_proxies: ['127.0.0.1'], session_cookie: true },
  routes: forwardAuthRoutes(backend.origin),
});
const nginx = await startForwardAuthNginx(t.testdir(), gw.url, backend.origin);
if (nginx === undefined) {
  t.test('nginx', { skip: 'nginx is not installed (apt-get install nginx)' }, async () => {});
  await gw.stop();
  await backend.close();
} else {
  t.teardown(async () => {
    await nginx.stop();
    await gw.stop();
    await backend.close();
  });
  await run(nginx.url);
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; local?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method: options.method ?? 'GET', headers: options.headers, localAddress: options.local },
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
    req.end(options.body);
  });
}

async function run(proxy: string): Promise<void> {
  const alice = await loginWithId(gw.url, 'alice', 'alice-password');
  const bob = await loginWithId(gw.url, 'bob', 'bob-password');
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    send(proxy, path, { method, headers });

  await t.test('allowed: the backend gets the gateway identity, not the token', async (t) => {
    const a = await get('/app/page?x=1', {
      authorization: `Bearer ${alice.token}`,
      'x-user': 'mallory',
    });
    t.equal(a.status, 200, a.body);
    const echo = JSON.parse(a.body) as Echo;
    t.equal(echo.url, '/app/page?x=1');
    t.equal(echo.headers['x-user'], 'alice', "the gateway's x-user, not the client's");
    t.equal(echo.headers['x-user-roles'], 'read,write');
    t.notOk(echo.headers.authorization, 'the token stays with nginx');
    const pub = await get('/public/', { 'x-user': 'mallory' });
    t.equal(pub.status, 200);
    t.notOk((JSON.parse(pub.body) as Echo).headers['x-user'], 'no identity on a public route');
  });

  await t.test('refused by nginx with the right status', async (t) => {
    t.equal((await get('/app/x')).status, 401, 'no token');
    t.equal((await get('/alice-only/', { authorization: `Bearer ${bob.token}` })).status, 403);
    const m = await get('/read/x', { authorization: `Bearer ${alice.token}` }, 'DELETE');
    t.equal(m.status, 405, 'a method not allowed (500 without the mapping)');
    t.equal((await get('/nowhere', { authorization: `Bearer ${alice.token}` })).status, 404);
    const victim = await loginWithId(gw.url, 'alice', 'alice-password');
    t.equal((await get('/app/', { authorization: `Bearer ${victim.token}` })).status, 200);
    const res = await fetch(`${gw.url}/adm/revoke`, {
      method: 'POST',
      headers: { 'x-auth-token': 'a'.repeat(64), 'content-type': 'application/json' },
      body: JSON.stringify({ token_id: victim.tokenId }),
    });
    t.equal(res.status, 200);
    t.equal(
      (await get('/app/', { authorization: `Bearer ${victim.token}` })).status,
      401,
      'revoked',
    );
  });

  await t.test("a client's X-Original-URI changes nothing", async (t) => {
    const spoofed = { 'x-original-uri': '/public/', 'x-original-method': 'GET' };
    t.equal((await get('/app/x', spoofed)).status, 401, 'through nginx: its own value wins');
    const both = { ...spoofed, 'x-forwarded-uri': '/public/', 'x-forwarded-method': 'GET' };
    t.equal((await get('/app/x', both)).status, 401, 'the other family is cleared by nginx');
    // Straight to the gateway from a peer that is not a trusted proxy.
    const direct = await send(gw.url, '/auth/verify', { headers: spoofed, local: '127.0.0.2' });
    t.equal(direct.status, 403);
    t.equal(JSON.parse(direct.body).error, 'FORWARD_AUTH_UNTRUSTED');
  });

  await t.test('a browser logs in through nginx and comes back where it was', async (t) => {
    const html = { accept: 'text/html,application/xhtml+xml' };
    const first = await get('/app/page?a=1&b=2', html);
    t.equal(first.status, 302);
    // nginx makes the gateway's relative Location absolute (absolute_redirect).
    const location = new URL(String(first.headers.location), proxy);
    t.equal(location.origin, proxy, 'to the same site');
    t.equal(`${location.pathname}${location.search}`, '/auth?rd=%2Fapp%2Fpage%3Fa%3D1%26b%3D2');
    const page = await get('/auth?rd=%2Fapp%2Fpage%3Fa%3D1%26b%3D2', html);
    t.equal(page.status, 200);
    t.match(page.body, '<form method="post">', 'the form posts back to its URL, rd kept');
    const posted = await send(proxy, '/auth?rd=%2Fapp%2Fpage%3Fa%3D1%26b%3D2', {
      method: 'POST',
      // A browser sends its Origin, with the port: nginx must pass Host with it ($http_host).
      headers: { ...html, origin: proxy, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=alice&password=alice-password',
    });
    t.equal(posted.status, 303, posted.body);
    t.equal(posted.headers.location, '/app/page?a=1&b=2');
    const cookie = String(posted.headers['set-cookie']).split(';')[0]!;
    const back = await get('/app/page?a=1&b=2', { ...html, cookie });
    t.equal(back.status, 200, back.body);
    t.equal((JSON.parse(back.body) as Echo).headers['x-user'], 'alice');
    // CSRF: the original method decides; a cookie POST needs a token of its session.
    const post = await send(proxy, '/app/form', {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    t.equal(post.status, 403, 'a cookie POST without a CSRF token');
    const foreign = await send(proxy, '/app/form', {
      method: 'POST',
      headers: { cookie, origin: 'https://evil.test', 'x-csrf-token': 'x' },
    });
    t.equal(foreign.status, 403, 'a cookie POST from a foreign origin');
    // The backend got a CSRF token of this session with the page (X-ProxyAuth-CSRF-Token): its
    // script sends it back, from the site's own origin (with its port: X-Forwarded-Host is
    // nginx's $http_host), and the POST passes.
    const csrf = (JSON.parse(back.body) as Echo).headers['x-proxyauth-csrf-token'];
    t.match(csrf, /^[A-Za-z0-9_-]{44}$/, 'a token reached the backend with the page');
    const sameSite = await send(proxy, '/app/form', {
      method: 'POST',
      headers: {
        cookie,
        origin: proxy,
        'x-csrf-token': String(csrf),
        'content-type': 'text/plain',
      },
      body: 'a=1',
    });
    t.equal(sameSite.status, 200, `a cookie POST with the token passes: ${sameSite.body}`);
    const bearerGet = await get('/app/page', { authorization: `Bearer ${alice.token}` });
    t.equal(
      (JSON.parse(bearerGet.body) as Echo).headers['x-proxyauth-csrf-token'],
      undefined,
      'no token for a bearer session (nginx drops the empty header)',
    );
    const bearerPost = await send(proxy, '/app/form', {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'text/plain' },
      body: 'a=1',
    });
    t.equal(bearerPost.status, 200, 'bearer requests are exempt');
    t.equal((JSON.parse(bearerPost.body) as Echo).bodyBytes, 3, 'nginx forwards the body itself');
    const api = await get('/app/page', { accept: 'application/json' });
    t.equal(api.status, 401, 'an API client gets the 401');
  });

  await t.test('open redirects through rd are refused', async (t) => {
    for (const rd of [
      '//evil.test/',
      'https://evil.test/',
      '/\\evil.test/',
      'https:evil.test',
      'https://127.0.0.1@evil.test/',
      '\\\\evil.test',
      '/app\r\nSet-Cookie: x=1',
      'javascript:alert(1)',
      '%2F%2Fevil.test',
    ]) {
      const posted = await send(proxy, `/auth?rd=${encodeURIComponent(rd)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
      });
      t.equal(posted.status, 400, `${JSON.stringify(rd)}: ${posted.body}`);
      t.equal(JSON.parse(posted.body).error, 'REDIRECT_NOT_ALLOWED');
      t.notOk(posted.headers['set-cookie'], 'no session for a refused login');
    }
  });
}

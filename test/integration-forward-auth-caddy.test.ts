// Forward-auth behind a real Caddy (forward_auth), with the Caddyfile of README "Forward-auth":
// Caddy relays every refusal as the gateway answered it, the 302 to the login page included.
import t from 'tap';
import {
  FORWARD_AUTH_USERS,
  forwardAuthRoutes,
  startForwardAuthCaddy,
} from './helpers/forward-proxies.js';
import { loginWithId, type RunningGateway, startGateway } from './helpers/gateway.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

const backend = await startUpstream();
const gw: RunningGateway = await startGateway({
  users: FORWARD_AUTH_USERS,
  config: { trusted_proxies: ['127.0.0.1'], session_cookie: true },
  routes: forwardAuthRoutes(backend.origin),
});
const hostOf = (url: string) => new URL(url).host;
const caddy = await startForwardAuthCaddy(t.testdir(), hostOf(gw.url), hostOf(backend.origin));
if (caddy === undefined) {
  t.test('caddy', { skip: 'caddy is not installed (apt-get install caddy)' }, async () => {});
  await gw.stop();
  await backend.close();
} else {
  t.teardown(async () => {
    await caddy.stop();
    await gw.stop();
    await backend.close();
  });
  await run(caddy.url);
}

async function run(proxy: string): Promise<void> {
  const alice = await loginWithId(gw.url, 'alice', 'alice-password');
  const bob = await loginWithId(gw.url, 'bob', 'bob-password');
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    fetch(`${proxy}${path}`, { method, headers, redirect: 'manual' });

  await t.test('allowed: the backend gets the gateway identity', async (t) => {
    const res = await get('/app/page?x=1', {
      authorization: `Bearer ${alice.token}`,
      'x-user': 'mallory',
    });
    t.equal(res.status, 200);
    const echo = (await res.json()) as Echo;
    t.equal(echo.url, '/app/page?x=1');
    t.equal(echo.headers['x-user'], 'alice');
    t.equal(echo.headers['x-user-roles'], 'read,write');
    t.equal(echo.headers.authorization, undefined, 'the bearer token never reaches the backend');
    const pub = await get('/public/', { 'x-user': 'mallory', 'x-user-roles': 'admin' });
    t.equal(pub.status, 200);
    const seen = (await pub.json()) as Echo;
    // Empty, not absent: Caddy 2.6 copies the gateway's empty value (README: Known limits).
    t.equal(seen.headers['x-user'] ?? '', '', "a client's x-user never reaches the backend");
    t.equal(seen.headers['x-user-roles'] ?? '', '');
  });

  await t.test('refusals are relayed with their status and code', async (t) => {
    const cases: [string, Record<string, string>, string, number, string][] = [
      ['/app/x', {}, 'GET', 401, 'TOKEN_MISSING'],
      ['/alice-only/', { authorization: `Bearer ${bob.token}` }, 'GET', 403, 'USER_NOT_ALLOWED'],
      ['/read/x', { authorization: `Bearer ${alice.token}` }, 'DELETE', 405, 'METHOD_NOT_ALLOWED'],
      ['/nowhere', { authorization: `Bearer ${alice.token}` }, 'GET', 404, 'NO_ROUTE'],
    ];
    for (const [path, headers, method, status, code] of cases) {
      const res = await get(path, headers, method);
      t.equal(res.status, status, `${method} ${path}`);
      t.equal(res.headers.get('x-proxyauth-error'), code);
      t.equal(((await res.json()) as { error: string }).error, code);
    }
  });

  await t.test("a client's X-Original-URI changes nothing", async (t) => {
    const spoofed = { 'x-original-uri': '/public/', 'x-original-method': 'GET' };
    const res = await get('/app/x', spoofed);
    t.equal(res.status, 401, 'Caddy drops it; its own X-Forwarded-Uri is judged');
    await res.arrayBuffer();
  });

  await t.test('a browser is redirected to the login page and back', async (t) => {
    const html = { accept: 'text/html' };
    const first = await get('/app/page?a=1', html);
    t.equal(first.status, 302, 'the X-Forwarded-* family gets a 302 (Caddy relays it)');
    t.equal(first.headers.get('location'), '/auth?rd=%2Fapp%2Fpage%3Fa%3D1');
    const posted = await fetch(`${proxy}/auth?rd=%2Fapp%2Fpage%3Fa%3D1`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...html, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=alice&password=alice-password',
    });
    t.equal(posted.status, 303);
    t.equal(posted.headers.get('location'), '/app/page?a=1');
    const cookie = String(posted.headers.get('set-cookie')).split(';')[0]!;
    const back = await get('/app/page?a=1', { ...html, cookie });
    t.equal(back.status, 200);
    t.equal(((await back.json()) as Echo).headers['x-user'], 'alice');
    const evil = await fetch(`${proxy}/auth?rd=${encodeURIComponent('//evil.test/')}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
    });
    t.equal(evil.status, 400);
    t.equal(((await evil.json()) as { error: string }).error, 'REDIRECT_NOT_ALLOWED');
  });
}

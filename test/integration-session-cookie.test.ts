import t from 'tap';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n  - prefix: /pub\n    target: ${upstream.origin}\n    secure: false\n`;
const users = [{ username: 'alice', password: 'alice-password', roles: ['r'] }];
const gw: RunningGateway = await startGateway({
  users,
  config: {
    session_cookie: true,
    csrf_token: false,
    token_expiry_seconds: 600,
    max_age_session_cookie: 3600,
  },
  routes,
});
const redirecting: RunningGateway = await startGateway({
  users,
  config: { session_cookie: true, csrf_token: false, login_redirect_url: '/api/home' },
  routes,
});
t.teardown(async () => {
  await gw.stop();
  await redirecting.stop();
  await upstream.close();
});

function formLogin(url: string, password = 'alice-password'): Promise<Response> {
  return fetch(`${url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `username=alice&password=${password}`,
    redirect: 'manual',
  });
}

function cookieOf(res: Response): string {
  const set = res.headers.getSetCookie();
  const ours = set.find((c) => c.startsWith('session_token='));
  if (ours === undefined) throw new Error(`no session cookie in ${JSON.stringify(set)}`);
  return ours.slice('session_token='.length, ours.indexOf(';'));
}

t.test('a login sets the session cookie with every protection and a bounded Max-Age', async (t) => {
  const res = await formLogin(gw.url);
  t.equal(res.status, 200, 'JSON answer without login_redirect_url');
  const [set] = res.headers.getSetCookie();
  t.match(
    set,
    /^session_token=[A-Za-z0-9_-]+; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=(\d+)$/,
  );
  const maxAge = Number(/Max-Age=(\d+)/.exec(set ?? '')?.[1]);
  t.ok(maxAge <= 600 && maxAge >= 590, `Max-Age ${maxAge} is the token's remaining life, not 3600`);
  const body = (await res.json()) as { token: string };
  t.equal(cookieOf(res), body.token, 'the cookie holds the issued token');
});

t.test('with login_redirect_url the login answers 303 to it', async (t) => {
  const res = await formLogin(redirecting.url);
  t.equal(res.status, 303);
  t.equal(res.headers.get('location'), '/api/home');
  t.ok(cookieOf(res));
  const failed = await formLogin(redirecting.url, 'wrong');
  t.equal(failed.status, 401, 'a failed login is not redirected');
  t.same(failed.headers.getSetCookie(), [], 'and sets no cookie');
});

t.test('the cookie is a credential, and never reaches the backend', async (t) => {
  const token = cookieOf(await formLogin(gw.url));
  const res = await fetch(`${gw.url}/api/x`, {
    headers: { cookie: `theme=dark; session_token=${token}; lang=fr` },
  });
  t.equal(res.status, 200);
  const echo = (await res.json()) as { headers: Record<string, string> };
  t.equal(echo.headers['x-user'], 'alice');
  t.equal(echo.headers.cookie, 'theme=dark; lang=fr', 'other cookies pass, ours is removed');
  const only = await fetch(`${gw.url}/api/x`, { headers: { cookie: `session_token=${token}` } });
  const onlyEcho = (await only.json()) as { headers: Record<string, string> };
  t.notOk('cookie' in onlyEcho.headers, 'a Cookie header left empty is dropped');
  const pub = await fetch(`${gw.url}/pub/x`, {
    headers: { cookie: `a=1; session_token=${token}` },
  });
  const pubEcho = (await pub.json()) as { headers: Record<string, string> };
  t.equal(pubEcho.headers.cookie, 'a=1', 'public routes never see it either');
});

t.test('a bad, doubled or overridden cookie does not pass', async (t) => {
  const token = cookieOf(await formLogin(gw.url));
  const bad = await fetch(`${gw.url}/api/x`, { headers: { cookie: 'session_token=nope' } });
  t.equal(bad.status, 401);
  const two = await fetch(`${gw.url}/api/x`, {
    headers: { cookie: `session_token=${token}; session_token=other` },
  });
  t.equal(two.status, 400, 'two different session cookies are ambiguous');
  t.equal(((await two.json()) as { error: string }).error, 'CREDENTIALS_AMBIGUOUS');
  const same = await fetch(`${gw.url}/api/x`, {
    headers: { cookie: `session_token=${token}`, 'x-extra': '1' },
  });
  t.equal(same.status, 200);
  const header = await fetch(`${gw.url}/api/x`, {
    headers: { cookie: `session_token=${token}`, authorization: 'Bearer wrong' },
  });
  t.equal(header.status, 401, 'an Authorization header decides alone');
  const bearer = await login(gw.url, 'alice', 'alice-password');
  const both = await fetch(`${gw.url}/api/x`, {
    headers: { cookie: 'session_token=garbage', authorization: `Bearer ${bearer}` },
  });
  t.equal(both.status, 200, 'a valid bearer wins over a bad cookie');
});

t.test('a browser without a valid session is sent to log in, and brought back', async (t) => {
  const html = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
  const get = (path: string, headers: Record<string, string>, method = 'GET') =>
    fetch(`${gw.url}${path}`, { method, headers, redirect: 'manual' });
  // No cookie, a garbage cookie, a revoked one: a navigation is redirected, the query kept.
  const token = cookieOf(await formLogin(gw.url));
  const logout = await fetch(`${gw.url}/logout`, {
    headers: { cookie: `session_token=${token}` },
    redirect: 'manual',
  });
  await logout.arrayBuffer();
  for (const cookie of [undefined, 'session_token=nope', `session_token=${token}`]) {
    const res = await get('/api/items?page=2', cookie ? { ...html, cookie } : html);
    t.equal(res.status, 302, `cookie ${cookie?.slice(0, 20)}: redirected`);
    t.equal(res.headers.get('location'), '/auth?rd=%2Fapi%2Fitems%3Fpage%3D2');
    t.equal(res.headers.get('cache-control'), 'no-store');
    await res.arrayBuffer();
  }
  const head = await get('/api/items', html, 'HEAD');
  t.equal(head.status, 302, 'HEAD too');
  // Anything else is an API client, or not a navigation: the JSON 401 as before.
  const cases: [string, Record<string, string>, string][] = [
    ['no Accept naming text/html', { accept: 'application/json' }, 'GET'],
    ['curl', { accept: '*/*' }, 'GET'],
    ['an Authorization header', { ...html, authorization: 'Bearer nope' }, 'GET'],
    ['a POST', html, 'POST'],
  ];
  for (const [what, headers, method] of cases) {
    const res = await get('/api/items', headers, method);
    t.equal(res.status, 401, what);
    await res.arrayBuffer();
  }
  const pub = await get('/pub/x', html);
  t.equal(pub.status, 200, 'a public route needs no session');
  await pub.arrayBuffer();
  // The login page at /auth?rd= posts to its own URL: logging in brings the browser back.
  const back = await fetch(`${gw.url}/auth?rd=%2Fapi%2Fitems%3Fpage%3D2`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...html },
    body: 'username=alice&password=alice-password',
    redirect: 'manual',
  });
  t.equal(back.status, 303);
  t.equal(back.headers.get('location'), '/api/items?page=2');
  const again = await get('/api/items?page=2', {
    ...html,
    cookie: `session_token=${cookieOf(back)}`,
  });
  t.equal(again.status, 200, 'and the session works');
  await again.arrayBuffer();
});

t.test('bearer mode: a browser gets the JSON 401, never a redirect', async (t) => {
  const bearerGw = await startGateway({ users, routes });
  t.teardown(() => bearerGw.stop());
  const res = await fetch(`${bearerGw.url}/api/x`, {
    headers: { accept: 'text/html' },
    redirect: 'manual',
  });
  t.equal(res.status, 401);
  await res.arrayBuffer();
});

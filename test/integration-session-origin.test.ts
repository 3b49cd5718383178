/*
 * Session-cookie mode's own endpoints refuse foreign pages: login CSRF (a foreign form logging
 * a browser into the attacker's account) and forced logout. Found in review of issue 9.
 */
import t from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const gw: RunningGateway = await startGateway({
  users: [{ username: 'alice', password: 'alice-password' }],
  config: { session_cookie: true, cors_origins: ['https://app.test'] },
  routes: `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});
const own = new URL(gw.url).origin;

function login(headers: Record<string, string>): Promise<Response> {
  return fetch(`${gw.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: 'username=alice&password=alice-password',
    redirect: 'manual',
  });
}

function cookieOf(res: Response): string {
  const set = res.headers.getSetCookie().find((c) => c.startsWith('session_token='));
  if (set === undefined) throw new Error('no session cookie');
  return set.slice('session_token='.length, set.indexOf(';'));
}

t.test('a login from a foreign page is refused and sets no cookie', async (t) => {
  const foreign: Record<string, string>[] = [
    { origin: 'https://evil.test' },
    { origin: 'null' },
    { origin: 'https://app.test.evil.test' },
    { referer: 'https://evil.test/form' },
    { origin: 'https://evil.test', accept: 'text/html' },
  ];
  for (const headers of foreign) {
    const res = await login(headers);
    t.equal(res.status, 403, JSON.stringify(headers));
    t.same(res.headers.getSetCookie(), [], 'no cookie');
    const body = await res.text();
    if (headers.accept === undefined) t.match(body, /CSRF_ORIGIN_MISMATCH/);
    else t.match(body, /<html/i, 'a browser gets the login page with the error');
  }
  const allowed: Record<string, string>[] = [
    {},
    { origin: own },
    { origin: 'https://app.test' },
    { referer: `${own}/auth` },
  ];
  for (const headers of allowed) {
    const res = await login(headers);
    t.equal(res.status, 200, `allowed: ${JSON.stringify(headers)}`);
    t.ok(cookieOf(res));
  }
});

t.test('a logout from a foreign page is refused; the session stays', async (t) => {
  const token = cookieOf(await login({}));
  const cookie = `session_token=${token}`;
  const forced = await fetch(`${gw.url}/logout`, {
    headers: { cookie, origin: 'https://evil.test' },
    redirect: 'manual',
  });
  t.equal(forced.status, 403);
  t.equal((await fetch(`${gw.url}/api/x`, { headers: { cookie } })).status, 200, 'still in');
  const mine = await fetch(`${gw.url}/logout`, {
    method: 'POST',
    headers: { cookie, origin: own },
    redirect: 'manual',
  });
  t.equal(mine.status, 200);
  t.equal((await fetch(`${gw.url}/api/x`, { headers: { cookie } })).status, 401, 'logged out');
  // An API client with a bearer token is not a browser page: its Origin is not judged.
  const bearer = (await (await login({})).json()) as { token: string };
  const api = await fetch(`${gw.url}/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer.token}`, origin: 'https://evil.test' },
  });
  t.equal(api.status, 200);
});

// Brute-force protection on the real CLI with 2 edges: ratelimit_auth on /auth and /adm, the
// lockout of a user and of an address after max_failures (a correct password refused while
// banned, accepted after ban_time), `proxyauth unban`, the same for admin-token guesses, bans
// logged, kept across a restart, and no help to user enumeration.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { logged, type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';

const ADMIN = 'a'.repeat(64); // the helper's token_admin
const users = [
  { username: 'alice', password: 'alice-password' },
  { username: 'bob', password: 'bob-password' },
];
const routes = 'routes: []\n';

async function auth(g: RunningGateway, username: string, password: string, headers = {}) {
  const res = await fetch(`${g.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ username, password }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  return {
    status: res.status,
    error: body.error,
    body,
    retryAfter: res.headers.get('retry-after'),
  };
}

async function adminStats(g: RunningGateway, token: string) {
  const res = await fetch(`${g.url}/adm/stats`, { headers: { 'x-auth-token': token } });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, error: body.error };
}

const lockout = (extra: Record<string, unknown> = {}) => ({
  login_lockout: { max_failures: 3, find_time: 60, ban_time: 3, ...extra },
});

t.test('ratelimit_auth limits /auth and /adm by address', async (t) => {
  const g = await startGateway({
    users,
    routes,
    config: {
      ratelimit_auth: { requests_per_second: 1, burst: 1 },
      login_lockout: { max_failures: 0 },
    },
  });
  t.teardown(() => g.stop());
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await auth(g, 'alice', 'alice-password')).status);
  t.same(statuses.slice(0, 2), [200, 200]);
  t.ok(statuses.includes(429), 'the third login within a second is refused');
  const refused = await auth(g, 'bob', 'bob-password');
  t.equal(refused.status, 429, 'per address: another user from the same address too');
  t.equal(refused.error, 'TooManyRequests');
  await new Promise((r) => setTimeout(r, 2_100));
  t.equal((await adminStats(g, ADMIN)).status, 200);
  t.equal((await adminStats(g, ADMIN)).status, 200);
  t.equal((await adminStats(g, ADMIN)).status, 429, '/adm shares the auth budget');
});

t.test('a user is locked out after max_failures, from any address, then freed', async (t) => {
  // One address per attempt (trusted proxy): only the user's count can ban.
  const g = await startGateway({
    users,
    routes,
    config: { ...lockout(), trusted_proxies: ['127.0.0.1'] },
  });
  t.teardown(() => g.stop());
  const from = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i}` });
  for (let i = 0; i < 3; i++) {
    t.equal((await auth(g, 'alice', 'wrong', from(i))).error, 'INVALID_CREDENTIALS');
  }
  const locked = await auth(g, 'alice', 'alice-password', from(10));
  t.equal(locked.status, 429, 'the right password is refused while banned');
  t.equal(locked.error, 'LOGIN_LOCKED');
  t.ok(
    Number(locked.retryAfter) >= 1 && Number(locked.retryAfter) <= 4,
    'Retry-After: what is left of ban_time, rounded up to the second',
  );
  t.equal(locked.body.after, Number(locked.retryAfter));
  t.equal((await auth(g, 'bob', 'bob-password', from(10))).status, 200, 'other users log in');
  await waitFor(() => logged(g.output(), { message: 'login ban', kind: 'user' }).length > 0, 5_000);
  const [ban] = logged(g.output(), { message: 'login ban', kind: 'user' });
  t.equal(ban?.user, 'alice', 'the ban is logged with the user');
  t.equal(ban?.ip, '198.51.100.2', 'and the address of the last failure');
  t.notMatch(g.output(), 'alice-password', 'no password in the logs');
  // A ban ends at ban_time rounded up to the second (bans are stored in unix seconds).
  await new Promise((r) => setTimeout(r, 4_100));
  t.equal((await auth(g, 'alice', 'alice-password', from(11))).status, 200, 'free after ban_time');
});

t.test('an address is locked out after max_failures over any usernames', async (t) => {
  const g = await startGateway({ users, routes, config: lockout() });
  t.teardown(() => g.stop());
  for (const name of ['alice', 'nobody', 'bob']) {
    t.equal((await auth(g, name, 'wrong')).error, 'INVALID_CREDENTIALS');
  }
  t.equal((await auth(g, 'bob', 'bob-password')).error, 'LOGIN_LOCKED', 'the address is banned');
  t.equal((await adminStats(g, ADMIN)).error, 'LOGIN_LOCKED', 'from the admin API too');
  await waitFor(() => logged(g.output(), { message: 'login ban', kind: 'ip' }).length > 0, 5_000);
  t.equal(logged(g.output(), { message: 'login ban', kind: 'ip' })[0]?.ip, '127.0.0.1');
});

t.test('unknown and known usernames are locked out alike (no enumeration)', async (t) => {
  const g = await startGateway({
    users,
    routes,
    config: { ...lockout(), trusted_proxies: ['127.0.0.1'] },
  });
  t.teardown(() => g.stop());
  const outcome = async (name: string) => {
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const r = await auth(g, name, 'wrong', {
        'x-forwarded-for': `192.0.2.${name.length * 10 + i}`,
      });
      seen.push(`${r.status} ${String(r.error)}`);
    }
    return seen;
  };
  const known = await outcome('alice');
  const unknown = await outcome('mallory');
  t.same(known, unknown, 'same answers');
  t.same(known.at(-1), '429 LOGIN_LOCKED');
});

t.test('concurrent guesses: never more than max_failures checked per ban', async (t) => {
  const g = await startGateway({ users, routes, config: lockout({ ban_time: 60 }) });
  t.teardown(() => g.stop());
  const answers = await Promise.all(Array.from({ length: 20 }, () => auth(g, 'alice', 'wrong')));
  const wrong = answers.filter((a) => a.error === 'INVALID_CREDENTIALS').length;
  t.equal(wrong, 3, 'exactly max_failures passwords were checked');
  t.equal(answers.filter((a) => a.error === 'LOGIN_LOCKED').length, 17, 'the rest: locked');
});

t.test('proxyauth unban lifts a ban at once, and bans survive a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'proxyauth-ban-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = lockout({ ban_time: 600 });
  let g = await startGateway({ users, routes, config, dir });
  for (let i = 0; i < 3; i++) await auth(g, 'alice', 'wrong');
  t.equal((await auth(g, 'alice', 'alice-password')).error, 'LOGIN_LOCKED');
  await g.stop();
  g = await startGateway({ users, routes, config, dir });
  t.teardown(() => g.stop());
  t.equal(
    (await auth(g, 'alice', 'alice-password')).error,
    'LOGIN_LOCKED',
    'still banned after a restart',
  );
  const dataDir = join(dir, 'data');
  const ip = await runCli(['unban', '--ip', '127.0.0.1', '--data-dir', dataDir]);
  t.equal(ip.code, 0);
  t.match(ip.stdout, /unbanned ip 127\.0\.0\.1/);
  t.equal((await auth(g, 'alice', 'alice-password')).error, 'LOGIN_LOCKED', 'the user ban holds');
  const user = await runCli(['unban', '--user', 'alice', '--data-dir', dataDir]);
  t.equal(user.code, 0);
  t.match(user.stdout, /unbanned user alice/);
  t.equal((await auth(g, 'alice', 'alice-password')).status, 200, 'logged in right after unban');
  const none = await runCli(['unban', '--user', 'alice', '--data-dir', dataDir]);
  t.match(none.stdout, /no ban in force for user alice/);
});

t.test('admin token guesses lock the address out of /adm', async (t) => {
  const g = await startGateway({ users, routes, config: lockout() });
  t.teardown(() => g.stop());
  for (let i = 0; i < 3; i++) {
    t.equal((await adminStats(g, 'b'.repeat(64))).error, 'ADMIN_TOKEN_INVALID');
  }
  const locked = await adminStats(g, ADMIN);
  t.equal(locked.status, 429, 'the right token is refused while the address is banned');
  t.equal(locked.error, 'LOGIN_LOCKED');
  await waitFor(() => logged(g.output(), { message: 'login ban', kind: 'ip' }).length > 0, 5_000);
  t.notMatch(g.output(), ADMIN, 'the admin token is never logged');
});

t.test('max_failures 0 turns the lockout off', async (t) => {
  const g = await startGateway({ users, routes, config: { login_lockout: { max_failures: 0 } } });
  t.teardown(() => g.stop());
  for (let i = 0; i < 6; i++)
    t.equal((await auth(g, 'alice', 'wrong')).error, 'INVALID_CREDENTIALS');
  t.equal((await auth(g, 'alice', 'alice-password')).status, 200);
});

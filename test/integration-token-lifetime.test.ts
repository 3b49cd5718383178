import t from 'tap';
import {
  login,
  type RunningGateway,
  startGateway,
  waitFor,
  writeConfig,
} from './helpers/gateway.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

// Tokens are cached per edge after their first verification; these tests pin down that the
// cache never extends what the token or the current config allow.
const upstream = await startUpstream();
const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`;
const users = [
  { username: 'alice', password: 'alice-password', roles: ['read'] },
  { username: 'bob', password: 'bob-password', roles: ['read'] },
];
const gw: RunningGateway = await startGateway({
  users,
  routes,
  config: { token_expiry_seconds: 5 },
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

async function call(token: string, url = gw.url): Promise<{ status: number; echo?: Echo }> {
  const res = await fetch(`${url}/api/x`, { headers: { authorization: `Bearer ${token}` } });
  return res.status === 200
    ? { status: 200, echo: (await res.json()) as Echo }
    : { status: res.status };
}

t.test('a cached token still expires on time', async (t) => {
  const token = await login(gw.url);
  for (let i = 0; i < 4; i++) t.equal((await call(token)).status, 200, 'valid and cached');
  await new Promise((r) => setTimeout(r, 5_100));
  t.equal((await call(token)).status, 401, 'expired although cached');
});

t.test('roles and users come from the current config, not from the token', async (t) => {
  // A gateway of its own with the default token lifetime: with 5 s tokens, a reload slowed down
  // by a busy machine would let the token expire before the new roles show, and the test would
  // fail for the wrong reason.
  const own = await startGateway({ users, routes });
  t.teardown(() => own.stop());
  const callOwn = (token: string) => call(token, own.url);
  const alice = await login(own.url);
  const bob = await login(own.url, 'bob', 'bob-password');
  t.equal((await callOwn(alice)).echo?.headers['x-user-roles'], 'read');
  const changed = [{ ...users[0]!, roles: ['read', 'admin'] }];
  await writeConfig(own.configDir, own.port, { users: changed, routes });
  t.ok(
    await waitFor(
      async () => (await callOwn(alice)).echo?.headers['x-user-roles'] === 'read,admin',
      10_000,
    ),
    'the new roles apply to a token issued before the reload',
  );
  t.equal((await callOwn(bob)).status, 401, 'a removed user loses access at once');
});

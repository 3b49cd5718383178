import t from 'tap';
import { Agent, fetch } from 'undici';
import { type RunningGateway, startGateway } from './helpers/gateway.js';

// One crypto thread per edge: its queue holds 64 logins; a burst beyond that must be refused
// at once with 503 + Retry-After instead of queueing without bound.
// Floods of failing logins on purpose: the lockout (integration-login-lockout.test.ts) is off.
const gw: RunningGateway = await startGateway({
  config: { worker: 1, login_lockout: { max_failures: 0 } },
  routes: 'routes: []\n',
});
const agent = new Agent({ connections: 250 });
t.teardown(async () => {
  await agent.close();
  await gw.stop();
});

t.test('a login flood beyond the crypto queue gets 503 with Retry-After', async (t) => {
  const burst = Array.from({ length: 250 }, () =>
    fetch(`${gw.url}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'wrong-password' }),
      dispatcher: agent,
    }).then(async (res) => ({
      status: res.status,
      retry: res.headers.get('retry-after'),
      body: await res.json(),
    })),
  );
  const results = await Promise.all(burst);
  const busy = results.filter((r) => r.status === 503);
  const denied = results.filter((r) => r.status === 401);
  t.comment(`401: ${denied.length}, 503: ${busy.length}`);
  t.equal(busy.length + denied.length, results.length, 'only 401 and 503 answers');
  t.ok(busy.length > 0, 'some logins were refused as overload');
  t.ok(denied.length >= 2 * 64, 'the queued logins were all verified');
  t.equal(busy[0]?.retry, '1');
  t.equal((busy[0]?.body as { error?: string } | undefined)?.error, 'OVERLOADED');
});

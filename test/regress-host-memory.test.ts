// The edge remembers the last Host it accepted (worker/request-checks.ts) so that the common
// case costs a comparison. Its starting value was '', so on an edge that had not yet accepted
// a Host an empty one compared equal and passed unchecked (CI failure of 2026-12-01:
// integration-request-framing's "an empty Host" answered 200, depending on which edge took the
// connection). One edge here, and the bad values are its very first requests.
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { routesYaml } from './helpers/routes-yaml.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const gw = await startGateway({
  config: { num_instances: 1 },
  routes: routesYaml(upstream.origin, [{ prefix: '/', path: '', secure: false }]),
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const EMPTY_HOSTS = [
  ['an empty Host', 'Host:\r\n'],
  ['a Host of spaces', 'Host:    \r\n'],
  ['a Host of a tab', 'Host:\t\r\n'],
] as const;

async function statusOf(headers: string): Promise<number | undefined> {
  const result = await rawExchange(gw.port, [`GET /host HTTP/1.1\r\n${headers}\r\n`]);
  return result.responses[0]?.status;
}

t.test('before the edge has accepted any Host', async (t) => {
  for (const [name, headers] of EMPTY_HOSTS) t.equal(await statusOf(headers), 400, name);
});

t.test('after it has accepted one', async (t) => {
  t.equal(await statusOf('Host: a.test\r\n'), 200, 'a.test');
  for (const [name, headers] of EMPTY_HOSTS) t.equal(await statusOf(headers), 400, name);
  t.equal(await statusOf('Host: a.test\r\n'), 200, 'a.test again');
});

// Several nodes as one over Redis, on the real CLI: two gateways (2 edges each, separate config
// and data dirs, the same secret) and one redis-server; then an outage, an empty Redis, and a
// third node started late.
import t from 'tap';
import {
  freshGet,
  logged,
  login,
  loginWithId,
  type RunningGateway,
  revokeTokenId,
  startGateway,
  waitFor,
} from './helpers/gateway.js';
import { startRedis } from './helpers/redis-server.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const redis = await startRedis(t.testdir());
const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`;
const config = { redis: redis.url, token_expiry_seconds: 600 };
const nodes: RunningGateway[] = [];
t.teardown(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await redis.stop();
  await upstream.close();
});

async function startNode(): Promise<RunningGateway> {
  const gw = await startGateway({ routes, config });
  nodes.push(gw);
  return gw;
}

/** The bus connects in the background: the gateway is ready before Redis answers. */
function busConnected(gw: RunningGateway): Promise<boolean> {
  return waitFor(
    () => logged(gw.output(), { message: 'redis revocation bus connected' }).length > 0,
    5_000,
  );
}

const refused = (gw: RunningGateway, token: string) => async () =>
  (await freshGet(gw.port, '/api/x', token)) === 401;

const [one, two] = [await startNode(), await startNode()];

t.test('a revocation on node 2 is refused on node 1 within 1 s', async (t) => {
  t.ok(await busConnected(one));
  t.ok(await busConnected(two));
  const { token, tokenId } = await loginWithId(one.url);
  t.equal(await freshGet(one.port, '/api/x', token), 200);
  t.equal(await freshGet(two.port, '/api/x', token), 200, 'one secret: node 2 accepts it');
  t.equal(await revokeTokenId(two.url, tokenId), 200);
  const started = Date.now();
  t.ok(await waitFor(refused(one, token), 1_000, 10), 'refused on node 1');
  t.comment(`refused on node 1 after ${Date.now() - started} ms`);
});

t.test('Redis down: both serve; a revocation made meanwhile reaches node 2 later', async (t) => {
  const { token, tokenId } = await loginWithId(one.url);
  const other = await login(one.url);
  await redis.stop();
  t.ok(
    await waitFor(
      () =>
        logged(one.output(), {
          message: 'redis unreachable: revocations are applied on this node and queued; retrying',
        }).length > 0,
      5_000,
    ),
    'the outage is logged',
  );
  t.equal(await freshGet(one.port, '/api/x', token), 200, 'node 1 serves');
  t.equal(await freshGet(two.port, '/api/x', other), 200, 'node 2 serves');
  const started = Date.now();
  t.equal(await revokeTokenId(one.url, tokenId), 200, 'the admin API answers without Redis');
  t.ok(Date.now() - started < 1_000, 'and without waiting for it');
  t.ok(await refused(one, token)(), 'refused on node 1 at once');
  t.equal(await freshGet(two.port, '/api/x', token), 200, 'node 2 cannot know yet');
  await new Promise((r) => setTimeout(r, 500));
  const outages = logged(one.output(), {
    message: 'redis unreachable: revocations are applied on this node and queued; retrying',
  });
  t.equal(outages.length, 1, 'logged once, not per retry');
  await redis.restart();
  t.ok(await waitFor(refused(two, token), 10_000), 'node 2 refuses it once Redis is back (empty)');
  t.ok(
    logged(two.output(), { message: 'redis reachable again: catching up' }).length > 0,
    'the end of the outage is logged',
  );
  t.equal(await freshGet(two.port, '/api/x', other), 200, 'other tokens still work');
});

t.test('a node started late knows every revocation', async (t) => {
  const tokens = [];
  for (let i = 0; i < 2; i++) tokens.push(await loginWithId(two.url));
  for (const { tokenId } of tokens) t.equal(await revokeTokenId(two.url, tokenId), 200);
  const three = await startNode();
  t.ok(await busConnected(three));
  for (const { token } of tokens) {
    t.ok(await waitFor(refused(three, token), 5_000), 'refused on the late node');
  }
  // Node 1's revocation of the first test, re-seeded into the empty Redis by nodes 1 and 2.
  const keys = (await redis.cli('--scan', '--pattern', 'proxyauth:rev:token:*')).trim().split('\n');
  t.equal(keys.length, 4, 'every revocation in force is in Redis again');
});

// Several nodes as one (issue 10), on the real CLI: three gateways (2 edges each) with their own
// secrets, config and data dirs, and one redis-server. Keys travel by `proxyauth sync export`
// and `sync import` (OpenPGP, passphrase file), revocations by Redis. Then an outage and an
// empty Redis, a fourth node started late, and a key rotation re-exported to the others.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runCli } from './helpers/cli.js';
import {
  freshGet,
  logged,
  loginWithId,
  type RunningGateway,
  revokeTokenId,
  startGateway,
  waitFor,
} from './helpers/gateway.js';
import { startRedis } from './helpers/redis-server.js';
import { startUpstream } from './helpers/upstream.js';

const dir = t.testdir();
const upstream = await startUpstream();
const redis = await startRedis(dir);
const passphrase = join(dir, 'passphrase');
await writeFile(passphrase, 'a passphrase the operators share out of band\n', { mode: 0o600 });
const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`;
const nodes: RunningGateway[] = [];
t.teardown(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await redis.stop();
  await upstream.close();
});

/** Node `n` has its own secret: what it shares with the others comes from an import. */
async function startNode(n: number): Promise<RunningGateway> {
  const gw = await startGateway({
    routes,
    config: {
      redis: redis.url,
      token_expiry_seconds: 900,
      secret: `node-${n}-own-secret-`.padEnd(72, String(n)),
    },
  });
  nodes.push(gw);
  const connected = () =>
    logged(gw.output(), { message: 'redis revocation bus connected' }).length > 0;
  if (!(await waitFor(connected, 10_000))) throw new Error(`node ${n}: bus not connected`);
  return gw;
}

function cli(gw: RunningGateway, ...args: string[]) {
  return runCli([...args, '--config-dir', gw.configDir, '--data-dir', join(gw.configDir, 'data')]);
}

let exports = 0;
/** `sync export` of `from`'s key ring to a new file; its path. */
async function exportKeys(t: Test, from: RunningGateway): Promise<string> {
  const file = join(dir, `keys-${++exports}.pgp`);
  const run = await cli(from, 'sync', 'export', '--out', file, '--passphrase-file', passphrase);
  t.equal(run.code, 0, `export: ${run.stderr}`);
  return file;
}

/** `sync import` on `to`, then SIGHUP; resolves once the reload applied the new ring. */
async function importKeys(t: Test, to: RunningGateway, file: string): Promise<void> {
  const run = await cli(to, 'sync', 'import', file, '--passphrase-file', passphrase);
  t.equal(run.code, 0, `import: ${run.stderr}`);
  await reload(t, to);
}

async function reload(t: Test, gw: RunningGateway): Promise<void> {
  const applied = () =>
    logged(gw.output(), { message: 'configuration reloaded', reload: 'applied' }).length;
  const before = applied();
  gw.proc.kill('SIGHUP');
  t.ok(await waitFor(() => applied() > before, 20_000), 'the reload applied the new key ring');
}

/** Statuses of a proxied GET with `token` on each node (fresh connections: any edge). */
async function statuses(gws: RunningGateway[], token: string): Promise<number[]> {
  return Promise.all(gws.map((gw) => freshGet(gw.port, '/api/x', token)));
}

const refusedOn = (gws: RunningGateway[], token: string) => async () =>
  (await statuses(gws, token)).every((s) => s === 401);

const [one, two, three] = [await startNode(1), await startNode(2), await startNode(3)];

t.test('before any import a node refuses the tokens of another', async (t) => {
  const { token } = await loginWithId(one.url);
  t.same(await statuses([one, two, three], token), [200, 401, 401]);
});

t.test('keys exported from node 1, imported on 2 and 3: its tokens work everywhere', async (t) => {
  const file = await exportKeys(t, one);
  await importKeys(t, two, file);
  await importKeys(t, three, file);
  const { token } = await loginWithId(one.url);
  t.same(await statuses([one, two, three], token), [200, 200, 200]);
  const fromTwo = await loginWithId(two.url);
  t.same(
    await statuses([one, two, three], fromTwo.token),
    [200, 200, 200],
    "node 1's active key signs on node 2 too: its tokens work on 1 and 3",
  );
});

t.test('revoked on node 3: refused on 1 and 2 within 1 s', async (t) => {
  const { token, tokenId } = await loginWithId(one.url);
  t.same(await statuses([one, two, three], token), [200, 200, 200]);
  const started = Date.now();
  t.equal(await revokeTokenId(three.url, tokenId), 200);
  t.ok(await waitFor(refusedOn([one, two, three], token), 1_000, 10), 'refused everywhere');
  t.comment(`refused on all three ${Date.now() - started} ms after the revoke was sent`);
});

let revokedInOutage = '';
t.test('Redis killed: all three serve; a revocation on node 1 reaches node 2 later', async (t) => {
  const { token, tokenId } = await loginWithId(one.url);
  await redis.stop();
  t.same(await statuses([one, two, three], token), [200, 200, 200], 'all three keep serving');
  t.equal(await revokeTokenId(one.url, tokenId), 200, 'a revocation is taken during the outage');
  t.equal(await freshGet(one.port, '/api/x', token), 401, 'and holds on node 1 at once');
  t.equal(await freshGet(two.port, '/api/x', token), 200, 'node 2 cannot know yet');
  const other = await loginWithId(two.url);
  t.equal(await freshGet(three.port, '/api/x', other.token), 200, 'logins work too');
  await redis.restart();
  t.ok(
    await waitFor(refusedOn([two, three], token), 15_000, 100),
    'converged after Redis returned',
  );
  revokedInOutage = token;
});

t.test('a fourth node started late knows every revocation', async (t) => {
  const four = await startNode(4);
  await importKeys(t, four, await exportKeys(t, one));
  const fresh = await loginWithId(one.url);
  t.equal(await freshGet(four.port, '/api/x', fresh.token), 200, 'a live token works there');
  t.ok(
    await waitFor(
      async () => (await freshGet(four.port, '/api/x', revokedInOutage)) === 401,
      5_000,
    ),
    'the token revoked during the outage is refused there',
  );
});

t.test('rotate on node 1 and re-export: old and new tokens work everywhere', async (t) => {
  const old = await loginWithId(one.url);
  const rotated = await cli(one, 'keys', 'rotate');
  t.equal(rotated.code, 0, `rotate: ${rotated.stderr}`);
  await reload(t, one);
  const file = await exportKeys(t, one);
  for (const gw of nodes.slice(1)) await importKeys(t, gw, file);
  const fresh = await loginWithId(one.url);
  const keyId = (token: string) => Buffer.from(token, 'base64url').readUInt32BE(1);
  t.not(keyId(fresh.token), keyId(old.token), 'the new token names another key');
  t.same(await statuses(nodes, old.token), [200, 200, 200, 200], 'old tokens still work');
  t.same(await statuses(nodes, fresh.token), [200, 200, 200, 200], 'new ones too');
  const fromThree = await loginWithId(three.url);
  t.same(await statuses(nodes, fromThree.token), [200, 200, 200, 200], 'node 3 signs with it');
});

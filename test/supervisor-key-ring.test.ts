// The key ring's lifecycle in the supervisor (KeyRingKeeper): config.json's secret seeds the
// ring; a new secret is a rotation whose old key verifies until its tokens expire; removed and
// expired keys leave the snapshot; a collision is a config error naming the file and key; the
// import dir installs files encrypted to this node and signed by a trusted node.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { loadConfigDir } from '../conf/load.js';
import type { Logger } from '../shared/log.js';
import { openStore, type Store } from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';
import { KeyRingKeeper } from '../supervisor/key-ring.js';
import { buildBundle } from '../supervisor/sync-bundle.js';
import { ensureNodeKey, readNodeKey, seal } from '../supervisor/sync-pgp.js';
import { writeConfig } from './helpers/gateway.js';

const S1 = 'first-secret-'.padEnd(64, '1');
const S2 = 'second-secret-'.padEnd(64, '2');
const EXPIRY = 600;
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

interface Node {
  configDir: string;
  dataDir: string;
  store: Store;
  keeper: KeyRingKeeper;
  clock: { now: number };
  setSecret: (secret: string) => Promise<void>;
  snapshot: () => ReturnType<KeyRingKeeper['snapshot']>;
}

async function node(t: Test): Promise<Node> {
  const configDir = mkdtempSync(join(tmpdir(), 'proxyauth-ring-'));
  t.teardown(() => rmSync(configDir, { recursive: true, force: true }));
  const dataDir = join(configDir, 'data');
  const store = openStore(dataDir, { readOnly: false });
  t.teardown(() => store.close());
  const clock = { now: 1_800_000_000 };
  const keeper = new KeyRingKeeper(store, { configDir, dataDir }, quiet, () => clock.now);
  const setSecret = (secret: string) =>
    writeConfig(configDir, 0, { routes: '', config: { secret, token_expiry_seconds: EXPIRY } });
  await setSecret(S1);
  return {
    configDir,
    dataDir,
    store,
    keeper,
    clock,
    setSecret,
    snapshot: async () => keeper.snapshot(await loadConfigDir(configDir)),
  };
}

t.test('a new secret in config.json rotates; the old one verifies until expiry', async (t) => {
  const n = await node(t);
  t.same(await n.snapshot(), { active: S1, verifyOnly: [] }, 'seeded from config.json');
  t.same(await n.snapshot(), { active: S1, verifyOnly: [] }, 'a reload changes nothing');
  await n.setSecret(S2);
  n.clock.now += 10;
  t.same(await n.snapshot(), { active: S2, verifyOnly: [S1] });
  const old = n.store.keyRing().find((k) => k.secret === S1);
  t.match(old, { source: 'config', retiredAt: n.clock.now, verifyUntil: n.clock.now + EXPIRY });
  n.clock.now += EXPIRY - 1;
  t.same(await n.snapshot(), { active: S2, verifyOnly: [S1] }, 'one second before the end');
  n.clock.now += 1;
  t.same(await n.snapshot(), { active: S2, verifyOnly: [] }, 'expired: out of the snapshot');
  await n.setSecret(S1);
  t.same(await n.snapshot(), { active: S2, verifyOnly: [] }, 'an old secret is not re-activated');
  t.equal(n.store.keyRing().length, 2, 'the expired key stays as a record');
});

t.test('a key rotated in the store is not undone by config.json; removed leaves', async (t) => {
  const n = await node(t);
  await n.snapshot();
  const g = 'generated-'.padEnd(64, 'g');
  await n.store.addKey(deriveTokenKeys(g).keyId, g, 'generated', n.clock.now);
  await n.store.activateKey(deriveTokenKeys(g).keyId, n.clock.now, EXPIRY);
  t.same(await n.snapshot(), { active: g, verifyOnly: [S1] }, 'config.json still says S1');
  await n.store.removeKey(deriveTokenKeys(S1).keyId, n.clock.now);
  t.same(await n.snapshot(), { active: g, verifyOnly: [] }, 'the removed key leaves');
});

t.test("a ring without an active key gets config.json's key as active", async (t) => {
  const n = await node(t);
  // config.json's secret imported verify-only before the gateway ever seeded the ring.
  await n.store.installKeys(
    [{ keyId: deriveTokenKeys(S1).keyId, secret: S1, tokenLifetime: 60, verifyUntil: null }],
    undefined,
    n.clock.now,
    EXPIRY,
  );
  t.same(await n.snapshot(), { active: S1, verifyOnly: [] });
});

t.test('a key id collision is a config error naming config.json and secret', async (t) => {
  const n = await node(t);
  // Two materials with one key id cannot be found by search (1 in 2^32): plant the record.
  await n.store.addKey(deriveTokenKeys(S2).keyId, 'x'.repeat(64), 'imported', n.clock.now);
  await n.setSecret(S2);
  const err = await n.snapshot().catch((e: unknown) => e);
  t.ok(err instanceof ConfigError);
  t.match((err as ConfigError).issues, [
    { file: join(n.configDir, 'config.json'), key: 'secret', message: /already in the ring/ },
  ]);
  t.notMatch((err as Error).message, /xxxx|second-secret/, 'no material in the message');
});

t.test('the import dir: installed once, renamed; a bad file keeps the ring', async (t) => {
  const a = await node(t);
  const b = await node(t);
  await a.setSecret(S2);
  await a.snapshot();
  await b.snapshot();
  const keyA = await ensureNodeKey(a.dataDir);
  const keyB = await ensureNodeKey(b.dataDir);
  mkdirSync(join(b.configDir, 'sync-trusted'));
  writeFileSync(join(b.configDir, 'sync-trusted', 'a.asc'), keyA.publicKey);
  const openpgp = await import('openpgp');
  const recipient = await openpgp.readKey({ armoredKey: keyB.publicKey });
  const signer = (await readNodeKey(a.dataDir))!;
  const bundle = buildBundle(a.store.keyRing(), 'node-a', a.clock.now, EXPIRY);
  const importDir = join(b.configDir, 'import');
  mkdirSync(importDir);
  writeFileSync(
    join(importDir, 'a.pgp'),
    await seal(JSON.stringify(bundle), { recipient, signer }),
  );
  b.clock.now += 5;
  const snap = await b.snapshot();
  t.same(snap, { active: S2, verifyOnly: [S1] }, "a's key signs here now");
  t.ok(existsSync(join(importDir, 'a.pgp.imported')));
  t.notOk(existsSync(join(importDir, 'a.pgp')));
  // Signed by b itself, which b does not trust: refused, nothing changes, the file stays.
  const before = b.store.keyRing();
  const selfSigned = await seal(JSON.stringify(bundle), {
    recipient,
    signer: (await readNodeKey(b.dataDir))!,
  });
  writeFileSync(join(importDir, 'b.pgp'), selfSigned);
  const err = await b.snapshot().catch((e: unknown) => e);
  t.ok(err instanceof ConfigError);
  t.match((err as ConfigError).issues, [
    { file: join(importDir, 'b.pgp'), key: '(file)', message: /^SYNC_UNTRUSTED_SIGNER/ },
  ]);
  t.same(b.store.keyRing(), before);
  t.ok(existsSync(join(importDir, 'b.pgp')), 'left for the operator');
});

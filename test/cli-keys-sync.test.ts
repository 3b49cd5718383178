// `proxyauth keys` and `proxyauth sync` through the compiled CLI (npm run build first): the ring
// is listed without material, rotated and pruned; exports are 0600 OpenPGP files; imports
// install all or nothing, and every bad file is refused with its code and changes nothing.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadConfigDir } from '../conf/load.js';
import type { Logger } from '../shared/log.js';
import { keyIdHex, keyState, openStore } from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';
import { KeyRingKeeper } from '../supervisor/key-ring.js';
import { seal } from '../supervisor/sync-pgp.js';
import { runCli } from './helpers/cli.js';
import { writeConfig } from './helpers/gateway.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A config dir with its data dir, whose ring the gateway's start would have seeded. */
async function node(t: Test, secret: string): Promise<{ dir: string; args: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'proxyauth-sync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  await writeConfig(dir, 0, { routes: '', config: { secret, token_expiry_seconds: 600 } });
  const store = openStore(data, { readOnly: false });
  await new KeyRingKeeper(store, { configDir: dir, dataDir: data }, quiet).snapshot(
    await loadConfigDir(dir),
  );
  await store.close();
  return { dir, args: ['--config-dir', dir, '--data-dir', data] };
}

function ring(dir: string): { id: string; state: string; source: string }[] {
  const store = openStore(join(dir, 'data'), { readOnly: true });
  try {
    const now = Math.floor(Date.now() / 1000);
    return store.keyRing().map((k) => ({
      id: keyIdHex(k.keyId),
      source: k.source,
      state: keyState(k, now),
    }));
  } finally {
    void store.close();
  }
}

const SA = 'node-a-secret-'.padEnd(64, 'a');
const SB = 'node-b-secret-'.padEnd(64, 'b');
const ID_A = keyIdHex(deriveTokenKeys(SA).keyId);
const ID_B = keyIdHex(deriveTokenKeys(SB).keyId);

t.test('keys list, rotate, remove', async (t) => {
  const a = await node(t, SA);
  const list = await runCli(['keys', 'list', ...a.args]);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, new RegExp(`^${ID_A}\\s+config\\s+active\\s`, 'm'));
  t.notMatch(list.stdout, /node-a-secret/, 'never the material');
  const rotate = await runCli(['keys', 'rotate', ...a.args]);
  t.equal(rotate.code, 0, rotate.stderr);
  const newId = /^new active key ([0-9a-f]{8})$/m.exec(rotate.stdout)?.[1];
  t.ok(newId, rotate.stdout);
  t.match(rotate.stdout, `key ${ID_A} is verify-only until`);
  t.match(rotate.stdout, /systemctl reload proxyauth.*HUP/);
  t.same(
    ring(a.dir),
    [
      { id: ID_A, source: 'config', state: 'verify-only' },
      { id: newId, source: 'generated', state: 'active' },
    ].sort((x, y) => x.id!.localeCompare(y.id!)),
  );
  const active = await runCli(['keys', 'remove', newId!, ...a.args]);
  t.equal(active.code, 1);
  t.match(active.stderr, /^proxyauth: KEY_ACTIVE: /);
  const unknown = await runCli(['keys', 'remove', '12345678', ...a.args]);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /KEY_UNKNOWN/);
  const removed = await runCli(['keys', 'remove', ID_A.toUpperCase(), ...a.args]);
  t.equal(removed.code, 0, removed.stderr);
  t.match(removed.stdout, `removed key ${ID_A}`);
  t.match(ring(a.dir), [{ id: ID_A, state: 'removed' }]);
  const noStore = await runCli(['keys', 'list', '--data-dir', join(a.dir, 'none')]);
  t.equal(noStore.code, 1);
  t.match(noStore.stderr, /STORE_MISSING/);
});

t.test('export to a passphrase, import on another node', async (t) => {
  const a = await node(t, SA);
  const b = await node(t, SB);
  const pass = join(a.dir, 'pass');
  writeFileSync(pass, 'correct horse battery staple\n', { mode: 0o600 });
  const out = join(a.dir, 'keys.pgp');
  const exported = await runCli([
    'sync',
    'export',
    '--out',
    out,
    '--passphrase-file',
    pass,
    ...a.args,
  ]);
  t.equal(exported.code, 0, exported.stderr);
  t.equal(statSync(out).mode & 0o777, 0o600);
  const text = readFileSync(out, 'utf8');
  t.match(text, /^-----BEGIN PGP MESSAGE-----/);
  t.notMatch(text + exported.stdout, /node-a-secret/);
  const again = await runCli([
    'sync',
    'export',
    '--out',
    out,
    '--passphrase-file',
    pass,
    ...a.args,
  ]);
  t.equal(again.code, 1);
  t.match(again.stderr, /SYNC_OUT_EXISTS/);
  t.equal(readFileSync(out, 'utf8'), text, 'not overwritten');
  const forced = await runCli([
    'sync',
    'export',
    '--out',
    out,
    '--passphrase-file',
    pass,
    '--force',
    ...a.args,
  ]);
  t.equal(forced.code, 0, forced.stderr);
  t.equal(statSync(out).mode & 0o777, 0o600);
  const noTty = await runCli(['sync', 'export', '--out', join(a.dir, 'x.pgp'), ...a.args]);
  t.equal(noTty.code, 1);
  t.match(noTty.stderr, /SYNC_PASSPHRASE/);

  const imported = await runCli(['sync', 'import', out, '--passphrase-file', pass, ...b.args]);
  t.equal(imported.code, 0, imported.stderr);
  t.match(imported.stdout, `new here: ${ID_A}`);
  t.match(imported.stdout, `active key now: ${ID_A}`);
  t.match(imported.stdout, /reload/);
  t.same(
    ring(b.dir),
    [
      { id: ID_A, source: 'imported', state: 'active' },
      { id: ID_B, source: 'config', state: 'verify-only' },
    ].sort((x, y) => x.id.localeCompare(y.id)),
  );
  const twice = await runCli(['sync', 'import', out, '--passphrase-file', pass, ...b.args]);
  t.equal(twice.code, 0, twice.stderr);
  t.match(twice.stdout, 'new here: none');
});

t.test('import --verify-only keeps the local active key', async (t) => {
  const a = await node(t, SA);
  const b = await node(t, SB);
  const pass = join(a.dir, 'pass');
  writeFileSync(pass, 'pw');
  const out = join(a.dir, 'keys.pgp');
  t.equal(
    (await runCli(['sync', 'export', '--out', out, '--passphrase-file', pass, ...a.args])).code,
    0,
  );
  const res = await runCli([
    'sync',
    'import',
    out,
    '--passphrase-file',
    pass,
    '--verify-only',
    ...b.args,
  ]);
  t.equal(res.code, 0, res.stderr);
  t.match(
    ring(b.dir),
    [
      { id: ID_A, state: 'verify-only' },
      { id: ID_B, state: 'active' },
    ].sort((x, y) => x.id.localeCompare(y.id)),
  );
});

t.test('every bad import is refused with its code and changes nothing', async (t) => {
  const a = await node(t, SA);
  const b = await node(t, SB);
  const c = await node(t, 'node-c-secret-'.padEnd(64, 'c'));
  const pass = join(a.dir, 'pass');
  writeFileSync(pass, 'right');
  const wrong = join(a.dir, 'wrong');
  writeFileSync(wrong, 'wrong');
  const out = join(a.dir, 'keys.pgp');
  t.equal(
    (await runCli(['sync', 'export', '--out', out, '--passphrase-file', pass, ...a.args])).code,
    0,
  );
  // Recipient mode: a and c have node keys, b trusts a; a file for c is not b's.
  for (const n of [a, b, c]) t.equal((await runCli(['sync', 'keygen', ...n.args])).code, 0);
  const pubOf = async (n: { args: string[] }) =>
    (await runCli(['sync', 'keygen', ...n.args])).stdout;
  const keygen = await runCli(['sync', 'keygen', ...b.args]);
  t.match(keygen.stderr, /exists already/);
  t.equal(statSync(join(b.dir, 'data', 'sync-node-key.asc')).mode & 0o777, 0o600);
  writeFileSync(join(b.dir, 'pub.asc'), await pubOf(b));
  writeFileSync(join(c.dir, 'pub.asc'), await pubOf(c));
  mkdirSync(join(b.dir, 'sync-trusted'));
  writeFileSync(join(b.dir, 'sync-trusted', 'a.asc'), await pubOf(a));
  const toC = join(a.dir, 'to-c.pgp');
  t.equal(
    (
      await runCli([
        'sync',
        'export',
        '--out',
        toC,
        '--recipient',
        join(c.dir, 'pub.asc'),
        ...a.args,
      ])
    ).code,
    0,
  );
  const fromC = join(c.dir, 'from-c.pgp');
  t.equal(
    (
      await runCli([
        'sync',
        'export',
        '--out',
        fromC,
        '--recipient',
        join(b.dir, 'pub.asc'),
        ...c.args,
      ])
    ).code,
    0,
  );

  const text = readFileSync(out, 'utf8');
  const lines = text.split('\n');
  // Flip one base64 character in the middle of the encrypted data (not the session key packet).
  const mid = Math.floor(lines.length / 2);
  const line = lines[mid]!;
  lines[mid] = `${line.slice(0, 10)}${line[10] === 'A' ? 'B' : 'A'}${line.slice(11)}`;
  const tampered = join(a.dir, 'tampered.pgp');
  writeFileSync(tampered, lines.join('\n'));
  const garbage = join(a.dir, 'garbage.pgp');
  writeFileSync(garbage, 'this is not OpenPGP at all');
  const v2 = join(a.dir, 'v2.pgp');
  writeFileSync(
    v2,
    await seal(JSON.stringify({ format: 'proxyauth-keys', version: 2 }), { passphrase: 'right' }),
  );
  const notJson = join(a.dir, 'notjson.pgp');
  writeFileSync(notJson, await seal('hello', { passphrase: 'right' }));
  // A key id of this bundle held on b with other material: the whole import is refused.
  const storeB = openStore(join(b.dir, 'data'), { readOnly: false });
  await storeB.addKey(deriveTokenKeys(SA).keyId, 'planted-'.padEnd(64, 'p'), 'imported', 1);
  await storeB.close();

  const cases: [string, string[], RegExp][] = [
    ['wrong passphrase', [out, '--passphrase-file', wrong], /SYNC_DECRYPT_FAILED/],
    ['tampered', [tampered, '--passphrase-file', pass], /SYNC_TAMPERED/],
    ['garbage', [garbage, '--passphrase-file', pass], /SYNC_NOT_OPENPGP/],
    ['other version', [v2, '--passphrase-file', pass], /SYNC_BUNDLE_VERSION/],
    ['not a bundle', [notJson, '--passphrase-file', pass], /SYNC_BUNDLE_INVALID/],
    ['wrong recipient', [toC], /SYNC_WRONG_RECIPIENT/],
    ['untrusted signer', [fromC], /SYNC_UNTRUSTED_SIGNER/],
    ['collision', [out, '--passphrase-file', pass], /KEY_COLLISION/],
    ['missing file', [join(a.dir, 'none.pgp')], /SYNC_KEY_FILE/],
  ];
  const before = ring(b.dir);
  for (const [name, args, code] of cases) {
    const res = await runCli(['sync', 'import', ...args, ...b.args]);
    t.equal(res.code, 1, name);
    t.match(res.stderr, code, name);
    t.equal(res.stdout, '', `${name}: nothing printed as done`);
    t.notMatch(res.stderr, /secret-|planted/, `${name}: no material`);
    t.same(ring(b.dir), before, `${name}: the ring is unchanged`);
  }
});

t.test('recipient mode: signed by a trusted node, imported', async (t) => {
  const a = await node(t, SA);
  const b = await node(t, SB);
  for (const n of [a, b]) t.equal((await runCli(['sync', 'keygen', ...n.args])).code, 0);
  const noKey = await node(t, 'node-d-secret-'.padEnd(64, 'd'));
  writeFileSync(join(b.dir, 'pub.asc'), (await runCli(['sync', 'keygen', ...b.args])).stdout);
  const refused = await runCli([
    'sync',
    'export',
    '--out',
    join(noKey.dir, 'k.pgp'),
    '--recipient',
    join(b.dir, 'pub.asc'),
    ...noKey.args,
  ]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /SYNC_NO_NODE_KEY/, 'unsigned exports are not made');
  const out = join(a.dir, 'k.pgp');
  t.equal(
    (
      await runCli([
        'sync',
        'export',
        '--out',
        out,
        '--recipient',
        join(b.dir, 'pub.asc'),
        ...a.args,
      ])
    ).code,
    0,
  );
  mkdirSync(join(b.dir, 'sync-trusted'));
  writeFileSync(
    join(b.dir, 'sync-trusted', 'a.asc'),
    (await runCli(['sync', 'keygen', ...a.args])).stdout,
  );
  const res = await runCli(['sync', 'import', out, ...b.args]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, `active key now: ${ID_A}`);
});

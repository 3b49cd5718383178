// Opening a store that cannot be used must fail at open, with a StoreError naming the file and
// the cause in plain words, and never crash the process (lmdb-js does on some of these files).
// Real conditions throughout: files of random bytes, truncated stores, chmod'ed dirs (as
// another user when the tests run as root), read-only and full tmpfs mounts (root only), and a
// file size limit (any user).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import t, { type Test } from 'tap';
import { openStore, STORE_FILE, type Store } from '../shared/store.js';
import { CURRENT_DATABASES, CURRENT_SCHEMA, V1_DATABASES } from './helpers/store-layout.js';
import {
  cannotRunAs,
  mountTmpfs,
  mountUnsupported,
  type OpenAnswer,
  openInChild,
  openWithFileSizeLimit,
} from './helpers/store-process.js';

const NOW = 1_700_000_000;
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

function storeAt(dir: string): string {
  return join(dir, STORE_FILE);
}

/** A store with `n` tokens, closed again. */
async function makeStore(dir: string, n = 0): Promise<void> {
  const store = openStore(dir, { readOnly: false });
  const records = Array.from({ length: n }, (_, i) => ({
    tokenId: `token-${i}`,
    user: `user-${i % 20}`,
    iat: NOW,
    exp: NOW + 3600,
  }));
  await store.recordTokens(records);
  await store.close();
}

function refusedAs(t: Test, dir: string, readOnly: boolean, code: string, cause: RegExp): void {
  const mode = readOnly ? 'reader' : 'writer';
  t.throws(
    () => openStore(dir, { readOnly }),
    { code, message: new RegExp(`^.*${storeAt(dir).replaceAll('/', '\\/')}.*${cause.source}`) },
    `${mode}: ${code}`,
  );
}

t.test('a reader finds no store: no dir, an empty dir, an empty file', async (t) => {
  const base = t.testdir();
  const missing = join(base, 'not-yet');
  refusedAs(t, missing, true, 'STORE_MISSING', /start the gateway once to create it/);
  t.notOk(existsSync(missing), 'a reader creates nothing');
  const empty = join(base, 'empty');
  mkdirSync(empty);
  refusedAs(t, empty, true, 'STORE_MISSING', /start the gateway once/);
  writeFileSync(storeAt(empty), '');
  refusedAs(t, empty, true, 'STORE_MISSING', /the file is empty/);
  // A cut file (a crash, a full disk): opening it would forget every revocation in silence.
  refusedAs(t, empty, false, 'STORE_CORRUPT', /the file is empty \(0 bytes\).*remove it/);
  t.equal(statSync(storeAt(empty)).size, 0, 'left as it was');
});

t.test('the writer makes the store file readable by its owner only', async (t) => {
  const dir = t.testdir();
  const store = openStore(dir, { readOnly: false });
  t.teardown(() => store.close());
  t.equal(statSync(storeAt(dir)).mode & 0o777, 0o600);
});

t.test('a file that is not an LMDB store is refused, and left as it is', async (t) => {
  const dir = t.testdir();
  const junk = Buffer.alloc(100_000);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) % 251;
  writeFileSync(storeAt(dir), junk);
  refusedAs(t, dir, true, 'STORE_CORRUPT', /not an LMDB file/);
  refusedAs(t, dir, false, 'STORE_CORRUPT', /not an LMDB file/);
  t.ok(readFileSync(storeAt(dir)).equals(junk), 'the writer did not overwrite it');
  writeFileSync(storeAt(dir), 'hello');
  refusedAs(t, dir, true, 'STORE_CORRUPT', /too short/);
});

t.test('a truncated store is refused', async (t) => {
  const dir = t.testdir();
  await makeStore(dir, 3000);
  const whole = readFileSync(storeAt(dir));
  t.ok(whole.length > 40_000, `a store of several pages (${whole.length} bytes)`);
  const cuts: [number, RegExp][] = [
    [100, /too short/],
    [6000, /ends inside its meta pages/],
    [8192, /truncated \(page \d+ is past its end\)/],
  ];
  for (const [size, cause] of cuts) {
    writeFileSync(storeAt(dir), whole);
    truncateSync(storeAt(dir), size);
    refusedAs(t, dir, true, 'STORE_CORRUPT', cause);
    refusedAs(t, dir, false, 'STORE_CORRUPT', cause);
  }
  writeFileSync(storeAt(dir), whole);
  const store = openStore(dir, { readOnly: true });
  t.teardown(() => store.close());
  t.equal(store.counts().tokens, 3000, 'the whole file opens again');
});

t.test('a store of another LMDB data format is refused', async (t) => {
  const dir = t.testdir();
  await makeStore(dir);
  const bytes = readFileSync(storeAt(dir));
  bytes.writeUInt32LE(1, 28); // mm_version of the first meta page
  writeFileSync(storeAt(dir), bytes);
  refusedAs(t, dir, true, 'STORE_CORRUPT', /incompatible LMDB version \(data format 1\)/);
  refusedAs(t, dir, false, 'STORE_CORRUPT', /incompatible LMDB version/);
});

t.test('a directory at the store path, or a file at the data dir', async (t) => {
  const dir = t.testdir();
  mkdirSync(storeAt(dir));
  refusedAs(t, dir, true, 'STORE_OPEN_FAILED', /not a regular file/);
  refusedAs(t, dir, false, 'STORE_OPEN_FAILED', /not a regular file/);
  const file = join(t.testdir(), 'data');
  writeFileSync(file, 'x');
  refusedAs(t, file, false, 'STORE_OPEN_FAILED', /not a directory is in the way/);
  refusedAs(t, join(file, 'sub'), false, 'STORE_OPEN_FAILED', /not a directory/);
});

t.test('a store of a newer schema is refused, and left as it is', async (t) => {
  const dir = t.testdir();
  await makeStore(dir, 1);
  const raw = open(storeAt(dir), { maxDbs: 32 });
  const meta = raw.openDB('meta', {});
  meta.putSync('schema', 99);
  meta.putSync('opened_at', 1);
  await raw.close();
  refusedAs(t, dir, false, 'STORE_SCHEMA_NEWER', /schema version 99, newer than this gateway/);
  refusedAs(t, dir, true, 'STORE_SCHEMA_NEWER', /schema version 99/);
  const check = open(storeAt(dir), { maxDbs: 32, readOnly: true });
  t.teardown(() => check.close());
  t.equal(check.openDB('meta', {}).get('schema'), 99);
  t.equal(check.openDB('meta', {}).get('opened_at'), 1, 'the writer did not even probe');
});

t.test('a store whose schema promises what it lacks is refused', async (t) => {
  const dir = t.testdir();
  await makeStore(dir, 1);
  const raw = open(storeAt(dir), { maxDbs: 32 });
  await raw.openDB('token-uses', {}).drop();
  await raw.close();
  refusedAs(t, dir, true, 'STORE_CORRUPT', /its database "token-uses" is missing/);
  refusedAs(t, dir, false, 'STORE_CORRUPT', /its database "token-uses" is missing/);
  const again = open(storeAt(dir), { maxDbs: 32 });
  again.openDB('meta', {}).putSync('schema', 'one');
  await again.close();
  refusedAs(t, dir, false, 'STORE_CORRUPT', /schema version is not a version number: "one"/);
});

t.test('an older store: a reader waits for the writer, which migrates it', async (t) => {
  const dir = t.testdir();
  const raw = open(storeAt(dir), { maxDbs: 32 }); // an LMDB file without our databases: v0
  raw.putSync('unrelated', 1);
  await raw.close();
  refusedAs(t, dir, true, 'STORE_SCHEMA_OLDER', /schema version 0, this gateway reads 6/);
  const store = openStore(dir, { readOnly: false });
  await store.recordTokens([{ tokenId: 'a', user: 'ann', iat: NOW, exp: NOW + 1 }]);
  await store.close();
  const reader = openStore(dir, { readOnly: true });
  t.teardown(() => reader.close());
  t.equal(reader.getToken('a')?.user, 'ann');
});

t.test(
  'a v1 store (before login bans, CSRF nonces, TOTP, key ring, outbox) is migrated by the writer, data kept',
  async (t) => {
    const dir = t.testdir();
    // The layout of schema version 1, written by hand as the v1 code did (lmdb-js defaults:
    // ordered-binary keys, msgpack values).
    const raw = open(storeAt(dir), { maxDbs: 32 });
    const v1 = V1_DATABASES;
    const db = Object.fromEntries(v1.map((name) => [name, raw.openDB(name, {})]));
    await raw.transaction(() => {
      db.meta!.put('schema', 1);
      db.tokens!.put('tok', { user: 'ann', iat: NOW, exp: NOW + 600 });
      db['tokens-by-user']!.put(['ann', NOW, 'tok'], NOW + 600);
      db['tokens-by-expiry']!.put([NOW + 600, 'tok'], null);
      db['token-uses']!.put('tok', 3);
      db['revoked-tokens']!.put('tok', { until: NOW + 600, revokedAt: NOW + 1 });
      db['revoked-tokens-by-expiry']!.put([NOW + 600, 'tok'], NOW + 1);
      db['revoked-users']!.put('bob', { notBefore: NOW, until: NOW + 900, revokedAt: NOW + 2 });
      db['revoked-users-by-expiry']!.put([NOW + 900, 'bob'], {
        notBefore: NOW,
        revokedAt: NOW + 2,
      });
    });
    await raw.close();

    refusedAs(t, dir, true, 'STORE_SCHEMA_OLDER', /schema version 1, this gateway reads 6/);
    const store = openStore(dir, { readOnly: false });
    t.same(store.revocationsInForce(NOW), {
      tokens: [{ tokenId: 'tok', until: NOW + 600, revokedAt: NOW + 1 }],
      users: [{ user: 'bob', notBefore: NOW, until: NOW + 900, revokedAt: NOW + 2 }],
    });
    t.same(store.getToken('tok'), { tokenId: 'tok', user: 'ann', iat: NOW, exp: NOW + 600 });
    t.equal(store.stats({ limit: 10, nowSeconds: NOW }).users[0]?.tokens[0]?.count, 3);
    t.same(store.counts(), { tokens: 1, revokedTokens: 1, revokedUsers: 1, bans: 0 });
    const ban = {
      kind: 'user',
      subject: 'ann',
      until: NOW + 60,
      bannedAt: NOW,
      failures: 5,
    } as const;
    await store.ban(ban);
    t.same(store.getBan('user', 'ann', NOW), ban, 'the new databases work');
    t.equal(await store.spendCsrfNonce('AAAAAAAAAAAAAAAA', NOW + 60), true, 'v3 databases work');
    await store.close();

    const check = open(storeAt(dir), { maxDbs: 32, readOnly: true });
    t.equal(check.openDB('meta', {}).get('schema'), CURRENT_SCHEMA);
    t.same([...check.getKeys()].sort(), CURRENT_DATABASES);
    await check.close();
    const again = openStore(dir, { readOnly: false });
    t.same(again.getBan('user', 'ann', NOW), ban, 'reopening a v4 store keeps it');
    t.equal(
      await again.spendCsrfNonce('AAAAAAAAAAAAAAAA', NOW + 60),
      false,
      'and its spent nonces',
    );
    await again.close();
    const reader = openStore(dir, { readOnly: true });
    t.teardown(() => reader.close());
    t.same(reader.getBan('user', 'ann', NOW), ban);
    t.equal(reader.getUserRevocation('bob')?.until, NOW + 900);
  },
);
t.test('a writer told not to create refuses a missing store, and creates nothing', async (t) => {
  const base = t.testdir();
  const missing = join(base, 'not-yet');
  t.throws(() => openStore(missing, { readOnly: false, create: false }), {
    code: 'STORE_MISSING',
    message: `no store at ${storeAt(missing)}; start the gateway once to create it`,
  });
  t.notOk(existsSync(missing), 'no data dir');
  t.throws(() => openStore(base, { readOnly: false, create: false }), { code: 'STORE_MISSING' });
  t.notOk(existsSync(storeAt(base)), 'no store file');
  await makeStore(base, 2);
  const store = openStore(base, { readOnly: false, create: false });
  t.teardown(() => store.close());
  t.equal(store.counts().tokens, 2, 'an existing store opens');
});

// As root, the permission test runs its opens as user nobody, who must be able to run them.
const permissionSkip = isRoot ? (cannotRunAs(NOBODY) ?? false) : false;

t.test('permission denied', { skip: permissionSkip }, async (t) => {
  const dir = t.testdir();
  await makeStore(dir, 1);
  // Root ignores file modes: as root, the opens run in a child process of user nobody.
  const tryOpen = (access: 'ro' | 'rw'): OpenAnswer =>
    isRoot
      ? openInChild(dir, access, NOBODY)
      : attempt(() => openStore(dir, { readOnly: access === 'ro' }));
  chmodSync(dir, isRoot ? 0o700 : 0o000);
  try {
    for (const access of ['ro', 'rw'] as const) {
      const got = tryOpen(access);
      t.equal(got.code, 'STORE_ACCESS_DENIED', `${access}: ${got.message}`);
      t.match(got.message, storeAt(dir));
      t.match(got.message, /permission denied/);
    }
  } finally {
    chmodSync(dir, 0o755); // tap removes the dir after the test
  }
  if (!isRoot) return;
  // Readable, but its lock file is not writable: LMDB would read without registering.
  chmodSync(storeAt(dir), 0o644);
  chmodSync(`${storeAt(dir)}-lock`, 0o600);
  const reader = openInChild(dir, 'ro', NOBODY);
  t.equal(reader.code, 'STORE_ACCESS_DENIED', String(reader.message));
  t.match(reader.message, /permission denied \(.*proxyauth\.mdb-lock\)/);
  chmodSync(`${storeAt(dir)}-lock`, 0o666);
  t.match(openInChild(dir, 'ro', NOBODY), { ok: true }, 'with a writable lock file it opens');
});

t.test('read-only file system', { skip: mountUnsupported() }, async (t) => {
  const fs = mountTmpfs(8 * 1024 * 1024);
  t.teardown(fs.unmount);
  await makeStore(fs.dir, 10);
  fs.remount('ro');
  refusedAs(t, fs.dir, false, 'STORE_READ_ONLY_FS', /the file system is read-only/);
  // In a child: lmdb-js keeps the file of a lock-less (read-only mount) reader open after
  // close(), which would keep this mount busy.
  t.same(openInChild(fs.dir, 'ro'), { ok: true, tokens: 10 }, 'a reader reads it');
  fs.remount('rw');
  t.same(openInChild(fs.dir, 'rw'), { ok: true, tokens: 10 }, 'a writer opens it read-write');
});

t.test('a full disk refuses a writer at open', { skip: mountUnsupported() }, async (t) => {
  const fs = mountTmpfs(2 * 1024 * 1024);
  t.teardown(fs.unmount);
  const filler = spawnSync('dd', ['if=/dev/zero', `of=${join(fs.dir, 'filler')}`, 'bs=64k']);
  t.not(filler.status, 0, 'dd stops when the tmpfs is full');
  const data = join(fs.dir, 'data');
  refusedAs(t, data, false, 'STORE_FULL', /bytes are free on its file system/);
});

t.test(
  'a full disk fails writes, and the store survives it',
  { skip: mountUnsupported() },
  async (t) => {
    const fs = mountTmpfs(3 * 1024 * 1024);
    t.teardown(fs.unmount);
    const store = openStore(fs.dir, { readOnly: false });
    let written = 0;
    let failure: unknown;
    for (let batch = 0; batch < 1000 && !failure; batch++) {
      const records = Array.from({ length: 500 }, (_, i) => ({
        tokenId: `t-${batch}-${i}-${'x'.repeat(40)}`,
        user: `user-${i % 30}`,
        iat: NOW,
        exp: NOW + 3600,
      }));
      try {
        await store.recordTokens(records);
        written += records.length;
      } catch (err) {
        failure = err;
      }
    }
    t.match(failure, { code: 'STORE_WRITE_FAILED', message: store.path });
    t.match((failure as Error).message, /no space left on the device/);
    // Several failing commits at once: each rejects, none goes unhandled (tap would fail it).
    const more = Array.from({ length: 3 }, (_, i) =>
      store.recordTokens(
        Array.from({ length: 2000 }, (_, j) => ({
          tokenId: `more-${i}-${j}-${'y'.repeat(40)}`,
          user: 'ann',
          iat: NOW,
          exp: NOW + 1,
        })),
      ),
    );
    for (const write of more) await t.rejects(write, { code: 'STORE_WRITE_FAILED' });
    t.equal(
      store.counts().tokens,
      written,
      'every committed batch is there, the failed one is not',
    );
    await store.close();
    fs.remount('size=16m');
    const again = openStore(fs.dir, { readOnly: false });
    t.teardown(() => again.close());
    t.equal(again.counts().tokens, written);
    await again.recordTokens([{ tokenId: 'after', user: 'ann', iat: NOW, exp: NOW + 1 }]);
    t.equal(again.counts().tokens, written + 1, 'writes work again once there is room');
  },
);

const noBash = spawnSync('bash', ['-c', 'true']).status === 0 ? false : 'no bash to set the limit';

t.test('a file size limit fails the writer at open, as any user', { skip: noBash }, async (t) => {
  // 8 KiB stops the lock file; 12 KiB lets it through and stops LMDB's first commit (EFBIG, or
  // a short write that LMDB reports as EIO).
  const cases = [
    [8, ['STORE_FULL']],
    [12, ['STORE_FULL', 'STORE_OPEN_FAILED']],
  ] as const;
  for (const [kib, codes] of cases) {
    const dir = join(t.testdir(), `limit-${kib}`);
    const got = openWithFileSizeLimit(dir, kib);
    t.ok((codes as readonly string[]).includes(String(got.code)), `${kib} KiB: ${got.message}`);
    t.match(got.message, storeAt(dir));
    t.match(openInChild(dir, 'rw'), { ok: true }, `${kib} KiB: without the limit it opens`);
  }
});

function attempt(fn: () => Store): OpenAnswer {
  try {
    void fn().close();
    return { ok: true };
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
}

// TOTP records in the store: sealed secrets (enrol only when absent, reset, remove) and replay
// protection: a step is accepted once, only when greater than the last one accepted for that
// secret, in one write transaction.
import { join } from 'node:path';
import { open } from 'lmdb';
import t, { type Test } from 'tap';
import { CONFIG_SECRET_ID, openStore, STORE_FILE, type Store } from '../shared/store.js';
import type { SealedTotp } from '../shared/totp-seal.js';
import { V1_DATABASES } from './helpers/store-layout.js';

function writer(t: Test, dir = t.testdir()): Store {
  const store = openStore(dir, { readOnly: false });
  t.teardown(() => store.close());
  return store;
}

let nonces = 0;
/** A well-formed sealed record (the store checks shapes; opening it is the edge's job). */
function sealed(extra: Partial<SealedTotp> = {}): SealedTotp {
  nonces++;
  return {
    nonce: Buffer.alloc(24, nonces).toString('base64url'),
    box: Buffer.alloc(36, 7).toString('base64url'),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    createdAt: 1_750_000_000,
    ...extra,
  };
}

const STEP = 58_333_333;

t.test('enrol stores a secret only for a user without one; reset replaces it', async (t) => {
  const store = writer(t);
  const first = sealed();
  t.equal(store.getTotp('alice'), undefined);
  t.equal(await store.putTotp('alice', first, 'enrol'), true);
  t.same(store.getTotp('alice'), first);
  t.equal(await store.putTotp('alice', sealed(), 'enrol'), false, 'a second enrolment is refused');
  t.same(store.getTotp('alice'), first, 'and changes nothing');
  const second = sealed({ algorithm: 'SHA512' });
  t.equal(await store.putTotp('alice', second, 'reset'), true);
  t.same(store.getTotp('alice'), second);
  t.equal(await store.putTotp('bob', sealed(), 'reset'), true, 'reset creates one as well');
  t.equal(store.getTotp('carol'), undefined);
});

t.test('remove: the secret and its last step go; false when there was none', async (t) => {
  const store = writer(t);
  const s = sealed();
  await store.putTotp('alice', s, 'enrol');
  t.equal(await store.consumeTotpStep('alice', s.nonce, [STEP]), STEP);
  t.equal(await store.removeTotp('alice'), true);
  t.equal(store.getTotp('alice'), undefined);
  t.equal(store.lastTotpStep('alice', s.nonce), undefined, 'its step went with it');
  t.equal(await store.removeTotp('alice'), false);
});

t.test('consume: once per step, never an earlier step after a later one', async (t) => {
  const store = writer(t);
  const s = sealed();
  await store.putTotp('alice', s, 'enrol');
  t.equal(await store.consumeTotpStep('alice', s.nonce, [STEP]), STEP, 'a first code');
  t.equal(
    await store.consumeTotpStep('alice', s.nonce, [STEP]),
    undefined,
    'the same step: replay',
  );
  t.equal(await store.consumeTotpStep('alice', s.nonce, [STEP - 1]), undefined, 'an earlier step');
  t.equal(await store.consumeTotpStep('alice', s.nonce, [STEP + 2]), STEP + 2, 'a later one');
  t.equal(
    await store.consumeTotpStep('alice', s.nonce, [STEP + 1]),
    undefined,
    'the step skipped over is refused now',
  );
  t.equal(store.lastTotpStep('alice', s.nonce), STEP + 2);
  t.equal(
    await store.consumeTotpStep('alice', s.nonce, [STEP + 5, STEP + 2, STEP + 3]),
    STEP + 3,
    'of several matching steps, the smallest one not used',
  );
  t.equal(await store.consumeTotpStep('alice', s.nonce, [0]), undefined);
});

t.test('consume: concurrent uses of one step, exactly one wins', async (t) => {
  const store = writer(t);
  const s = sealed();
  await store.putTotp('alice', s, 'enrol');
  const results = await Promise.all(
    Array.from({ length: 20 }, () => store.consumeTotpStep('alice', s.nonce, [STEP])),
  );
  t.equal(results.filter((r) => r === STEP).length, 1);
  t.equal(results.filter((r) => r === undefined).length, 19);
});

t.test('consume: only for the secret in force; steps are per secret', async (t) => {
  const store = writer(t);
  t.equal(
    await store.consumeTotpStep('alice', CONFIG_SECRET_ID, [STEP]),
    STEP,
    "without a sealed secret, config.json's is in force",
  );
  const s = sealed();
  await store.putTotp('alice', s, 'enrol');
  t.equal(
    await store.consumeTotpStep('alice', CONFIG_SECRET_ID, [STEP + 1]),
    undefined,
    "with one, config.json's is not",
  );
  t.equal(
    await store.consumeTotpStep('alice', s.nonce, [STEP]),
    STEP,
    'a new secret, its own step',
  );
  const r = sealed();
  await store.putTotp('alice', r, 'reset');
  t.equal(
    await store.consumeTotpStep('alice', s.nonce, [STEP + 1]),
    undefined,
    'a code checked against the replaced secret is refused',
  );
  t.equal(store.lastTotpStep('alice', s.nonce), undefined, "the replaced secret's step is gone");
  t.equal(await store.consumeTotpStep('alice', r.nonce, [STEP]), STEP, 'the new one starts afresh');
  await store.removeTotp('alice');
  t.equal(
    await store.consumeTotpStep('alice', CONFIG_SECRET_ID, [STEP]),
    undefined,
    "config.json's own last step was kept: its codes are not replayable after a removal",
  );
  t.equal(await store.consumeTotpStep('bob', s.nonce, [STEP]), undefined, 'another user');
});

t.test('a reader sees the writes (after refresh)', async (t) => {
  const dir = t.testdir();
  const store = writer(t, dir);
  const reader = openStore(dir, { readOnly: true });
  t.teardown(() => reader.close());
  const s = sealed();
  await store.putTotp('alice', s, 'enrol');
  reader.refresh();
  t.same(reader.getTotp('alice'), s);
  await store.removeTotp('alice');
  reader.refresh();
  t.equal(reader.getTotp('alice'), undefined);
  await t.rejects(reader.putTotp('alice', s, 'enrol'), { code: 'STORE_READ_ONLY' });
});

t.test('malformed arguments are refused before any transaction', async (t) => {
  const store = writer(t);
  await t.rejects(store.putTotp('', sealed(), 'enrol'), TypeError);
  await t.rejects(store.putTotp('a', sealed({ algorithm: 'MD5' as 'SHA1' }), 'enrol'), TypeError);
  await t.rejects(store.putTotp('a', sealed({ digits: 5 }), 'enrol'), RangeError);
  await t.rejects(store.putTotp('a', sealed({ period: 0 }), 'enrol'), RangeError);
  await t.rejects(store.putTotp('a', sealed({ nonce: '' }), 'enrol'), TypeError);
  await t.rejects(store.putTotp('a', sealed(), 'replace' as 'reset'), TypeError);
  await t.rejects(store.consumeTotpStep('a', '', []), RangeError);
  await t.rejects(store.consumeTotpStep('a', '', [1.5]), RangeError);
  await t.rejects(store.consumeTotpStep('a', '', [-1]), RangeError);
  await t.rejects(store.consumeTotpStep('a', '', Array(17).fill(1)), RangeError);
  await t.rejects(store.removeTotp('a\0b'), TypeError);
  t.equal(store.getTotp('a'), undefined, 'nothing was written');
});

t.test('a v2 store (before TOTP) is migrated by the writer, its bans kept', async (t) => {
  const dir = t.testdir();
  const raw = open(join(dir, STORE_FILE), { maxDbs: 32 });
  const v2 = [...V1_DATABASES, 'login-bans', 'login-bans-by-expiry'];
  const db = Object.fromEntries(v2.map((name) => [name, raw.openDB(name, {})]));
  const until = 4_000_000_000;
  await raw.transaction(() => {
    db.meta!.put('schema', 2);
    db['login-bans']!.put(['user', 'ann'], { until, bannedAt: 1, failures: 5 });
    db['login-bans-by-expiry']!.put([until, 'user', 'ann'], { bannedAt: 1, failures: 5 });
  });
  await raw.close();
  const store = writer(t, dir);
  t.equal(store.getBan('user', 'ann', until - 1)?.failures, 5, 'the bans are kept');
  const s = sealed();
  t.equal(await store.putTotp('ann', s, 'enrol'), true, 'the new databases work');
  t.equal(await store.consumeTotpStep('ann', s.nonce, [STEP]), STEP);
});

// The key ring in the store: add, activate (the previous active key retires and verifies until
// its last token expires), remove (never the active key; the record stays), and an import
// installed all or nothing (a key id collision changes nothing).
import t, { type Test } from 'tap';
import { type KeyRingEntry, keyIdHex, keyState, openStore, type Store } from '../shared/store.js';

function writer(t: Test, dir = t.testdir()): Store {
  const store = openStore(dir, { readOnly: false });
  t.teardown(() => store.close());
  return store;
}

const NOW = 1_800_000_000;
const EXPIRY = 3600;

function byId(store: Store): Map<number, KeyRingEntry> {
  return new Map(store.keyRing().map((k) => [k.keyId, k]));
}

function states(store: Store, now = NOW): Record<string, string> {
  return Object.fromEntries(store.keyRing().map((k) => [keyIdHex(k.keyId), keyState(k, now)]));
}

t.test(
  'add, then activate: the previous active key retires and verifies one lifetime',
  async (t) => {
    const store = writer(t);
    t.same(store.keyRing(), [], 'a new store has an empty ring');
    t.equal(await store.addKey(1, 'a'.repeat(64), 'config', NOW), true);
    t.equal(
      await store.addKey(1, 'a'.repeat(64), 'config', NOW + 5),
      false,
      'same material: no-op',
    );
    t.equal(byId(store).get(1)?.addedAt, NOW, 'the first add is kept');
    t.same(states(store), { '00000001': 'verify-only' }, 'added, not yet active');
    t.equal(await store.activateKey(1, NOW, EXPIRY), undefined, 'nothing was active before');
    t.same(states(store), { '00000001': 'active' });
    await store.addKey(0xdeadbeef, 'b'.repeat(64), 'generated', NOW + 10);
    t.equal(await store.activateKey(0xdeadbeef, NOW + 10, EXPIRY), 1, 'resolves the retired id');
    const ring = byId(store);
    t.match(ring.get(1), { activatedAt: NOW, retiredAt: NOW + 10, verifyUntil: NOW + 10 + EXPIRY });
    t.match(ring.get(0xdeadbeef), { activatedAt: NOW + 10, retiredAt: null, verifyUntil: null });
    t.same(states(store, NOW + 10 + EXPIRY - 1), { '00000001': 'verify-only', deadbeef: 'active' });
    t.same(states(store, NOW + 10 + EXPIRY), { '00000001': 'expired', deadbeef: 'active' });
    t.equal(await store.activateKey(0xdeadbeef, NOW + 20, EXPIRY), undefined, 'already active');
    t.equal(byId(store).get(0xdeadbeef)?.activatedAt, NOW + 10, 'unchanged');
  },
);

t.test('a different material under a present key id is a collision, nothing written', async (t) => {
  const store = writer(t);
  await store.addKey(7, 'a'.repeat(64), 'config', NOW);
  await t.rejects(store.addKey(7, 'c'.repeat(64), 'generated', NOW), {
    code: 'KEY_COLLISION',
    message: /00000007/,
  });
  t.equal(byId(store).get(7)?.secret, 'a'.repeat(64));
  const err = await store.addKey(7, 'c'.repeat(64), 'generated', NOW).catch((e: Error) => e);
  t.notMatch(String((err as Error).message), /cccc|aaaa/, 'the message never holds material');
});

t.test('remove: refused for the active key and unknown ids; the record stays', async (t) => {
  const store = writer(t);
  await store.addKey(1, 'a'.repeat(64), 'config', NOW);
  await store.activateKey(1, NOW, EXPIRY);
  await t.rejects(store.removeKey(1, NOW), { code: 'KEY_ACTIVE' });
  await t.rejects(store.removeKey(2, NOW), { code: 'KEY_UNKNOWN' });
  await store.addKey(2, 'b'.repeat(64), 'generated', NOW);
  await store.activateKey(2, NOW + 1, EXPIRY);
  await store.removeKey(1, NOW + 2);
  t.same(states(store, NOW + 2), { '00000001': 'removed', '00000002': 'active' });
  t.equal(byId(store).get(1)?.removedAt, NOW + 2);
  await t.rejects(store.removeKey(1, NOW + 3), { code: 'KEY_UNKNOWN' }, 'removed once');
  t.equal(await store.addKey(1, 'a'.repeat(64), 'config', NOW + 4), false, 'adding is no revival');
  t.same(states(store, NOW + 4), { '00000001': 'removed', '00000002': 'active' });
  await t.rejects(store.activateKey(3, NOW, EXPIRY), { code: 'KEY_UNKNOWN' });
});

t.test('installKeys: adds, activates the exporter key, retires the local one', async (t) => {
  const store = writer(t);
  await store.addKey(1, 'a'.repeat(64), 'config', NOW);
  await store.activateKey(1, NOW, EXPIRY);
  const added = await store.installKeys(
    [
      { keyId: 10, secret: 'x'.repeat(64), tokenLifetime: 7200, verifyUntil: null },
      { keyId: 11, secret: 'y'.repeat(64), tokenLifetime: 7200, verifyUntil: NOW + 500 },
    ],
    10,
    NOW + 100,
    EXPIRY,
  );
  t.same(added, [10, 11]);
  const ring = byId(store);
  t.match(ring.get(10), { source: 'imported', activatedAt: NOW + 100, tokenLifetime: 7200 });
  t.match(ring.get(11), { source: 'imported', activatedAt: null, verifyUntil: NOW + 500 });
  t.match(ring.get(1), { retiredAt: NOW + 100, verifyUntil: NOW + 100 + EXPIRY });
  // Retiring the imported key uses the exporter's longer token lifetime.
  await store.addKey(2, 'b'.repeat(64), 'generated', NOW + 200);
  await store.activateKey(2, NOW + 200, EXPIRY);
  t.equal(byId(store).get(10)?.verifyUntil, NOW + 200 + 7200);
});

t.test('installKeys: a collision refuses the whole set, nothing changes', async (t) => {
  const store = writer(t);
  await store.addKey(1, 'a'.repeat(64), 'config', NOW);
  await store.activateKey(1, NOW, EXPIRY);
  const before = store.keyRing();
  await t.rejects(
    store.installKeys(
      [
        { keyId: 10, secret: 'x'.repeat(64), tokenLifetime: 60, verifyUntil: null },
        { keyId: 1, secret: 'other'.repeat(13), tokenLifetime: 60, verifyUntil: null },
      ],
      10,
      NOW + 1,
      EXPIRY,
    ),
    { code: 'KEY_COLLISION', message: /00000001/ },
  );
  t.same(store.keyRing(), before, 'key 10 was not added, key 1 still active');
});

t.test('installKeys: a present key keeps its record and gets the later end', async (t) => {
  const store = writer(t);
  await store.addKey(1, 'a'.repeat(64), 'config', NOW);
  await store.activateKey(1, NOW, EXPIRY);
  await store.addKey(2, 'b'.repeat(64), 'generated', NOW);
  await store.activateKey(2, NOW + 10, EXPIRY);
  await store.removeKey(1, NOW + 20);
  const added = await store.installKeys(
    [
      { keyId: 1, secret: 'a'.repeat(64), tokenLifetime: 60, verifyUntil: NOW + 9000 },
      { keyId: 2, secret: 'b'.repeat(64), tokenLifetime: 60, verifyUntil: NOW + 50 },
    ],
    undefined,
    NOW + 30,
    EXPIRY,
  );
  t.same(added, [], 'nothing new');
  const ring = byId(store);
  t.match(ring.get(1), { source: 'config', removedAt: null, verifyUntil: NOW + 9000 });
  t.same(states(store, NOW + 30), { '00000001': 'verify-only', '00000002': 'active' });
  t.match(ring.get(2), { activatedAt: NOW + 10, verifyUntil: null }, 'the local active stays');
});

t.test('bad arguments throw before any transaction', async (t) => {
  const store = writer(t);
  await t.rejects(store.addKey(-1, 'a', 'config', NOW), RangeError);
  await t.rejects(store.addKey(2 ** 32, 'a', 'config', NOW), RangeError);
  await t.rejects(store.addKey(1, '', 'config', NOW), TypeError);
  await t.rejects(
    store.installKeys(
      [{ keyId: 1, secret: 'a', tokenLifetime: 1, verifyUntil: null }],
      2,
      NOW,
      EXPIRY,
    ),
    RangeError,
  );
  t.same(store.keyRing(), []);
});

t.test('a reader sees the ring; its writes are refused', async (t) => {
  const dir = t.testdir();
  const w = writer(t, dir);
  await w.addKey(5, 'a'.repeat(64), 'config', NOW);
  const r = openStore(dir, { readOnly: true });
  t.teardown(() => r.close());
  t.same(
    r.keyRing().map((k) => k.keyId),
    [5],
  );
  await t.rejects(r.addKey(6, 'b'.repeat(64), 'config', NOW), { code: 'STORE_READ_ONLY' });
});

t.test(
  'addActiveKey: adds and activates in one go; present material changes nothing',
  async (t) => {
    const store = writer(t);
    t.same(await store.addActiveKey(1, 'a'.repeat(64), 'config', NOW, EXPIRY), {
      added: true,
      retired: undefined,
    });
    t.same(await store.addActiveKey(2, 'b'.repeat(64), 'generated', NOW + 5, EXPIRY), {
      added: true,
      retired: 1,
    });
    t.same(await store.addActiveKey(1, 'a'.repeat(64), 'config', NOW + 9, EXPIRY), {
      added: false,
      retired: undefined,
    });
    t.same(states(store, NOW + 9), { '00000001': 'verify-only', '00000002': 'active' });
    await t.rejects(store.addActiveKey(2, 'c'.repeat(64), 'config', NOW, EXPIRY), {
      code: 'KEY_COLLISION',
    });
    t.same(states(store, NOW + 9), { '00000001': 'verify-only', '00000002': 'active' });
  },
);

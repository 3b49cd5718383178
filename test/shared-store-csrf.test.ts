import t, { type Test } from 'tap';
import { openStore, type Store } from '../shared/store.js';

const NOW = 1_700_000_000;

function writer(t: Test, dir = t.testdir()): Store {
  const store = openStore(dir, { readOnly: false });
  t.teardown(() => store.close());
  return store;
}

t.test('a CSRF nonce is fresh once, then spent', async (t) => {
  const store = writer(t);
  t.equal(await store.spendCsrfNonce('nonce-a', NOW + 600), true, 'first spend');
  t.equal(await store.spendCsrfNonce('nonce-a', NOW + 600), false, 'second spend');
  t.equal(await store.spendCsrfNonce('nonce-a', NOW + 9999), false, 'whatever exp is claimed');
  t.equal(await store.spendCsrfNonce('nonce-b', NOW + 600), true, 'another nonce is its own');
});

t.test('concurrent spends of one nonce: exactly one is fresh', async (t) => {
  const store = writer(t);
  const results = await Promise.all(
    Array.from({ length: 50 }, () => store.spendCsrfNonce('raced', NOW + 600)),
  );
  t.equal(results.filter((fresh) => fresh).length, 1);
  const others = await Promise.all(
    Array.from({ length: 50 }, (_, i) => store.spendCsrfNonce(`n${i}`, NOW + 600)),
  );
  t.ok(
    others.every((fresh) => fresh),
    'different nonces in one commit are all fresh',
  );
});

t.test('spent nonces survive a reopen (a restart)', async (t) => {
  const dir = t.testdir();
  const first = openStore(dir, { readOnly: false });
  t.equal(await first.spendCsrfNonce('kept', NOW + 600), true);
  await first.close();
  const again = writer(t, dir);
  t.equal(await again.spendCsrfNonce('kept', NOW + 600), false);
});

t.test('purge removes the nonces of expired tokens only, through the index', async (t) => {
  const store = writer(t);
  await store.spendCsrfNonce('old', NOW);
  await store.spendCsrfNonce('new', NOW + 600);
  t.same(await store.purge(NOW), { tokens: 0, revocations: 0, bans: 0, csrfNonces: 1 });
  t.same(
    await store.purge(NOW),
    { tokens: 0, revocations: 0, bans: 0, csrfNonces: 0 },
    'index gone',
  );
  t.equal(await store.spendCsrfNonce('new', NOW + 600), false, 'an unexpired one stays spent');
  t.equal(await store.spendCsrfNonce('old', NOW), true, 'a purged one is gone (its token expired)');
});

t.test('purge takes more than one transaction for many nonces', async (t) => {
  const store = writer(t);
  const N = 10_500;
  await Promise.all(Array.from({ length: N }, (_, i) => store.spendCsrfNonce(`n${i}`, NOW)));
  t.same(await store.purge(NOW), { tokens: 0, revocations: 0, bans: 0, csrfNonces: N });
});

t.test('bad arguments and read-only handles are refused', async (t) => {
  const dir = t.testdir();
  const store = writer(t, dir);
  await t.rejects(store.spendCsrfNonce('', NOW), TypeError);
  await t.rejects(store.spendCsrfNonce('a\0b', NOW), TypeError);
  await t.rejects(store.spendCsrfNonce('a', Number.NaN), TypeError);
  const reader = openStore(dir, { readOnly: true });
  t.teardown(() => reader.close());
  await t.rejects(reader.spendCsrfNonce('a', NOW), { code: 'STORE_READ_ONLY' });
});

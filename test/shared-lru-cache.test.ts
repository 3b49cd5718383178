import t from 'tap';
import { LruCache } from '../shared/lru-cache.js';

t.test('evicts the least recently set entry when full', async (t) => {
  const cache = new LruCache<string, number>(3);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  cache.set('d', 4);
  t.equal(cache.size, 3);
  t.equal(cache.get('a'), undefined);
  t.same(
    ['b', 'c', 'd'].map((k) => cache.get(k)),
    [2, 3, 4],
  );
});

t.test('a hit makes the entry the most recent', async (t) => {
  const cache = new LruCache<string, number>(3);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  t.equal(cache.get('a'), 1);
  cache.set('d', 4);
  t.equal(cache.get('b'), undefined, 'b was the oldest after a was read');
  t.equal(cache.get('a'), 1);
  t.equal(cache.get('c'), 3);
});

t.test('overwriting refreshes and does not grow', async (t) => {
  const cache = new LruCache<string, number>(2);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('a', 10);
  t.equal(cache.size, 2);
  cache.set('c', 3);
  t.equal(cache.get('b'), undefined);
  t.equal(cache.get('a'), 10);
});

t.test('a stored undefined is a hit that counts as use', async (t) => {
  const cache = new LruCache<string, number | undefined>(2);
  cache.set('u', undefined);
  cache.set('b', 2);
  t.equal(cache.get('u'), undefined);
  cache.set('c', 3);
  t.equal(cache.get('b'), undefined, 'b evicted, not u');
  t.equal(cache.size, 2);
  t.ok(cache.delete('u'), 'u was still there');
});

t.test('delete and clear', async (t) => {
  const cache = new LruCache<number, string>(10);
  for (let i = 0; i < 10; i++) cache.set(i, String(i));
  t.equal(cache.delete(3), true);
  t.equal(cache.delete(3), false);
  t.equal(cache.size, 9);
  cache.set(100, 'x');
  t.equal(cache.get(0), '0', 'no eviction while below the bound');
  cache.clear();
  t.equal(cache.size, 0);
  t.equal(cache.get(100), undefined);
});

t.test('stays bounded under many distinct keys', async (t) => {
  const cache = new LruCache<number, number>(1000);
  for (let i = 0; i < 100_000; i++) cache.set(i, i);
  t.equal(cache.size, 1000);
  t.equal(cache.get(98_999), undefined);
  t.equal(cache.get(99_000), 99_000);
});

t.test('rejects a bound that is not a positive integer', async (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new LruCache(bad), RangeError, String(bad));
  }
});

t.test('a hot entry hit once per maxEntries/2 insertions is never evicted', async (t) => {
  const cache = new LruCache<number, number>(100);
  cache.set(-1, -1);
  for (let i = 0; i < 10_000; i++) {
    cache.set(i, i);
    if (i % 50 === 0) t.equal(cache.get(-1), -1, `still there after ${i} insertions`);
  }
  t.equal(cache.size, 100);
  const cold = new LruCache<number, number>(100);
  cold.set(-1, -1);
  for (let i = 0; i < 100; i++) cold.set(i, i);
  t.equal(cold.get(-1), undefined, 'an entry nobody reads is evicted after maxEntries insertions');
});

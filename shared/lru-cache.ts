/**
 * A bounded map that evicts (approximately) the least recently used entry. A Map iterates in
 * insertion order, so re-inserting an entry on a hit keeps the oldest first: every operation
 * is O(1). A hit re-inserts only an entry that has aged half the capacity or more (counted in
 * insertions since it was last placed): a hot entry is re-inserted once per maxEntries/2
 * insertions instead of on every hit, and still never reaches the front while it keeps being
 * hit. Measured in the edge's profile under load: the delete + set of every hit on the token
 * cache was 2.4% of the edge's busy time (the Map's table refills with deleted slots and is
 * rebuilt over and over).
 */
export class LruCache<K, V> {
  readonly #max: number;
  readonly #half: number;
  readonly #map = new Map<K, Slot<V>>();
  /** Insertions so far: an entry's `at` is the count when it was last placed. */
  #clock = 0;

  /** @param maxEntries the most entries kept; a positive integer. */
  constructor(maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.#max = maxEntries;
    this.#half = Math.floor(maxEntries / 2);
  }

  /** The value for `key`, marking it recently used, or undefined when absent. */
  get(key: K): V | undefined {
    const map = this.#map;
    const slot = map.get(key);
    if (slot === undefined) return undefined;
    if (this.#clock - slot.at >= this.#half) {
      map.delete(key);
      slot.at = ++this.#clock;
      map.set(key, slot);
    }
    return slot.value;
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used if full. */
  set(key: K, value: V): void {
    const map = this.#map;
    if (map.has(key)) {
      map.delete(key);
    } else if (map.size >= this.#max) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
    }
    map.set(key, { value, at: ++this.#clock });
  }

  /** Removes `key`; true when it was present. */
  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Removes every entry. */
  clear(): void {
    this.#map.clear();
  }

  /** The number of entries held. */
  get size(): number {
    return this.#map.size;
  }
}

interface Slot<V> {
  readonly value: V;
  at: number;
}

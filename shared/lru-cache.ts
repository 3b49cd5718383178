/**
 * A bounded map that evicts the least recently used entry. A Map iterates in insertion order,
 * so re-inserting on every hit keeps the oldest entry first: every operation is O(1).
 */
export class LruCache<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();

  /** @param maxEntries the most entries kept; a positive integer. */
  constructor(maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.#max = maxEntries;
  }

  /** The value for `key`, marking it most recently used, or undefined when absent. */
  get(key: K): V | undefined {
    const map = this.#map;
    const value = map.get(key);
    if (value === undefined && !map.has(key)) return undefined;
    map.delete(key);
    map.set(key, value as V);
    return value;
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
    map.set(key, value);
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

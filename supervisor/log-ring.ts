/**
 * Characters the ring holds at most, whatever its line capacity: 64 Mi (64 MiB for the ASCII
 * lines the JSON format writes). Clients choose part of every access line (a path of up to
 * 1024 characters), so a bound in lines alone lets them grow the supervisor by about 1 KB per
 * line kept: found in review, 10 million 1.1 KB lines exceed V8's heap.
 */
export const MAX_RING_CHARS = 64 * 1024 * 1024;

/**
 * The last `capacity` log lines of the node (config `log.type: "http"`), served by
 * `GET /adm/logs`, and never more than `maxChars` characters in all: the oldest lines go first
 * when either bound is reached. A fixed array used as a ring: a push is O(1) amortised.
 */
export class LogRing {
  readonly #lines: string[];
  readonly #capacity: number;
  readonly #maxChars: number;
  /** Index of the next write. */
  #next = 0;
  #size = 0;
  #chars = 0;

  constructor(capacity: number, maxChars = MAX_RING_CHARS) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be >= 1');
    this.#capacity = capacity;
    this.#maxChars = maxChars;
    this.#lines = new Array<string>(capacity);
  }

  push(line: string): void {
    // A line alone larger than the bound is kept cut (the facade's lines never are).
    const kept = line.length > this.#maxChars ? line.slice(0, this.#maxChars) : line;
    if (this.#size === this.#capacity) this.#dropOldest();
    while (this.#chars + kept.length > this.#maxChars) this.#dropOldest();
    this.#lines[this.#next] = kept;
    this.#chars += kept.length;
    this.#next = (this.#next + 1) % this.#capacity;
    this.#size++;
  }

  #dropOldest(): void {
    const oldest = (this.#next - this.#size + this.#capacity) % this.#capacity;
    this.#chars -= this.#lines[oldest]!.length;
    this.#lines[oldest] = '';
    this.#size--;
  }

  /** Characters held now. */
  get chars(): number {
    return this.#chars;
  }

  /** The newest `limit` lines (all when fewer), oldest first, newest last. */
  last(limit: number): string[] {
    const count = Math.min(Math.max(0, limit), this.#size);
    const out = new Array<string>(count);
    const start = (this.#next - count + this.#capacity) % this.#capacity;
    for (let i = 0; i < count; i++) out[i] = this.#lines[(start + i) % this.#capacity]!;
    return out;
  }

  get size(): number {
    return this.#size;
  }
}

/**
 * The last `capacity` log lines of the node (config `log.type: "http"`), served by
 * `GET /adm/logs`. A fixed array used as a ring: a push is O(1) and memory is bounded by
 * `capacity` lines.
 */
export class LogRing {
  readonly #lines: string[];
  readonly #capacity: number;
  /** Index of the next write. */
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be >= 1');
    this.#capacity = capacity;
    this.#lines = new Array<string>(capacity);
  }

  push(line: string): void {
    this.#lines[this.#next] = line;
    this.#next = (this.#next + 1) % this.#capacity;
    if (this.#size < this.#capacity) this.#size++;
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

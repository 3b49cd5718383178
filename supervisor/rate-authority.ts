import {
  type Bucket,
  isIdle,
  isOverLimit,
  newBucket,
  returnTokens,
  takeTokens,
} from '../shared/gcra.js';
import type { RateReturnItem, RateTakeItem, RateTakeResult } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';

/** How often idle buckets are forgotten. */
const SWEEP_MS = 5_000;
/** When the table is full, room is made down to this fraction of the cap. */
const LOW_WATER = 0.95;
/** A new client refused because the table is full of clients over their limit waits this long. */
const FULL_REFUSE_MS = 1_000;
/** The "table full" warning is logged at most this often. */
const FULL_LOG_MS = 10_000;

/** What the authority needs to know about the node. */
export interface RateAuthorityOptions {
  /** At most this many buckets (clients × policies) are kept: ratelimit_max_clients. */
  maxKeys: number;
  /** Edges serving now: a grant leaves each edge its share of what the bucket holds. */
  edges: () => number;
  log: Logger;
  /** Monotonic ms; performance.now() unless a test drives time. */
  now?: () => number;
}

/**
 * The node's rate-limit buckets, held by the supervisor so that a client's budget is one budget
 * however the kernel spreads its connections over the edges (README "Rate limits").
 *
 * Edges do not ask for every request: they take a lease of tokens and spend it locally
 * (worker/rate-limiter.ts). A grant is what the edge asked for, or more when the bucket is well
 * filled: half of what the bucket holds divided among the edges, so that a client far from its
 * limit costs one ask per lease, and a client near it gets exactly what the bucket allows.
 * Tokens an edge did not spend come back (`rate-return`). A grant is taken from the bucket when
 * it is made, so the edges together never accept more than the bucket allows.
 *
 * Memory: at most `maxKeys` buckets. Full buckets are forgotten (a full bucket and no bucket
 * are the same state); when the table is full, buckets with at least one token left are
 * evicted too, least recently used first (such a client loses at most its unused credit,
 * never its debt). A client over its limit is never evicted: if every bucket is over its
 * limit, a new client is refused (fail closed) and a warning is logged.
 */
export class RateAuthority {
  readonly #buckets = new Map<string, Bucket>();
  readonly #options: RateAuthorityOptions;
  #maxKeys: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #lastFullLog = Number.NEGATIVE_INFINITY;
  #refusedFull = 0;

  constructor(options: RateAuthorityOptions) {
    this.#options = options;
    this.#maxKeys = options.maxKeys;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts forgetting idle buckets every SWEEP_MS. */
  start(): void {
    this.#timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** A reload's ratelimit_max_clients: a smaller cap takes effect as new clients arrive. */
  configure(maxKeys: number): void {
    this.#maxKeys = maxKeys;
  }

  /** Buckets held now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** One decision per item, in order. */
  take(items: readonly RateTakeItem[]): RateTakeResult[] {
    const now = this.#now();
    const edges = Math.max(1, this.#options.edges());
    return items.map((item) => this.#takeOne(item, now, edges));
  }

  /** Puts back unspent tokens; a bucket forgotten meanwhile is already full. */
  giveBack(items: readonly RateReturnItem[]): void {
    const now = this.#now();
    for (const { key, n } of items) {
      const bucket = this.#buckets.get(key);
      if (bucket !== undefined) returnTokens(bucket, now, n);
    }
  }

  /** Forgets every idle (full, unblocked) bucket. */
  sweep(now = this.#now()): void {
    for (const [key, bucket] of this.#buckets) if (isIdle(bucket, now)) this.#buckets.delete(key);
  }

  #takeOne(item: RateTakeItem, now: number, edges: number): RateTakeResult {
    const buckets = this.#buckets;
    let bucket = buckets.get(item.key);
    if (bucket === undefined) {
      if (buckets.size >= this.#maxKeys && !this.#makeRoom(now)) {
        this.#reportFull(now);
        return { granted: 0, refuseMs: FULL_REFUSE_MS, remaining: 0 };
      }
      bucket = newBucket(item, now);
    } else {
      // Re-inserted: the map's order is then least recently used first, for #makeRoom.
      buckets.delete(item.key);
    }
    buckets.set(item.key, bucket);
    return takeTokens(bucket, now, item.want, 2 * edges, item.blockMs);
  }

  /**
   * Frees room down to the low-water mark: idle buckets first, then buckets with a token
   * left, least recently used first. False when nothing could be freed (all over the limit).
   */
  #makeRoom(now: number): boolean {
    const buckets = this.#buckets;
    const target = Math.floor(this.#maxKeys * LOW_WATER);
    this.sweep(now);
    if (buckets.size > target) {
      for (const [key, bucket] of buckets) {
        if (buckets.size <= target) break;
        if (!isOverLimit(bucket, now)) buckets.delete(key);
      }
    }
    return buckets.size < this.#maxKeys;
  }

  #reportFull(now: number): void {
    this.#refusedFull++;
    if (now - this.#lastFullLog < FULL_LOG_MS) return;
    this.#lastFullLog = now;
    this.#options.log.warn('rate limiter full: every tracked client is over its limit', {
      max_clients: this.#maxKeys,
      new_clients_refused: this.#refusedFull,
    });
    this.#refusedFull = 0;
  }
}

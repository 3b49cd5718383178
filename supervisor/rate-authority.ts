import { type Bucket, isIdle, newBucket, settleTokens, takeTokens } from '../shared/gcra.js';
import type { RateSettleItem, RateTakeItem, RateTakeResult } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';

/** How often idle buckets are forgotten. */
const SWEEP_MS = 5_000;
/** A new client refused because the table is full of clients over their limit waits this long. */
const FULL_REFUSE_MS = 1_000;
/** A table found full of clients over their limit is not rescanned for this long. */
const FULL_RESCAN_MS = 100;
/** The "table full" warning is logged at most this often. */
const FULL_LOG_MS = 10_000;

/** What the authority needs to know about the node. */
export interface RateAuthorityOptions {
  /** At most this many buckets (clients × policies) are kept: ratelimit_max_clients. */
  maxKeys: number;
  /** Edges serving now: a grant leaves each edge its share of what the bucket holds. */
  edges: () => number;
  log: Logger;
  /** A client's block_delay started: every edge must refuse it for `ms` and drop its lease. */
  onBlock?: (key: string, ms: number) => void;
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
 * Granted tokens are reserved until the edge reports them spent or unspent (`rate-settle`,
 * shared/gcra.ts), so the edges together never accept more than the bucket allows, however late
 * they spend a lease. When a refusal starts a block (block_delay), every edge is told to refuse
 * the client and drop its lease (`onBlock`).
 *
 * Memory: at most `maxKeys` buckets. Idle buckets (full, unreserved, unblocked: the same state
 * as no bucket) are forgotten every SWEEP_MS and whenever the table is full. Nothing else is
 * ever evicted, so no client's debt is forgiven: when no bucket is idle, a new client is
 * refused (fail closed), the table is not rescanned for FULL_RESCAN_MS, and a warning is logged.
 */
export class RateAuthority {
  readonly #buckets = new Map<string, Bucket>();
  readonly #options: RateAuthorityOptions;
  #maxKeys: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #lastFullLog = Number.NEGATIVE_INFINITY;
  /** After a #makeRoom that freed nothing, new clients are refused without a rescan until then. */
  #fullUntil = Number.NEGATIVE_INFINITY;
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

  /** Settles leased tokens, spent or unspent; a bucket forgotten meanwhile had none reserved. */
  settle(items: readonly RateSettleItem[]): void {
    const now = this.#now();
    for (const { key, spent, unspent, ageMs } of items) {
      const bucket = this.#buckets.get(key);
      // Charged from the newest spend (no earlier than any of them was spent): strict, and no
      // later than it (a late report would otherwise push the refill back).
      if (bucket !== undefined) settleTokens(bucket, now - Math.min(ageMs, 10_000), spent, unspent);
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
      if (buckets.size >= this.#maxKeys && (now < this.#fullUntil || !this.#makeRoom(now))) {
        this.#reportFull(now);
        return { granted: 0, refuseMs: FULL_REFUSE_MS, remaining: 0, held: false };
      }
      bucket = newBucket(item, now);
      buckets.set(item.key, bucket);
    }
    const wasBlocked = bucket.blockedUntil > now;
    const grant = takeTokens(bucket, now, item.want, 2 * edges, item.blockMs);
    if (!wasBlocked && bucket.blockedUntil > now) this.#options.onBlock?.(item.key, grant.refuseMs);
    return grant;
  }

  /**
   * Frees room by forgetting idle buckets (full, unreserved, unblocked: the same state as no
   * bucket). A bucket with debt or reservations is never forgotten, that would forgive them.
   * False when nothing could be freed.
   */
  #makeRoom(now: number): boolean {
    const buckets = this.#buckets;
    this.sweep(now);
    if (buckets.size < this.#maxKeys) return true;
    // Every bucket is over its limit: rescanning for each new client would cost O(n) each.
    this.#fullUntil = now + FULL_RESCAN_MS;
    return false;
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

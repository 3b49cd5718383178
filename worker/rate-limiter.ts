/*
 * The edge's side of rate limiting. The buckets live in the supervisor
 * (supervisor/rate-authority.ts), one per client and policy for the whole node; an edge holds
 * a lease per client: tokens reserved for it by the supervisor, spent locally without any
 * message, for at most LEASE_MS. When a lease runs out the requests of that client wait for one
 * ask (asks made in one event-loop turn travel in one message); a refusal is remembered for as
 * long as the supervisor said, so a client over its limit is refused locally, with no message.
 * Spent tokens are reported every SETTLE_MS (and before any ask), unspent ones when the lease
 * expires, is evicted, or the supervisor blocks the client (`rate-block`): until then the
 * supervisor keeps them reserved, so a late-spent lease never adds to a refilled bucket.
 *
 * Memory: at most MAX_ENTRIES leases; expired ones are swept every second and, when the table
 * is full, the oldest are evicted (their tokens returned). Evicting a lease never lets anyone
 * through: the supervisor decides again on the next ask.
 */

import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RateLimitConfig } from '../conf/rate-limit-schema.js';
import { GatewayError } from '../shared/errors.js';
import { MAX_RATE_ITEMS, type RateSettleItem, type RateTakeItem } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import type { SupervisorLink } from './supervisor-link.js';
import { addOwnHeadLine, type Exchange } from './uws-io.js';

/** A lease's tokens are spent within this many ms, or given back. */
export const LEASE_MS = 1_000;
/** Leases an edge holds at most. */
export const MAX_ENTRIES = 100_000;
/** An ask for tokens unanswered after this many ms refuses its requests (503). */
const ASK_TIMEOUT_MS = 5_000;
const SWEEP_MS = 1_000;
/** Spent tokens are reported this often, and when a lease is used up. */
const SETTLE_MS = 100;
/**
 * Requests wait at most this long for tokens another edge holds (the supervisor says `held`):
 * a lease lasts LEASE_MS and spends are reported every SETTLE_MS. Beyond, they are refused.
 */
const MAX_HOLD_MS = LEASE_MS + 2 * SETTLE_MS;

/**
 * A compiled limit: which budget (its `id` changes with its parameters, so a reload that
 * changes a limit starts fresh buckets) and the IETF RateLimit-Policy value it announces.
 */
export interface LimitPolicy {
  /** The policy's name in the RateLimit headers: `auth`, `proxy`, or `route`. */
  readonly name: string;
  readonly id: string;
  readonly rps: number;
  readonly burst: number;
  readonly blockMs: number;
  /** burst + 1 */
  readonly capacity: number;
  /** `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-11): `"proxy";q=50;w=1`. */
  readonly policyHeader: string;
  /** The head line of an admitted request's RateLimit header up to its `r` value: `\r\nratelimit: "proxy";r=`. */
  readonly announceLine: string;
}

/**
 * Compiles a rate-limit block; undefined when it is off (requests_per_second 0). `scope`
 * separates budgets of the same name (a route's own limit is per route prefix).
 *
 * The header announces the sustained rate, the part a client can rely on: q requests per w
 * seconds, with w the smallest whole number of seconds holding at least one request. The
 * burst is a tolerance on top and is not announced.
 */
export function compilePolicy(
  name: 'auth' | 'proxy' | 'route',
  config: RateLimitConfig,
  scope = '',
): LimitPolicy | undefined {
  const rps = config.requests_per_second;
  if (rps <= 0) return undefined;
  const window = rps >= 1 ? 1 : Math.ceil(1 / rps);
  const quota = Math.max(1, Math.floor(rps * window));
  return {
    name,
    // A route prefix can be long; the id travels with every ask (IPC keys are bounded).
    id: `${name}${scope === '' ? '' : `:${shortHash(scope)}`}|${rps}|${config.burst}|${config.block_delay}`,
    rps,
    burst: config.burst,
    blockMs: config.block_delay,
    capacity: config.burst + 1,
    policyHeader: `"${name}";q=${quota};w=${window}`,
    announceLine: `\r\nratelimit: "${name}";r=`,
  };
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16);
}

interface Lease {
  /** `<policy id> <kind>:<name>`: the supervisor's bucket key, sent in asks and settlements. */
  readonly key: string;
  /** The per-request index this lease is in, under `name` (deleted with the lease). */
  readonly tables: PolicyTables;
  readonly kind: ClientKind;
  readonly name: string;
  tokens: number;
  /** performance.now() after which unspent tokens go back. */
  expiresAt: number;
  /** performance.now() before which every request is refused. */
  refusedUntil: number;
  /** Tokens the bucket kept after the last grant (for the RateLimit header). */
  remaining: number;
  /** Tokens spent since the last report. */
  spent: number;
  /** performance.now() of the newest of them. */
  lastSpentAt: number;
  /** Set while an ask for this lease is on its way (or its requests wait to ask again). */
  waiting: Promise<void> | undefined;
  /** performance.now() of the first `held` answer of the current wait; 0 when not waiting. */
  heldSince: number;
  /** The item of that ask: requests waiting add to its `want`. */
  item: RateTakeItem | undefined;
}

/** Who a budget belongs to: a user (valid token) or a client address (addressKey). */
export type ClientKind = 'u' | 'i';

/** One policy's leases by client, per kind: found with no key string built per request. */
interface PolicyTables {
  readonly id: string;
  readonly u: Map<string, Lease>;
  readonly i: Map<string, Lease>;
}

interface Batch {
  items: RateTakeItem[];
  leases: Lease[];
  settle: (() => void)[];
  fail: ((err: GatewayError) => void)[];
}

/** The edge's leases, one per client and policy. */
export class RateLimiter {
  readonly #link: SupervisorLink;
  readonly #log: Logger;
  readonly #maxEntries: number;
  /** Every lease by its key (sweeps, blocks, the bound). */
  readonly #leases = new Map<string, Lease>();
  /**
   * The same leases by policy id, then kind and name. Measured (callgrind, 2026-12-01): the
   * key `${policy.id} ${client}` built per request cost its concatenation plus a fresh string
   * hash in Map.get; the policy id and the user name (config) or the address (cached by
   * client-address.ts) are strings whose hash V8 keeps.
   */
  readonly #tables = new Map<string, PolicyTables>();
  #batch: Batch | undefined;
  /** Settlements to send: spent and unspent tokens. */
  #settles: RateSettleItem[] = [];
  /** Leases with spent tokens not yet reported. */
  readonly #unsettled = new Map<string, Lease>();
  #timer: NodeJS.Timeout | undefined;
  #settleTimer: NodeJS.Timeout | undefined;
  #settleScheduled = false;

  constructor(link: SupervisorLink, log: Logger, maxEntries = MAX_ENTRIES) {
    this.#link = link;
    this.#log = log;
    this.#maxEntries = maxEntries;
  }

  /** Starts the sweep of expired leases. */
  start(): void {
    this.#timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.#timer.unref();
    this.#settleTimer = setInterval(() => this.#flushSettles(), SETTLE_MS);
    this.#settleTimer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#settleTimer) clearInterval(this.#settleTimer);
    this.sweep(Number.POSITIVE_INFINITY);
  }

  /**
   * The supervisor blocked `key` (block_delay): refuse it here for `ms` too, and give its
   * unspent tokens back at once.
   */
  block(key: string, ms: number): void {
    const lease = this.#leases.get(key);
    if (lease === undefined) return;
    lease.refusedUntil = Math.max(lease.refusedUntil, performance.now() + ms);
    this.#giveBack(lease);
    this.#flushSettles();
  }

  /** Leases held now. */
  get size(): number {
    return this.#leases.size;
  }

  /** Policies with leases held now (their per-request tables are dropped with the last one). */
  get policies(): number {
    return this.#tables.size;
  }

  /**
   * Admits one request of client `name` (a user name when `kind` is 'u', an address key when
   * 'i') under `policy`: undefined when it may go on now (the RateLimit header is added to its
   * answer), a promise when it waits for the supervisor (resolves when admitted, rejects with
   * the refusal, or with 503 LIMITER_UNAVAILABLE when the supervisor does not answer), or
   * throws the 429 RATE_LIMITED refusal (GatewayError with Retry-After, RateLimit-Policy and
   * RateLimit) when refused now.
   */
  admit(
    policy: LimitPolicy,
    kind: ClientKind,
    name: string,
    ex: Exchange,
  ): Promise<void> | undefined {
    const now = performance.now();
    let lease = this.#tables.get(policy.id)?.[kind].get(name);
    if (lease !== undefined) {
      if (now < lease.refusedUntil) throw refused(policy, lease.refusedUntil - now);
      if (lease.tokens > 0) {
        if (now < lease.expiresAt) {
          lease.tokens--;
          if (lease.spent++ === 0) this.#unsettled.set(lease.key, lease);
          lease.lastSpentAt = now;
          // A used-up lease is reported at once: other edges may be waiting for its tokens.
          if (lease.tokens === 0) this.#settleSoon();
          announce(ex, policy, lease);
          return undefined;
        }
        this.#giveBack(lease);
      }
      if (lease.waiting !== undefined) {
        if (lease.item !== undefined) lease.item.want++;
        return lease.waiting.then(() => this.admit(policy, kind, name, ex));
      }
    } else {
      if (this.#leases.size >= this.#maxEntries) this.#makeRoom(now);
      lease = this.#newLease(policy.id, kind, name);
    }
    return this.#ask(lease, policy).then(() => this.admit(policy, kind, name, ex));
  }

  /**
   * A lease in both indexes. Its policy's tables are looked up only now, after any #makeRoom:
   * making room can forget the policy's last lease and the tables with it, and a lease put in
   * tables no longer indexed would be found by no request (its tokens lost to its client).
   */
  #newLease(id: string, kind: ClientKind, name: string): Lease {
    let tables = this.#tables.get(id);
    if (tables === undefined) {
      tables = { id, u: new Map(), i: new Map() };
      this.#tables.set(id, tables);
    }
    const lease: Lease = {
      key: `${id} ${kind}:${name}`,
      tables,
      kind,
      name,
      tokens: 0,
      expiresAt: 0,
      refusedUntil: 0,
      remaining: 0,
      spent: 0,
      lastSpentAt: 0,
      waiting: undefined,
      heldSince: 0,
      item: undefined,
    };
    this.#leases.set(lease.key, lease);
    tables[kind].set(name, lease);
    return lease;
  }

  /** Gives back the tokens of expired leases and forgets leases with nothing to remember. */
  sweep(now = performance.now()): void {
    for (const lease of this.#leases.values()) {
      if (lease.waiting !== undefined || now < lease.expiresAt || now < lease.refusedUntil) {
        continue;
      }
      this.#forget(lease);
    }
    this.#flushSettles();
  }

  #makeRoom(now: number): void {
    this.sweep(now);
    const target = Math.floor(this.#maxEntries * 0.9);
    for (const lease of this.#leases.values()) {
      if (this.#leases.size <= target) break;
      if (lease.waiting !== undefined) continue;
      this.#forget(lease);
    }
    this.#flushSettles();
  }

  /** Gives the lease's tokens back and drops it from both indexes. */
  #forget(lease: Lease): void {
    this.#giveBack(lease);
    this.#leases.delete(lease.key);
    const tables = lease.tables;
    tables[lease.kind].delete(lease.name);
    // A reload that changes a limit leaves its old policy's tables empty: forget them.
    if (tables.u.size === 0 && tables.i.size === 0) this.#tables.delete(tables.id);
  }

  /** Queues the lease's spent tokens and gives its unspent ones back. */
  #giveBack(lease: Lease): void {
    if (lease.tokens > 0 || lease.spent > 0) {
      this.#settles.push({
        key: lease.key,
        spent: lease.spent,
        unspent: lease.tokens,
        ageMs: age(lease),
      });
    }
    lease.tokens = 0;
    lease.spent = 0;
    this.#unsettled.delete(lease.key);
  }

  #settleSoon(): void {
    if (this.#settleScheduled) return;
    this.#settleScheduled = true;
    setImmediate(() => {
      this.#settleScheduled = false;
      this.#flushSettles();
    });
  }

  /** Reports every spent token and queued settlement (in order, before any ask that follows). */
  #flushSettles(): void {
    for (const [key, lease] of this.#unsettled) {
      if (lease.spent > 0) {
        this.#settles.push({ key, spent: lease.spent, unspent: 0, ageMs: age(lease) });
      }
      lease.spent = 0;
    }
    this.#unsettled.clear();
    while (this.#settles.length > 0) {
      const items = this.#settles.splice(0, MAX_RATE_ITEMS);
      this.#link.notify({ type: 'rate-settle', items });
    }
  }

  #ask(lease: Lease, policy: LimitPolicy): Promise<void> {
    let batch = this.#batch;
    if (batch === undefined) {
      batch = { items: [], leases: [], settle: [], fail: [] };
      this.#batch = batch;
      setImmediate(() => this.#flush());
    }
    const item: RateTakeItem = {
      key: lease.key,
      rps: policy.rps,
      burst: policy.burst,
      blockMs: policy.blockMs,
      want: 1,
    };
    const b = batch;
    lease.item = item;
    lease.waiting = new Promise<void>((resolve, reject) => {
      b.items.push(item);
      b.leases.push(lease);
      b.settle.push(resolve);
      b.fail.push(reject);
    });
    return lease.waiting;
  }

  #flush(): void {
    const batch = this.#batch!;
    this.#batch = undefined;
    // The supervisor learns what was spent before it decides what to grant.
    this.#flushSettles();
    for (let start = 0; start < batch.items.length; start += MAX_RATE_ITEMS) {
      const end = Math.min(start + MAX_RATE_ITEMS, batch.items.length);
      const items = batch.items.slice(start, end);
      this.#link.ask({ type: 'rate-take', items }, ASK_TIMEOUT_MS).then(
        ({ results }) => {
          const now = performance.now();
          for (let i = start; i < end; i++) {
            const lease = batch.leases[i]!;
            const result = results[i - start];
            lease.waiting = undefined;
            lease.item = undefined;
            if (result === undefined) {
              batch.fail[i]!(LIMITER_UNAVAILABLE);
              continue;
            }
            if (result.granted === 0 && result.held) {
              if (lease.heldSince === 0) lease.heldSince = now;
              if (now - lease.heldSince < MAX_HOLD_MS) {
                // Another edge holds the tokens: wait, then ask again (new requests join).
                const wait = new Promise<void>((r) => setTimeout(r, result.refuseMs)).then(() => {
                  lease.waiting = undefined;
                });
                lease.waiting = wait;
                wait.then(batch.settle[i]!);
                continue;
              }
            }
            lease.heldSince = 0;
            lease.tokens += result.granted;
            lease.remaining = result.remaining;
            lease.expiresAt = now + LEASE_MS;
            if (result.granted === 0) lease.refusedUntil = now + result.refuseMs;
            batch.settle[i]!();
          }
        },
        (err: Error) => {
          this.#log.warn('rate limiter: the supervisor did not answer', { reason: err.message });
          for (let i = start; i < end; i++) {
            const lease = batch.leases[i]!;
            lease.waiting = undefined;
            lease.item = undefined;
            batch.fail[i]!(LIMITER_UNAVAILABLE);
          }
        },
      );
    }
  }
}

const LIMITER_UNAVAILABLE = new GatewayError('LIMITER_UNAVAILABLE');

/** Ms since the lease's newest unreported spend: the supervisor charges them from then. */
function age(lease: Lease): number {
  return lease.spent > 0 ? Math.max(0, performance.now() - lease.lastSpentAt) : 0;
}

/**
 * The RateLimit header of an admitted request: what this edge knows is left, and when the
 * bucket is full. RateLimit-Policy goes with refusals only: it never changes, and every header
 * written is one more call into uWS on the hot path.
 */
function announce(ex: Exchange, policy: LimitPolicy, lease: Lease): void {
  const left = Math.min(policy.capacity, lease.tokens + lease.remaining);
  const reset = Math.ceil((policy.capacity - left) / policy.rps);
  // The name is one of three constants and the rest are whole numbers: printable ASCII.
  addOwnHeadLine(ex, `${policy.announceLine}${left};t=${reset}`);
}

/** The original's 429, with Retry-After and the IETF headers, `after` in whole seconds. */
function refused(policy: LimitPolicy, ms: number): GatewayError {
  const after = Math.max(1, Math.ceil(ms / 1000));
  return new GatewayError('RATE_LIMITED', {
    after,
    headers: [
      ['ratelimit-policy', policy.policyHeader],
      ['ratelimit', `"${policy.name}";r=0;t=${after}`],
    ],
  });
}

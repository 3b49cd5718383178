/*
 * The rate limiter's arithmetic: a token bucket written as GCRA (the Generic Cell Rate
 * Algorithm, ITU-T I.371; the form used by Redis-Cell and Envoy's local limiter). One number per
 * client, the theoretical arrival time `tat`: the bucket is full when `tat <= now`, and each
 * token taken pushes `tat` one period (1000 / requests_per_second ms) further. A bucket holds
 * `burst + 1` tokens, so `burst: 0` still lets one request through per period, and a client
 * that starts full can send at most `burst + 1 + rate × T` requests over any T seconds.
 *
 * Tokens handed to an edge (a lease, worker/rate-limiter.ts) are *reserved*, not yet spent: they
 * are unavailable to anyone else, but the bucket's clock only moves when the edge reports them
 * spent (or they come back unspent). A token is thus counted from the moment it is reserved to
 * the moment its spending is reported, never less: however late a lease is spent, the node never
 * admits more than `burst + 1 + rate × T` over T seconds.
 *
 * `block_delay` adds a second deadline: when a request finds the bucket empty the client is
 * refused outright for that many milliseconds (every request, without taking tokens), after
 * which the bucket, refilled meanwhile, decides again.
 *
 * Times are milliseconds on one monotonic clock (performance.now() of the process that owns
 * the buckets: the supervisor). Functions over a mutable Bucket (reading one may settle an
 * expired reservation), so that tests drive time.
 */

/** A limit, as configured: requests per second (> 0), extra burst, block delay in ms. */
export interface RatePolicy {
  readonly rps: number;
  readonly burst: number;
  readonly blockMs: number;
}

/** One client's state under one policy. */
export interface Bucket {
  /** Theoretical arrival time (ms): full when `tat <= now`. */
  tat: number;
  /** Refused outright until then (ms); 0 when not blocked. */
  blockedUntil: number;
  /** 1000 / rps: ms per token. */
  readonly periodMs: number;
  /** burst + 1 tokens. */
  readonly capacity: number;
  /** Tokens leased to edges and not yet reported spent or unspent. */
  reserved: number;
  /** After this (ms) unsettled reservations count as spent: their edge is gone. */
  reservedUntil: number;
}

/** What a take decided: tokens granted (0: refused) and what the headers report. */
export interface Grant {
  /** Tokens granted, 0 to `want` or more (see takeTokens). */
  granted: number;
  /** When refused: ms until a request may succeed (the block, or the next token). */
  refuseMs: number;
  /** Tokens left in the bucket after the grant. */
  remaining: number;
  /**
   * Refused only because other edges hold reserved tokens (not over the limit: they may be
   * settled unspent soon); the asker should wait `refuseMs` and ask again, not refuse.
   */
  held: boolean;
}

// Float ms arithmetic: a token due within this much counts as there.
const EPSILON = 1e-6;
/** A refusal while reserved tokens fill the bucket is retried after this long at most. */
const RESERVED_RETRY_MS = 50;

/** A full bucket for `policy`. */
export function newBucket(policy: RatePolicy, now: number): Bucket {
  return {
    tat: now,
    blockedUntil: 0,
    periodMs: 1000 / policy.rps,
    capacity: policy.burst + 1,
    reserved: 0,
    reservedUntil: 0,
  };
}

/**
 * How long reserved tokens wait for their settlement. Edges settle within about a second
 * (worker/rate-limiter.ts: leases last 1 s, spends are reported every 100 ms); one that died
 * never will, and its reservation then counts as spent (the strict reading).
 */
export const RESERVATION_MS = 5_000;

/** A wait of `due` ms, but at least EPSILON and at most `max`. */
function clamp(due: number, max: number): number {
  return Math.min(Math.max(due, EPSILON), max);
}

function expireReservation(b: Bucket, now: number): void {
  if (b.reserved === 0 || now < b.reservedUntil) return;
  b.tat = Math.max(b.tat, b.reservedUntil) + b.reserved * b.periodMs;
  b.reserved = 0;
}

/**
 * Tokens free in the bucket at `now`: what the clock gives back, less the reserved ones; 0 while
 * blocked. An integer from 0 to capacity.
 */
export function tokensAt(b: Bucket, now: number): number {
  expireReservation(b, now);
  if (b.blockedUntil > now) return 0;
  return Math.max(0, refilledAt(b, now) - b.reserved);
}

/** Tokens the clock has given back at `now`, reserved ones included. */
function refilledAt(b: Bucket, now: number): number {
  const debt = b.tat - now;
  if (debt <= 0) return b.capacity;
  return Math.max(0, Math.floor(b.capacity - debt / b.periodMs + EPSILON));
}

/** Ms until the bucket is full again (0 when it is), for the `t` of the RateLimit header. */
export function msUntilFull(b: Bucket, now: number): number {
  return Math.max(0, b.tat - now, b.blockedUntil - now);
}

/**
 * Takes `want` tokens, or `1 / spread` of what the bucket holds when that is more (a lease for
 * later requests), never more than it holds. When the bucket is empty nothing is taken, and
 * the first such refusal starts the block of `blockMs` when there is one.
 */
export function takeTokens(
  b: Bucket,
  now: number,
  want: number,
  spread: number,
  blockMs: number,
): Grant {
  if (b.blockedUntil > now) {
    return { granted: 0, refuseMs: b.blockedUntil - now, remaining: 0, held: false };
  }
  const available = tokensAt(b, now);
  if (available === 0) {
    if (refilledAt(b, now) > 0) {
      // Empty only because other edges hold reserved tokens: they may come back unspent, so
      // this is no reason to block; ask again soon (or when the next token is due).
      const due = b.tat - now - (b.capacity - 1 - b.reserved) * b.periodMs;
      return { granted: 0, refuseMs: clamp(due, RESERVED_RETRY_MS), remaining: 0, held: true };
    }
    if (blockMs > 0) {
      b.blockedUntil = now + blockMs;
      return { granted: 0, refuseMs: blockMs, remaining: 0, held: false };
    }
    // The next token is due when the debt drops to (capacity - 1) periods.
    const refuseMs = b.tat - now - (b.capacity - 1) * b.periodMs;
    return { granted: 0, refuseMs: Math.max(refuseMs, EPSILON), remaining: 0, held: false };
  }
  const granted = Math.min(available, Math.max(want, Math.floor(available / spread)));
  b.reserved += granted;
  b.reservedUntil = now + RESERVATION_MS;
  return { granted, refuseMs: 0, remaining: available - granted, held: false };
}

/**
 * Settles reserved tokens: `spent` were used (the clock moves now, as if they had arrived now:
 * later than they did, which only errs on the strict side), `unspent` come back.
 */
export function settleTokens(b: Bucket, now: number, spent: number, unspent: number): void {
  const settled = Math.min(b.reserved, spent + unspent);
  const used = Math.min(spent, settled);
  b.reserved -= settled;
  if (used > 0) b.tat = Math.max(b.tat, now) + used * b.periodMs;
}

/** Whether the bucket is full, unreserved and unblocked at `now`: forgetting it changes nothing. */
export function isIdle(b: Bucket, now: number): boolean {
  expireReservation(b, now);
  return b.tat <= now && b.blockedUntil <= now && b.reserved === 0;
}

/** Whether the client is refused at `now`: blocked, or no whole token in the bucket. */
export function isOverLimit(b: Bucket, now: number): boolean {
  return tokensAt(b, now) === 0;
}

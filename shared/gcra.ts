/*
 * The rate limiter's arithmetic: a token bucket written as GCRA (the Generic Cell Rate
 * Algorithm, ITU-T I.371; the form used by Redis-Cell and Envoy's local limiter). One number per
 * client, the theoretical arrival time `tat`: the bucket is full when `tat <= now`, and each
 * token taken pushes `tat` one period (1000 / requests_per_second ms) further. A bucket holds
 * `burst + 1` tokens, so `burst: 0` still lets one request through per period, and a client
 * that starts full can send at most `burst + 1 + rate × T` requests over any T seconds.
 *
 * `block_delay` adds a second deadline: when a request finds the bucket empty the client is
 * refused outright for that many milliseconds (every request, without taking tokens), after
 * which the bucket, refilled meanwhile, decides again.
 *
 * Times are milliseconds on one monotonic clock (performance.now() of the process that owns
 * the buckets: the supervisor). Pure functions over a mutable Bucket, so that tests drive time.
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
}

/** What a take decided: tokens granted (0: refused) and what the headers report. */
export interface Grant {
  /** Tokens granted, 0 to `want` or more (see takeTokens). */
  granted: number;
  /** When refused: ms until a request may succeed (the block, or the next token). */
  refuseMs: number;
  /** Tokens left in the bucket after the grant. */
  remaining: number;
}

// Float ms arithmetic: a token due within this much counts as there.
const EPSILON = 1e-6;

/** A full bucket for `policy`. */
export function newBucket(policy: RatePolicy, now: number): Bucket {
  return {
    tat: now,
    blockedUntil: 0,
    periodMs: 1000 / policy.rps,
    capacity: policy.burst + 1,
  };
}

/** Tokens in the bucket at `now` (0 while blocked), an integer from 0 to capacity. */
export function tokensAt(b: Bucket, now: number): number {
  if (b.blockedUntil > now) return 0;
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
  if (b.blockedUntil > now) return { granted: 0, refuseMs: b.blockedUntil - now, remaining: 0 };
  const available = tokensAt(b, now);
  if (available === 0) {
    if (blockMs > 0) {
      b.blockedUntil = now + blockMs;
      return { granted: 0, refuseMs: blockMs, remaining: 0 };
    }
    // The next token is due when the debt drops to (capacity - 1) periods.
    const refuseMs = b.tat - now - (b.capacity - 1) * b.periodMs;
    return { granted: 0, refuseMs: Math.max(refuseMs, EPSILON), remaining: 0 };
  }
  const granted = Math.min(available, Math.max(want, Math.floor(available / spread)));
  b.tat = Math.max(b.tat, now) + granted * b.periodMs;
  return { granted, refuseMs: 0, remaining: available - granted };
}

/** Puts back `n` tokens taken earlier and not spent; the bucket never goes above full. */
export function returnTokens(b: Bucket, now: number, n: number): void {
  b.tat = Math.max(now, b.tat - n * b.periodMs);
}

/** Whether the bucket is full and unblocked at `now`: forgetting it changes nothing. */
export function isIdle(b: Bucket, now: number): boolean {
  return b.tat <= now && b.blockedUntil <= now;
}

/** Whether the client is refused at `now`: blocked, or no whole token in the bucket. */
export function isOverLimit(b: Bucket, now: number): boolean {
  return tokensAt(b, now) === 0;
}

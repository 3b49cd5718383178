/**
 * Time as the fleet sees it: injected so that unit tests drive timeouts and backoff with a fake
 * clock instead of waiting.
 */
export interface Clock {
  /** Milliseconds since the epoch (as Date.now()). */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds; the returned function cancels it. */
  schedule(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

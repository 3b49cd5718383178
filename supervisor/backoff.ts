/** The first restart delay after a crash, doubled on every further crash. */
export const BACKOFF_FIRST_MS = 100;
export const BACKOFF_MAX_MS = 5_000;
/** An edge that lived this long before crashing counts as healthy: its backoff starts over. */
export const HEALTHY_AFTER_MS = 10_000;

/**
 * Crashes in a row for a slot, after an edge of it crashed having lived `livedMs`: a healthy
 * edge resets the count to 0 (restarted at once), a short-lived one adds one.
 */
export function nextFailureCount(previous: number, livedMs: number): number {
  return livedMs >= HEALTHY_AFTER_MS ? 0 : previous + 1;
}

/** Delay before restarting after `failures` crashes in a row: 0, then 100 ms doubling to 5 s. */
export function restartDelayMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(failures - 1, 30));
}

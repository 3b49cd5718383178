/**
 * Freezes plain objects and arrays recursively, in place, and returns `value`. RegExp objects
 * are left alone: they are never shared mutable state here (no `g`/`y` flag, so `lastIndex`
 * is never written) and freezing them would only cost time.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || value instanceof RegExp) return value;
  if (Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}

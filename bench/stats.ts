/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const upper = sorted[mid] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] as number) + upper) / 2;
}

/** Smallest and largest value of a non-empty list. */
export function range(values: readonly number[]): { readonly min: number; readonly max: number } {
  if (values.length === 0) throw new RangeError('range of an empty list');
  return { min: Math.min(...values), max: Math.max(...values) };
}

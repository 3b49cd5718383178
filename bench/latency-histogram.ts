/*
 * Buckets over hundredths of a ms (the access log's resolution): below 2^SUB_BITS hundredths
 * (1.28 ms) one bucket per value, exact; above, each power of two is cut into 2^(SUB_BITS - 1)
 * buckets of equal width (the value's 7 leading bits), and a bucket answers with its middle
 * value, at most half a width from any value in it: within 2^-SUB_BITS = 0.78% of the value.
 * Values past 2^32 hundredths (11.9 h) fall in the last bucket.
 */
const SUB_BITS = 7;
const LINEAR = 1 << SUB_BITS;
const HALF = LINEAR >> 1;
const MAX_EXPONENT = 31;
const BUCKETS = LINEAR + (MAX_EXPONENT - SUB_BITS + 1) * HALF;

/** Largest relative error of a quantile above 1.28 ms (below it, quantiles are exact). */
export const HISTOGRAM_RELATIVE_ERROR = 1 / LINEAR;

/**
 * Latencies in ms counted in log-linear buckets: fixed memory (13.8 KiB) however many values,
 * and quantiles within {@link HISTOGRAM_RELATIVE_ERROR} of the exact ones.
 */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  /** Counts one latency in ms; a negative or non-finite value is not a latency and is ignored. */
  record(ms: number): void {
    if (!(ms >= 0 && ms < Number.POSITIVE_INFINITY)) return;
    const hundredths = Math.min(Math.round(ms * 100), 2 ** 32 - 1);
    this.#counts[bucketOf(hundredths)]! += 1;
    this.#count++;
  }

  /**
   * The value at rank ceil(q × count) of the sorted values (nearest rank), as its bucket's
   * middle, in ms; undefined when nothing was recorded.
   */
  quantile(q: number): number | undefined {
    if (this.#count === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return middleOf(i) / 100;
    }
    return middleOf(BUCKETS - 1) / 100;
  }
}

function bucketOf(hundredths: number): number {
  if (hundredths < LINEAR) return hundredths;
  const exponent = 31 - Math.clz32(hundredths);
  const shift = exponent - SUB_BITS + 1;
  return LINEAR + (exponent - SUB_BITS) * HALF + ((hundredths >>> shift) - HALF);
}

/** The middle of the integers a bucket holds. */
function middleOf(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const exponent = Math.floor((bucket - LINEAR) / HALF) + SUB_BITS;
  const shift = exponent - SUB_BITS + 1;
  const low = (HALF + ((bucket - LINEAR) % HALF)) * 2 ** shift;
  return low + (2 ** shift - 1) / 2;
}

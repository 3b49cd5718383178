/**
 * What an edge counts for the node's metrics and hands to the supervisor (`metrics` IPC event),
 * shared by both ends. An edge counts in plain integers (worker/edge-metrics.ts); the supervisor
 * adds each report into its prom-client registry (supervisor/node-metrics.ts), so that one scrape
 * shows the whole node. Reports are deltas: every count is what happened since the last report.
 */

/**
 * Upper bounds (seconds) of the latency histograms' buckets, the same on both ends. A report's
 * bucket counts are per bucket (not cumulative) with one more entry for "above the last bound".
 */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** Method label values; any other method is counted as `other` (bounded cardinality). */
export const KNOWN_METHODS: readonly string[] = Object.freeze([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
]);

/**
 * The most series of one kind a report may carry. An edge reports at most routes × 8 methods ×
 * 7 classes request series (routes.yml's prefixes plus the endpoints): this leaves room for
 * over a thousand routes, each seen with every method and class in one second.
 */
export const MAX_REPORT_SERIES = 65_536;

/** Requests answered, by route prefix (or gateway endpoint), method and status class. */
export interface RequestSeries {
  route: string;
  method: string;
  /** `1xx` ... `5xx`; a client gone before the answer is `aborted`. */
  status: string;
  count: number;
}

/** One route's latency observations: per-bucket counts (LATENCY_BUCKETS + overflow) and sum. */
export interface LatencySeries {
  route: string;
  counts: number[];
  /** Seconds. */
  sum: number;
}

/** Upstream failures by route and kind (the error code, lower case). */
export interface UpstreamErrorSeries {
  route: string;
  kind: string;
  count: number;
}

export interface MetricsReport {
  requests: RequestSeries[];
  requestSeconds: LatencySeries[];
  upstreamSeconds: LatencySeries[];
  upstreamErrors: UpstreamErrorSeries[];
  /** Logins (POST /auth) by result: `success`, or the refusal's error code in lower case. */
  logins: { result: string; count: number }[];
  /** Requests refused by a rate limit (RATE_LIMITED), by route or endpoint. */
  rateLimited: { route: string; count: number }[];
  /** Verified-token cache (worker/session-cache.ts) lookups since the last report. */
  tokenCache: { hits: number; misses: number };
  /** Event-loop delay of the edge over the period: the 99th percentile, seconds. */
  loopLagSeconds: number;
}

/** The bucket index of `seconds` in LATENCY_BUCKETS (LATENCY_BUCKETS.length: above all). */
export function bucketOf(seconds: number): number {
  const bounds = LATENCY_BUCKETS;
  let i = 0;
  while (i < bounds.length && seconds > bounds[i]!) i++;
  return i;
}

import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import {
  bucketOf,
  KNOWN_METHODS,
  LATENCY_BUCKETS,
  type LatencySeries,
  type MetricsReport,
  type RequestSeries,
} from '../shared/metrics-report.js';

/** How often an edge hands its counts to the supervisor, in milliseconds. */
export const METRICS_FLUSH_MS = 1_000;

const METHOD_LABELS = [...KNOWN_METHODS, 'other'];
const CLASS_LABELS = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted', 'other'];
const BUCKETS = LATENCY_BUCKETS.length + 1;

/** What `record` reads of a finished request (worker/request-context.ts has it all). */
export interface FinishedRequest {
  /** Route prefix or gateway endpoint; undefined when nothing matched. */
  readonly logRoute: string | undefined;
  /** The answer's error code, if any. */
  readonly code: string | undefined;
  /** Milliseconds until the upstream's response head, or -1 when none came. */
  readonly upstreamMs: number;
  readonly ex: {
    readonly method: string;
    readonly status: number;
    readonly aborted: boolean;
    /** performance.now() at arrival. */
    readonly startedAt: number;
  };
}

/** Counts of one route since the last report: plain arrays, no allocation per request. */
class RouteCounts {
  /** By method index × class index. */
  readonly requests = new Float64Array(METHOD_LABELS.length * CLASS_LABELS.length);
  readonly latency = new Float64Array(BUCKETS);
  latencySum = 0;
  readonly upstream = new Float64Array(BUCKETS);
  upstreamSum = 0;
  upstreamCount = 0;
  rateLimited = 0;
  errors: Map<string, number> | undefined;
  total = 0;
}

/**
 * The metrics of one edge (config `metrics` set): per-request counts in plain typed arrays,
 * handed to `report` every METRICS_FLUSH_MS as a delta (shared/metrics-report.ts), and the
 * event loop's delay, sampled by Node's own histogram (perf_hooks) off the request path.
 * Cardinality is bounded by the config: the route label is a route prefix or an endpoint path,
 * never a request path; methods outside KNOWN_METHODS are `other`.
 */
export class EdgeMetrics {
  readonly #report: (report: MetricsReport) => void;
  readonly #tokenCache: () => { hits: number; misses: number };
  #routes = new Map<string, RouteCounts>();
  #logins = new Map<string, number>();
  readonly #lag: IntervalHistogram;
  #timer: NodeJS.Timeout | undefined;
  #lastCache = { hits: 0, misses: 0 };

  /**
   * `tokenCache` reads the verified-token cache's running totals (deltas are taken here);
   * `report` sends a report to the supervisor.
   */
  constructor(
    report: (report: MetricsReport) => void,
    tokenCache: () => { hits: number; misses: number },
  ) {
    this.#report = report;
    this.#tokenCache = tokenCache;
    this.#lag = monitorEventLoopDelay({ resolution: 10 });
  }

  /** Starts the event-loop sampling and the periodic report. */
  start(): void {
    this.#lag.enable();
    this.#timer ??= setInterval(() => this.flush(), METRICS_FLUSH_MS).unref();
  }

  /** Stops the timer after a last report (drain). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.flush();
    this.#lag.disable();
  }

  /**
   * Counts one finished request at `now` (performance.now()). Hot path: a Map lookup and a few
   * array increments, no allocation once the route was seen.
   */
  record(r: FinishedRequest, now: number): void {
    const route = r.logRoute ?? 'none';
    const ex = r.ex;
    let counts = this.#routes.get(route);
    if (counts === undefined) {
      counts = new RouteCounts();
      this.#routes.set(route, counts);
    }
    const m = KNOWN_METHODS.indexOf(ex.method);
    const status = ex.status;
    const c = ex.aborted ? 5 : status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 6;
    counts.requests[(m < 0 ? KNOWN_METHODS.length : m) * CLASS_LABELS.length + c]!++;
    counts.total++;
    const seconds = (now - ex.startedAt) / 1000;
    counts.latency[bucketOf(seconds)]!++;
    counts.latencySum += seconds;
    if (r.upstreamMs >= 0) {
      const up = r.upstreamMs / 1000;
      counts.upstream[bucketOf(up)]!++;
      counts.upstreamSum += up;
      counts.upstreamCount++;
    }
    const code = r.code;
    if (code === undefined) {
      if (route === '/auth' && ex.method === 'POST' && !ex.aborted) this.#login('success');
      return;
    }
    if (code === 'RATE_LIMITED') counts.rateLimited++;
    if (isUpstreamFailure(code)) {
      counts.errors ??= new Map();
      const kind = code.toLowerCase();
      counts.errors.set(kind, (counts.errors.get(kind) ?? 0) + 1);
    }
    if (route === '/auth' && ex.method === 'POST') this.#login(code.toLowerCase());
  }

  #login(result: string): void {
    this.#logins.set(result, (this.#logins.get(result) ?? 0) + 1);
  }

  /** Builds the report of everything counted since the last one, sends it, starts again. */
  flush(): void {
    const report = this.take();
    if (report !== undefined) this.#report(report);
  }

  /** The report since the last one (undefined when nothing at all happened), counts reset. */
  take(): MetricsReport | undefined {
    const routes = this.#routes;
    const logins = this.#logins;
    this.#routes = new Map();
    this.#logins = new Map();
    const cache = this.#tokenCache();
    const tokenCache = {
      hits: cache.hits - this.#lastCache.hits,
      misses: cache.misses - this.#lastCache.misses,
    };
    this.#lastCache = { hits: cache.hits, misses: cache.misses };
    // The lag gauge is sent every period, so a blocked edge shows even with no traffic.
    const lag = this.#lag.count > 0 ? this.#lag.percentile(99) / 1e9 : 0;
    this.#lag.reset();
    const report: MetricsReport = {
      requests: [],
      requestSeconds: [],
      upstreamSeconds: [],
      upstreamErrors: [],
      logins: [...logins].map(([result, count]) => ({ result, count })),
      rateLimited: [],
      tokenCache,
      loopLagSeconds: lag,
    };
    for (const [route, counts] of routes) addRoute(report, route, counts);
    return report;
  }
}

function addRoute(report: MetricsReport, route: string, counts: RouteCounts): void {
  const requests: RequestSeries[] = report.requests;
  for (let i = 0; i < counts.requests.length; i++) {
    const count = counts.requests[i]!;
    if (count === 0) continue;
    const method = METHOD_LABELS[Math.floor(i / CLASS_LABELS.length)]!;
    requests.push({ route, method, status: CLASS_LABELS[i % CLASS_LABELS.length]!, count });
  }
  if (counts.total > 0)
    report.requestSeconds.push(latency(route, counts.latency, counts.latencySum));
  if (counts.upstreamCount > 0)
    report.upstreamSeconds.push(latency(route, counts.upstream, counts.upstreamSum));
  for (const [kind, count] of counts.errors ?? [])
    report.upstreamErrors.push({ route, kind, count });
  if (counts.rateLimited > 0) report.rateLimited.push({ route, count: counts.rateLimited });
}

function latency(route: string, counts: Float64Array, sum: number): LatencySeries {
  return { route, counts: [...counts], sum };
}

/** Failures of the upstream exchange (errors catalog: UPSTREAM_*, NO_HEALTHY_UPSTREAM). */
function isUpstreamFailure(code: string): boolean {
  return code.startsWith('UPSTREAM_') || code === 'NO_HEALTHY_UPSTREAM';
}

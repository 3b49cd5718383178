import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricsReport } from '../shared/metrics-report.js';
import { LatencyHistogram } from './latency-histogram.js';
import { LOKI_DROP_REASONS, type LokiCounts } from './loki-shipper.js';
import type { ReloadOutcome } from './reloader.js';

/** What the node's metrics read at scrape time rather than count. */
export interface NodeMetricsSources {
  /** The config generation in force (supervisor/fleet.ts). */
  generation: () => number | undefined;
  /** Edges that exited on their own since start (supervisor/fleet.ts). */
  restarts: () => number;
  /** Edges serving the current generation. */
  serving: () => number;
  /** Whether the Redis revocation bus is connected; omitted when `redis` is not configured. */
  redisConnected?: (() => boolean) | undefined;
  /** Lines the Loki shipper shipped and dropped; omitted when `log.type` is not `loki`. */
  loki?: (() => LokiCounts) | undefined;
}

/**
 * The node's Prometheus registry (prom-client): the edges' reports added up
 * (shared/metrics-report.ts), plus what only the supervisor knows (reloads, restarts,
 * revocations, generation, Redis). Names follow the Prometheus conventions: `proxyauth_` prefix,
 * `_total` counters, base units (seconds). Every label value comes from the config (route
 * prefixes, endpoint paths, edge slots) or from a closed set (methods, status classes, error
 * codes), so the number of series is bounded whatever clients send.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'route' | 'method' | 'status_class'>;
  readonly #requestSeconds: LatencyHistogram;
  readonly #upstreamSeconds: LatencyHistogram;
  readonly #upstreamErrors: Counter<'route' | 'kind'>;
  readonly #logins: Counter<'result'>;
  readonly #rateLimited: Counter<'route'>;
  readonly #cacheHits: Counter;
  readonly #cacheMisses: Counter;
  readonly #revocations: Counter<'op'>;
  readonly #reloads: Counter<'outcome'>;
  readonly #loopLag: Gauge<'edge'>;

  constructor(sources: NodeMetricsSources) {
    const registers = [this.registry];
    this.#requests = new Counter({
      name: 'proxyauth_requests_total',
      help: 'Requests answered, by route prefix (or gateway endpoint), method and status class.',
      labelNames: ['route', 'method', 'status_class'],
      registers,
    });
    this.#requestSeconds = new LatencyHistogram(
      this.registry,
      'proxyauth_request_duration_seconds',
      'Time from the request head to the end of the answer, by route.',
    );
    this.#upstreamSeconds = new LatencyHistogram(
      this.registry,
      'proxyauth_upstream_duration_seconds',
      "Time from sending a request upstream to the upstream's response head, by route.",
    );
    this.#upstreamErrors = new Counter({
      name: 'proxyauth_upstream_errors_total',
      help: 'Requests that failed upstream, by route and kind (the error code).',
      labelNames: ['route', 'kind'],
      registers,
    });
    this.#logins = new Counter({
      name: 'proxyauth_logins_total',
      help: 'Logins (POST /auth) by result: success, or the error code of the refusal.',
      labelNames: ['result'],
      registers,
    });
    this.#rateLimited = new Counter({
      name: 'proxyauth_rate_limited_total',
      help: 'Requests refused by a rate limit (429 RATE_LIMITED), by route or endpoint.',
      labelNames: ['route'],
      registers,
    });
    this.#cacheHits = new Counter({
      name: 'proxyauth_token_cache_hits_total',
      help: 'Bearer or cookie tokens found in the verified-token cache.',
      registers,
    });
    this.#cacheMisses = new Counter({
      name: 'proxyauth_token_cache_misses_total',
      help: 'Tokens verified by the codec because the cache did not hold them.',
      registers,
    });
    this.#revocations = new Counter({
      name: 'proxyauth_revocations_total',
      help: 'Revocation changes put in force on this node (local or from Redis), by operation.',
      labelNames: ['op'],
      registers,
    });
    this.#reloads = new Counter({
      name: 'proxyauth_reloads_total',
      help: 'Configuration reloads by outcome: unchanged, applied, rolled, invalid, failed.',
      labelNames: ['outcome'],
      registers,
    });
    this.#loopLag = new Gauge({
      name: 'proxyauth_event_loop_lag_seconds',
      help: "99th percentile of an edge's event-loop delay over its last report, by edge slot.",
      labelNames: ['edge'],
      registers,
    });
    new Counter({
      name: 'proxyauth_edge_restarts_total',
      help: 'Edges that exited on their own and were replaced, since the supervisor started.',
      registers,
      collect() {
        this.reset();
        this.inc(sources.restarts());
      },
    });
    new Gauge({
      name: 'proxyauth_config_generation',
      help: 'The configuration generation in force (1 at start, +1 per applied reload).',
      registers,
      collect() {
        this.set(sources.generation() ?? 0);
      },
    });
    new Gauge({
      name: 'proxyauth_edges_serving',
      help: 'Edges listening and serving the current configuration generation.',
      registers,
      collect() {
        this.set(sources.serving());
      },
    });
    const redis = sources.redisConnected;
    if (redis !== undefined) {
      new Gauge({
        name: 'proxyauth_redis_connected',
        help: '1 while the Redis revocation bus is connected, else 0.',
        registers,
        collect() {
          this.set(redis() ? 1 : 0);
        },
      });
    }
    const loki = sources.loki;
    if (loki !== undefined) lokiCounters(registers, loki);
    for (const outcome of ['unchanged', 'applied', 'rolled', 'invalid', 'failed'] as const)
      this.#reloads.inc({ outcome }, 0);
  }

  /** Adds one edge's report; `slot` names the edge in the event-loop gauge. */
  add(slot: number, report: MetricsReport): void {
    for (const r of report.requests)
      this.#requests.inc({ route: r.route, method: r.method, status_class: r.status }, r.count);
    for (const s of report.requestSeconds) this.#requestSeconds.add(s);
    for (const s of report.upstreamSeconds) this.#upstreamSeconds.add(s);
    for (const e of report.upstreamErrors)
      this.#upstreamErrors.inc({ route: e.route, kind: e.kind }, e.count);
    for (const l of report.logins) this.#logins.inc({ result: l.result }, l.count);
    for (const r of report.rateLimited) this.#rateLimited.inc({ route: r.route }, r.count);
    this.#cacheHits.inc(report.tokenCache.hits);
    this.#cacheMisses.inc(report.tokenCache.misses);
    this.#loopLag.set({ edge: String(slot) }, report.loopLagSeconds);
  }

  /** A revocation change put in force on every edge. */
  revocation(op: string): void {
    this.#revocations.inc({ op });
  }

  /** A reload pass ended. */
  reload(outcome: ReloadOutcome): void {
    this.#reloads.inc({ outcome });
  }

  /** The text exposition of every metric (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * `proxyauth_log_lines_shipped_total{sink="loki"}` and
 * `proxyauth_log_lines_dropped_total{sink="loki",reason}`, read from the shipper at scrape time
 * (every reason shown, from 0). `sink` leaves room for other remote sinks.
 */
function lokiCounters(registers: Registry[], counts: () => LokiCounts): void {
  new Counter({
    name: 'proxyauth_log_lines_shipped_total',
    help: 'Log lines a remote sink accepted, by sink.',
    labelNames: ['sink'],
    registers,
    collect() {
      this.reset();
      this.inc({ sink: 'loki' }, counts().shipped);
    },
  });
  new Counter({
    name: 'proxyauth_log_lines_dropped_total',
    help: 'Log lines that never reached a remote sink (they are on stdout), by sink and reason.',
    labelNames: ['sink', 'reason'],
    registers,
    collect() {
      this.reset();
      const { dropped } = counts();
      for (const reason of LOKI_DROP_REASONS) this.inc({ sink: 'loki', reason }, dropped[reason]);
    },
  });
}

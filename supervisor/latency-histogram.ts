import type { Metric, Registry } from 'prom-client';
import { LATENCY_BUCKETS, type LatencySeries } from '../shared/metrics-report.js';

interface Series {
  /** Per bucket, not cumulative (LATENCY_BUCKETS + overflow). */
  readonly counts: number[];
  sum: number;
}

/**
 * A Prometheus histogram fed with bucket counts already made by the edges (prom-client's own
 * Histogram only takes single observations): one series per route, rendered by prom-client's
 * registry in the text format (`_bucket{le}` cumulative, `_sum`, `_count`).
 */
export class LatencyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #series = new Map<string, Series>();

  constructor(registry: Registry, name: string, help: string) {
    this.name = name;
    this.help = help;
    registry.registerMetric(this as unknown as Metric);
  }

  /** Adds one edge's counts for a route. */
  add(report: LatencySeries): void {
    let series = this.#series.get(report.route);
    if (series === undefined) {
      series = { counts: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), sum: 0 };
      this.#series.set(report.route, series);
    }
    for (let i = 0; i < series.counts.length; i++) series.counts[i]! += report.counts[i] ?? 0;
    series.sum += report.sum;
  }

  /** prom-client's registry reads this at every scrape. */
  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { metricName: string; labels: Record<string, string | number>; value: number }[];
  } {
    const values = [];
    for (const [route, { counts, sum }] of this.#series) {
      let cumulative = 0;
      for (let i = 0; i < counts.length; i++) {
        cumulative += counts[i]!;
        const le = i < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[i]! : '+Inf';
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { le, route },
          value: cumulative,
        });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { route }, value: sum });
      values.push({ metricName: `${this.name}_count`, labels: { route }, value: cumulative });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }
}

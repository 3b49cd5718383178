import type { EdgeHeap } from './edge-heap.js';

/** One soak interval: a back-to-back load run, then the edges' memory right after it. */
export interface SoakSample {
  /** Seconds since the soak's first interval started (the warm-up excluded). */
  readonly elapsedSec: number;
  /** The run's length, s: `--soak-interval`, or less for the last run of a soak it does not divide. */
  readonly durationSec: number;
  /** Wall-clock start and end of the load run (ISO 8601): the span its access lines are taken from. */
  readonly startedAt: string;
  readonly endedAt: string;
  /** Resident memory of each edge (children of the supervisor), in KiB, keyed by pid. */
  readonly edgesRssKiB: Readonly<Record<string, number>>;
  /** The JS heap of each edge's main thread, keyed by pid; an edge whose report was late is absent. */
  readonly edgesHeap: Readonly<Record<string, EdgeHeap>>;
  readonly requestsPerSec: number;
  /** The load tool's p99: from the request sent to the answer read, as the client saw it. */
  readonly latencyP99Ms: number;
  /** Requests the load tool counted in the run. */
  readonly requests?: number | undefined;
  /**
   * The gateway's own latency over the run: the access lines (`ms`: bench/README.md) whose `ts`
   * falls between `startedAt` and `endedAt`, read from the gateway's log after the soak;
   * absent when the log is missing or has no such line.
   */
  readonly gatewayRequests?: number | undefined;
  readonly gatewayP50Ms?: number | undefined;
  readonly gatewayP99Ms?: number | undefined;
  /** The gateway's CPU (supervisor and edges, every thread) per request of the run, µs. */
  readonly cpuUsPerRequest?: number | undefined;
  /** The upstream's CPU per request of the run, µs. */
  readonly upstreamCpuUsPerRequest?: number | undefined;
  /** The machine's idle share (idle + iowait, all cores) during the run, percent. */
  readonly machineIdlePercent?: number | undefined;
}

/** Start (first interval, after the warm-up) against end (last interval). */
export interface SoakSummary {
  readonly startRssKiB: number;
  readonly endRssKiB: number;
  /** (end - start) / start, in percent, of the edges' summed RSS. */
  readonly rssGrowthPercent: number;
  /** The edges' summed JS heap, used and total bytes, first and last interval. */
  readonly startHeap: HeapTotals;
  readonly endHeap: HeapTotals;
  readonly heapUsedGrowthPercent: number;
  readonly heapTotalGrowthPercent: number;
  /**
   * Least-squares slopes over every interval, per minute: one interval's heap used swings by
   * several MiB with the GC's timing (measured: 41-63 MiB over an 8-minute soak of a flat heap),
   * so the trend says more than start against end. Every trend is undefined with fewer than two
   * intervals.
   */
  readonly rssTrendKiBPerMin: number | undefined;
  readonly heapUsedTrendBytesPerMin: number | undefined;
  readonly heapTotalTrendBytesPerMin: number | undefined;
  /** True when some interval lacks an edge's heap (its report did not come in time). */
  readonly heapMissing: boolean;
  readonly startP99Ms: number;
  readonly endP99Ms: number;
  readonly p99GrowthPercent: number;
  /** Least-squares slope of p99 over every interval, ms per minute. */
  readonly p99TrendMsPerMin: number | undefined;
  /**
   * The gateway's own p99 (access log), first and last interval that has it, and its trend over
   * the intervals that have it; undefined where none has it (no log, no access line).
   */
  readonly gatewayStartP99Ms: number | undefined;
  readonly gatewayEndP99Ms: number | undefined;
  readonly gatewayP99TrendMsPerMin: number | undefined;
  /**
   * The gateway's CPU µs per request, first and last interval, and its trend (µs per minute)
   * over the intervals that have it; undefined where no interval has it (not Linux).
   */
  readonly startCpuUsPerRequest: number | undefined;
  readonly endCpuUsPerRequest: number | undefined;
  readonly cpuTrendUsPerMin: number | undefined;
  /** The same for the upstream's CPU per request. */
  readonly upstreamCpuTrendUsPerMin: number | undefined;
  /** True when the set of edge pids changed (an edge restarted: its memory started over). */
  readonly edgesChanged: boolean;
}

/** What `--soak` adds to the report. */
export interface SoakReport {
  readonly scenario: string;
  readonly minutes: number;
  readonly intervalSec: number;
  readonly samples: readonly SoakSample[];
  readonly summary: SoakSummary | undefined;
  /** Why the soak stopped before its end (a run's wrong answers); absent when it ran to the end. */
  readonly stoppedBy?: string | undefined;
}

/** Sum of the edges' RSS in one sample, KiB. */
export function totalRssKiB(sample: SoakSample): number {
  return Object.values(sample.edgesRssKiB).reduce((a, b) => a + b, 0);
}

/** The edges' summed heap figures in one sample. */
export interface HeapTotals {
  readonly usedBytes: number;
  readonly totalBytes: number;
  readonly externalBytes: number;
}

/** Sum of the edges' heap figures in one sample. */
export function totalHeap(sample: SoakSample): HeapTotals {
  const heaps = Object.values(sample.edgesHeap);
  const sum = (key: keyof EdgeHeap) => heaps.reduce((a, h) => a + h[key], 0);
  return {
    usedBytes: sum('usedBytes'),
    totalBytes: sum('totalBytes'),
    externalBytes: sum('externalBytes'),
  };
}

/** Growth from `start` to `end` in percent; 0 when start is 0. */
export function growthPercent(start: number, end: number): number {
  return start === 0 ? 0 : ((end - start) / start) * 100;
}

/**
 * Least-squares slope of `value` over `sec`, per minute; undefined with fewer than two points
 * (or all at one time): one point has no trend, and `+0.00/min` would claim a flat one.
 */
export function slopePerMinute(
  points: readonly { sec: number; value: number }[],
): number | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  const meanX = points.reduce((a, p) => a + p.sec, 0) / n;
  const meanY = points.reduce((a, p) => a + p.value, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const { sec, value } of points) {
    sxy += (sec - meanX) * (value - meanY);
    sxx += (sec - meanX) ** 2;
  }
  return sxx === 0 ? undefined : (sxy / sxx) * 60;
}

/** Start vs end of a soak; undefined without a sample. */
export function summarizeSoak(samples: readonly SoakSample[]): SoakSummary | undefined {
  const first = samples[0];
  const last = samples.at(-1);
  if (first === undefined || last === undefined) return undefined;
  const [startRssKiB, endRssKiB] = [totalRssKiB(first), totalRssKiB(last)];
  const [startHeap, endHeap] = [totalHeap(first), totalHeap(last)];
  const pids = (s: SoakSample) => Object.keys(s.edgesRssKiB).sort().join(',');
  const heapPids = (s: SoakSample) => Object.keys(s.edgesHeap).sort().join(',');
  return {
    startRssKiB,
    endRssKiB,
    rssGrowthPercent: growthPercent(startRssKiB, endRssKiB),
    startHeap,
    endHeap,
    heapUsedGrowthPercent: growthPercent(startHeap.usedBytes, endHeap.usedBytes),
    heapTotalGrowthPercent: growthPercent(startHeap.totalBytes, endHeap.totalBytes),
    rssTrendKiBPerMin: trend(samples, totalRssKiB),
    heapUsedTrendBytesPerMin: trend(samples, (s) => totalHeap(s).usedBytes),
    heapTotalTrendBytesPerMin: trend(samples, (s) => totalHeap(s).totalBytes),
    heapMissing: samples.some((s) => heapPids(s) !== pids(s)),
    startP99Ms: first.latencyP99Ms,
    endP99Ms: last.latencyP99Ms,
    p99GrowthPercent: growthPercent(first.latencyP99Ms, last.latencyP99Ms),
    p99TrendMsPerMin: trend(samples, (s) => s.latencyP99Ms),
    gatewayStartP99Ms: samples.find((s) => s.gatewayP99Ms !== undefined)?.gatewayP99Ms,
    gatewayEndP99Ms: samples.findLast((s) => s.gatewayP99Ms !== undefined)?.gatewayP99Ms,
    gatewayP99TrendMsPerMin: optionalTrend(samples, (s) => s.gatewayP99Ms),
    startCpuUsPerRequest: first.cpuUsPerRequest,
    endCpuUsPerRequest: last.cpuUsPerRequest,
    cpuTrendUsPerMin: optionalTrend(samples, (s) => s.cpuUsPerRequest),
    upstreamCpuTrendUsPerMin: optionalTrend(samples, (s) => s.upstreamCpuUsPerRequest),
    edgesChanged: samples.some((s) => pids(s) !== pids(first)),
  };
}

function trend(
  samples: readonly SoakSample[],
  value: (s: SoakSample) => number,
): number | undefined {
  return slopePerMinute(samples.map((s) => ({ sec: s.elapsedSec, value: value(s) })));
}

/** The trend over the samples that have the figure; undefined when fewer than two have it. */
function optionalTrend(
  samples: readonly SoakSample[],
  value: (s: SoakSample) => number | undefined,
): number | undefined {
  const points: { sec: number; value: number }[] = [];
  for (const s of samples) {
    const v = value(s);
    if (v !== undefined) points.push({ sec: s.elapsedSec, value: v });
  }
  return slopePerMinute(points);
}

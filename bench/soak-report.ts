import type { EdgeHeap } from './edge-heap.js';

/** One soak interval: a back-to-back load run, then the edges' memory right after it. */
export interface SoakSample {
  /** Seconds since the soak's first interval started (the warm-up excluded). */
  readonly elapsedSec: number;
  /** Resident memory of each edge (children of the supervisor), in KiB, keyed by pid. */
  readonly edgesRssKiB: Readonly<Record<string, number>>;
  /** The JS heap of each edge's main thread, keyed by pid; an edge whose report was late is absent. */
  readonly edgesHeap: Readonly<Record<string, EdgeHeap>>;
  readonly requestsPerSec: number;
  readonly latencyP99Ms: number;
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
   * so the trend says more than start against end.
   */
  readonly rssTrendKiBPerMin: number;
  readonly heapUsedTrendBytesPerMin: number;
  readonly heapTotalTrendBytesPerMin: number;
  /** True when some interval lacks an edge's heap (its report did not come in time). */
  readonly heapMissing: boolean;
  readonly startP99Ms: number;
  readonly endP99Ms: number;
  readonly p99GrowthPercent: number;
  /** Least-squares slope of p99 over every interval, ms per minute. */
  readonly p99TrendMsPerMin: number;
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

/** Least-squares slope of `value` over `sec`, per minute; 0 with fewer than two points. */
export function slopePerMinute(points: readonly { sec: number; value: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanX = points.reduce((a, p) => a + p.sec, 0) / n;
  const meanY = points.reduce((a, p) => a + p.value, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const { sec, value } of points) {
    sxy += (sec - meanX) * (value - meanY);
    sxx += (sec - meanX) ** 2;
  }
  return sxx === 0 ? 0 : (sxy / sxx) * 60;
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
    startCpuUsPerRequest: first.cpuUsPerRequest,
    endCpuUsPerRequest: last.cpuUsPerRequest,
    cpuTrendUsPerMin: optionalTrend(samples, (s) => s.cpuUsPerRequest),
    upstreamCpuTrendUsPerMin: optionalTrend(samples, (s) => s.upstreamCpuUsPerRequest),
    edgesChanged: samples.some((s) => pids(s) !== pids(first)),
  };
}

function trend(samples: readonly SoakSample[], value: (s: SoakSample) => number): number {
  return slopePerMinute(samples.map((s) => ({ sec: s.elapsedSec, value: value(s) })));
}

/** The trend over the samples that have the figure; undefined when none has it. */
function optionalTrend(
  samples: readonly SoakSample[],
  value: (s: SoakSample) => number | undefined,
): number | undefined {
  const points: { sec: number; value: number }[] = [];
  for (const s of samples) {
    const v = value(s);
    if (v !== undefined) points.push({ sec: s.elapsedSec, value: v });
  }
  return points.length === 0 ? undefined : slopePerMinute(points);
}

/** The soak's lines in the human report: one row per interval, then start vs end. */
export function renderSoak(soak: SoakReport): string[] {
  const rows = soak.samples.map((s) => {
    const heap = totalHeap(s);
    return `| ${s.elapsedSec.toFixed(0)} | ${Object.keys(s.edgesRssKiB).length} | ${mib(totalRssKiB(s))} | ${mibOfBytes(heap.usedBytes)} | ${mibOfBytes(heap.totalBytes)} | ${mibOfBytes(heap.externalBytes)} | ${Math.round(s.requestsPerSec).toLocaleString('en-US')} | ${s.latencyP99Ms.toFixed(2)} | ${fixed(s.cpuUsPerRequest, 1)} | ${fixed(s.upstreamCpuUsPerRequest, 1)} | ${fixed(s.machineIdlePercent, 1)} |`;
  });
  const sum = soak.summary;
  const verdict =
    sum === undefined
      ? ['no interval completed']
      : [
          `start (first interval after warm-up) vs end: edges' RSS ${mib(sum.startRssKiB)} → ${mib(sum.endRssKiB)} MiB (${signed(sum.rssGrowthPercent)}), ` +
            `JS heap used ${mibOfBytes(sum.startHeap.usedBytes)} → ${mibOfBytes(sum.endHeap.usedBytes)} MiB (${signed(sum.heapUsedGrowthPercent)}), ` +
            `heap total ${mibOfBytes(sum.startHeap.totalBytes)} → ${mibOfBytes(sum.endHeap.totalBytes)} MiB (${signed(sum.heapTotalGrowthPercent)}), ` +
            `p99 ${sum.startP99Ms.toFixed(2)} → ${sum.endP99Ms.toFixed(2)} ms (${signed(sum.p99GrowthPercent)})`,
          `trend over every interval (least squares): edges' RSS ${signedMiB(sum.rssTrendKiBPerMin * 1024)}/min, ` +
            `JS heap used ${signedMiB(sum.heapUsedTrendBytesPerMin)}/min, heap total ${signedMiB(sum.heapTotalTrendBytesPerMin)}/min, ` +
            `p99 ${signedNumber(sum.p99TrendMsPerMin, 2)} ms/min`,
          `gateway CPU per request: ${fixed(sum.startCpuUsPerRequest, 1)} → ${fixed(sum.endCpuUsPerRequest, 1)} µs, trend ${optionalSigned(sum.cpuTrendUsPerMin)} µs/min; ` +
            `upstream's trend ${optionalSigned(sum.upstreamCpuTrendUsPerMin)} µs/min (a p99 that rises while the CPU per request stays flat is not more work per request)`,
          ...(sum.edgesChanged
            ? ['an edge restarted during the soak: its memory started over']
            : []),
          ...(sum.heapMissing
            ? [
                "an edge's heap report did not come in time in some interval: its heap is left out there",
              ]
            : []),
        ];
  const done = soak.samples.at(-1)?.elapsedSec ?? 0;
  const stop =
    soak.stoppedBy === undefined
      ? []
      : [`the soak stopped after ${done} of ${soak.minutes * 60} s: ${soak.stoppedBy}`];
  return [
    `soak: ${soak.scenario} for ${soak.minutes} min, back-to-back runs of ${soak.intervalSec} s, edges' RSS (VmRSS) and JS heap (main thread, not collected first) after each:`,
    '',
    '| s | edges | edges RSS MiB | heap used MiB | heap total MiB | external MiB | req/s | p99 ms | gateway CPU µs/req | upstream CPU µs/req | machine idle % |',
    '| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
    ...rows,
    '',
    ...stop,
    ...verdict,
  ];
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function mibOfBytes(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function signedMiB(bytes: number): string {
  return `${bytes >= 0 ? '+' : ''}${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined ? 'n/a' : value.toFixed(digits);
}

function signedNumber(value: number, digits: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}

function optionalSigned(value: number | undefined): string {
  return value === undefined ? 'n/a' : signedNumber(value, 2);
}

function signed(percent: number): string {
  return `${percent >= 0 ? '+' : ''}${percent.toFixed(1)}%`;
}

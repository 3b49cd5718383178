import {
  type SoakReport,
  type SoakSample,
  type SoakSummary,
  totalHeap,
  totalRssKiB,
} from './soak-report.js';

const HEADER = [
  '| s | edges | edges RSS MiB | heap used MiB | heap total MiB | external MiB | req/s | p99 ms | gateway p50 ms | gateway p99 ms | gateway CPU µs/req | upstream CPU µs/req | machine idle % |',
  '| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
];

/** The soak's lines in the human report: one row per interval, then start vs end. */
export function renderSoak(soak: SoakReport): string[] {
  const done = soak.samples.at(-1)?.elapsedSec ?? 0;
  const stop =
    soak.stoppedBy === undefined
      ? []
      : [`the soak stopped after ${done} of ${soak.minutes * 60} s: ${soak.stoppedBy}`];
  const sum = soak.summary;
  return [
    `soak: ${soak.scenario} for ${soak.minutes} min, back-to-back load runs (${soakRunsLabel(soak)}), edges' RSS (VmRSS) and JS heap (main thread, not collected first) after each; ` +
      "p99 is the load tool's, gateway p50/p99 the gateway's own (its access log's `ms`, read after the soak):",
    '',
    ...HEADER,
    ...soak.samples.map(row),
    '',
    ...stop,
    ...(sum === undefined ? ['no interval completed'] : verdict(soak.samples, sum)),
  ];
}

/**
 * The runs as they ran: `4 runs of 30 s`, `2 runs of 25 s and 1 of 10 s` (the last run of a
 * soak the interval does not divide is shorter); `runs of N s` (the option) when none ran.
 */
export function soakRunsLabel(soak: SoakReport): string {
  const lengths = soak.samples.map((s) => s.durationSec);
  const first = lengths[0];
  const last = lengths.at(-1);
  if (first === undefined || last === undefined) return `runs of ${soak.intervalSec} s`;
  const n = lengths.length;
  const runs = (count: number) => (count === 1 ? '1 run' : `${count} runs`);
  if (lengths.slice(0, -1).some((l) => l !== first)) {
    return `${runs(n)} of ${Math.min(...lengths)}-${Math.max(...lengths)} s`;
  }
  return last === first
    ? `${runs(n)} of ${first} s`
    : `${runs(n - 1)} of ${first} s and 1 of ${last} s`;
}

function row(s: SoakSample): string {
  const heap = totalHeap(s);
  return `| ${s.elapsedSec.toFixed(0)} | ${Object.keys(s.edgesRssKiB).length} | ${mib(totalRssKiB(s))} | ${mibOfBytes(heap.usedBytes)} | ${mibOfBytes(heap.totalBytes)} | ${mibOfBytes(heap.externalBytes)} | ${Math.round(s.requestsPerSec).toLocaleString('en-US')} | ${s.latencyP99Ms.toFixed(2)} | ${fixed(s.gatewayP50Ms, 2)} | ${fixed(s.gatewayP99Ms, 2)} | ${fixed(s.cpuUsPerRequest, 1)} | ${fixed(s.upstreamCpuUsPerRequest, 1)} | ${fixed(s.machineIdlePercent, 1)} |`;
}

function verdict(samples: readonly SoakSample[], sum: SoakSummary): string[] {
  return [
    `start (first interval after warm-up) vs end: edges' RSS ${mib(sum.startRssKiB)} → ${mib(sum.endRssKiB)} MiB (${percent(sum.rssGrowthPercent)}), ` +
      `JS heap used ${mibOfBytes(sum.startHeap.usedBytes)} → ${mibOfBytes(sum.endHeap.usedBytes)} MiB (${percent(sum.heapUsedGrowthPercent)}), ` +
      `heap total ${mibOfBytes(sum.startHeap.totalBytes)} → ${mibOfBytes(sum.endHeap.totalBytes)} MiB (${percent(sum.heapTotalGrowthPercent)}), ` +
      `p99 ${sum.startP99Ms.toFixed(2)} → ${sum.endP99Ms.toFixed(2)} ms (${percent(sum.p99GrowthPercent)})`,
    trendLine(sum),
    `gateway CPU per request: ${fixed(sum.startCpuUsPerRequest, 1)} → ${fixed(sum.endCpuUsPerRequest, 1)} µs, trend ${optionalSigned(sum.cpuTrendUsPerMin)} µs/min; ` +
      `upstream's trend ${optionalSigned(sum.upstreamCpuTrendUsPerMin)} µs/min (a p99 that rises while the CPU per request stays flat is not more work per request)`,
    ...gatewayLatencyLines(samples, sum),
    ...(sum.edgesChanged ? ['an edge restarted during the soak: its memory started over'] : []),
    ...(sum.heapMissing
      ? ["an edge's heap report did not come in time in some interval: its heap is left out there"]
      : []),
  ];
}

function trendLine(sum: SoakSummary): string {
  const rss = sum.rssTrendKiBPerMin;
  const used = sum.heapUsedTrendBytesPerMin;
  const total = sum.heapTotalTrendBytesPerMin;
  const p99 = sum.p99TrendMsPerMin;
  if (rss === undefined || used === undefined || total === undefined || p99 === undefined) {
    return 'trend over every interval: n/a (a trend needs two intervals or more)';
  }
  return (
    `trend over every interval (least squares): edges' RSS ${signedMiB(rss * 1024)}/min, ` +
    `JS heap used ${signedMiB(used)}/min, heap total ${signedMiB(total)}/min, ` +
    `p99 ${signedNumber(p99, 2)} ms/min`
  );
}

/**
 * The gateway's own p99 beside the load tool's: a p99 that rises for the client while the
 * handler's own stays flat is queued outside the handler (kernel, scheduling, the client).
 */
function gatewayLatencyLines(samples: readonly SoakSample[], sum: SoakSummary): string[] {
  const start = sum.gatewayStartP99Ms;
  const end = sum.gatewayEndP99Ms;
  if (start === undefined || end === undefined) {
    return [
      "gateway's own latency: n/a (no access line of the gateway's log fell in an interval: log missing, or not in JSON)",
    ];
  }
  const lines = samples.reduce((a, s) => a + (s.gatewayRequests ?? 0), 0);
  const requests = samples.reduce((a, s) => a + (s.requests ?? 0), 0);
  const client = sum.p99TrendMsPerMin;
  const own = sum.gatewayP99TrendMsPerMin;
  return [
    `gateway's own p99 (access log): ${start.toFixed(2)} → ${end.toFixed(2)} ms, trend ${optionalSigned(own)} ms/min, ` +
      `against the load tool's p99 trend ${optionalSigned(client)} ms/min ` +
      `(${lines.toLocaleString('en-US')} access lines in the intervals; the load tool counted ${requests.toLocaleString('en-US')} requests)`,
    ...(client !== undefined && own !== undefined && client > 2 * own && clearRise(samples, client)
      ? [
          "the load tool's p99 rises more than twice as fast as the gateway's own: the rise is outside the gateway's handler (kernel queues, scheduling)",
        ]
      : []),
  ];
}

/** Fewest intervals whose p99 trend the report reads as a rise: a 2- or 3-point fit is noise. */
const MIN_RISE_INTERVALS = 4;
/** A rise is the fitted p99 growing over the soak by this share of its first interval, and 1 ms. */
const MIN_RISE_SHARE = 0.2;
const MIN_RISE_MS = 1;

/**
 * Whether the load tool's p99 trend (`slope`, ms/min) is a rise worth naming: fitted over enough
 * intervals, and adding more over the soak's length than run-to-run noise (this 2-core machine's
 * p99 moves by ~10% between runs of the same build).
 */
function clearRise(samples: readonly SoakSample[], slope: number): boolean {
  if (samples.length < MIN_RISE_INTERVALS || !(slope > 0)) return false;
  const minutes = (samples[samples.length - 1]!.elapsedSec - samples[0]!.elapsedSec) / 60;
  const first = samples[0]!.latencyP99Ms;
  return slope * minutes >= Math.max(MIN_RISE_MS, MIN_RISE_SHARE * first);
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function mibOfBytes(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
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

function signedMiB(bytes: number): string {
  return `${signedNumber(bytes / 1024 / 1024, 2)} MiB`;
}

function percent(value: number): string {
  return `${signedNumber(value, 1)}%`;
}

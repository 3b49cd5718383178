import { setTimeout as delay } from 'node:timers/promises';
import { type SpanLatency, spanLatencies } from './access-log-latency.js';
import { BenchError } from './bench-error.js';
import { type EdgeHeap, edgesHeap } from './edge-heap.js';
import { loadRequestFor } from './load-request.js';
import type { LoadResult, LoadTool } from './load-result.js';
import type { BenchOptions } from './options.js';
import { type MachineTicks, machineTicks, treeCpuSeconds } from './process-cpu.js';
import { childPids, rssKiB } from './process-memory.js';
import type { Scenario } from './scenarios.js';
import type { Target } from './service.js';
import { type SoakReport, type SoakSample, summarizeSoak } from './soak-report.js';
import { checkLoadResult } from './verify.js';

/** What a soak needs: the checked scenario, where its load goes, and the load tool. */
export interface SoakPlan {
  readonly scenario: Scenario;
  /** `pid` is the gateway's supervisor: its children are the edges. */
  readonly target: Target;
  readonly tool: LoadTool;
  readonly options: BenchOptions;
  readonly signal: AbortSignal;
  /** Where the gateway, started with `heapReportArgs(heapReportDir)`, writes its edges' reports. */
  readonly heapReportDir: string;
  /** The upstream's process, whose CPU per request each interval reports beside the gateway's. */
  readonly upstreamPid?: number | undefined;
  /** The gateway's stdout (its access log), read once after the soak for its own latency. */
  readonly gatewayLog?: string | undefined;
}

/** Resident memory of each edge (child of `supervisor`), KiB by pid. */
export function edgesRss(supervisor: number): Record<string, number> {
  const rss: Record<string, number> = {};
  for (const pid of childPids(supervisor)) {
    const kib = rssKiB(pid);
    if (kib !== undefined) rss[String(pid)] = kib;
  }
  return rss;
}

/**
 * Steady load for `--soak` minutes: Debian's wrk has no fixed rate (`-R` is wrk2's), so the
 * load is back-to-back runs of `--soak-interval` seconds at the usual connections, after the
 * usual warm-up; after each run, the edges' RSS (VmRSS), their JS heap (from a diagnostic report
 * each writes on a signal: bench/edge-heap.ts) and the run's p99 are sampled, with what the run
 * cost: CPU µs per request of the gateway (supervisor and edges) and of the upstream, and the
 * machine's idle share (a p99 that rises while the gateway's CPU per request stays flat is not
 * the gateway doing more work per request). A run with a wrong answer stops the soak: memory
 * under failing requests says nothing; the report keeps the intervals before it and says why
 * (`stoppedBy`), and the runner exits 1. Each run's wall-clock start and end are kept, and once
 * the load is over the gateway's access log gives its own p50 and p99 over each run
 * (`withGatewayLatency`): parsing it during the soak would take CPU from what is measured.
 */
export async function runSoak(plan: SoakPlan): Promise<SoakReport> {
  const { options, target, tool, signal, scenario } = plan;
  const minutes = options.soakMinutes ?? 0;
  const supervisor = target.pid;
  if (supervisor === undefined) throw new BenchError('BENCH_SOAK', 'the gateway has no pid');
  const request = (durationSec: number) => loadRequestFor(scenario, target, options, durationSec);
  const samples: SoakSample[] = [];
  if (options.warmupSec > 0) {
    const problem = wrongAnswers(plan, await tool.run(request(options.warmupSec), signal));
    if (problem) return stopped(plan, samples, `warm-up: ${problem}`);
  }
  const totalSec = minutes * 60;
  for (let elapsed = 0; elapsed < totalSec; ) {
    const durationSec = Math.min(options.soakIntervalSec, totalSec - elapsed);
    const before = costSnapshot(supervisor, plan.upstreamPid);
    const startedAt = new Date();
    const result = await tool.run(request(durationSec), signal);
    const endedAt = new Date();
    const problem = wrongAnswers(plan, result);
    if (problem) return stopped(plan, samples, problem);
    const cost = runCost(before, costSnapshot(supervisor, plan.upstreamPid), result.requests);
    elapsed += durationSec;
    const edgesRssKiB = edgesRss(supervisor);
    const sample: SoakSample = {
      elapsedSec: elapsed,
      durationSec,
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      edgesRssKiB,
      edgesHeap: await edgesHeap(Object.keys(edgesRssKiB).map(Number), plan.heapReportDir),
      requestsPerSec: result.requestsPerSec,
      latencyP99Ms: result.latencyP99Ms,
      requests: result.requests,
      ...cost,
    };
    samples.push(sample);
    console.log(
      `[soak ${elapsed}/${totalSec} s] ${scenario.name}: ${Math.round(result.requestsPerSec)} req/s, ` +
        `p99 ${result.latencyP99Ms} ms, ${costLine(sample)}, ${edgesMemoryLine(sample)}`,
    );
  }
  return soakReport(plan, samples);
}

async function soakReport(
  plan: SoakPlan,
  measured: SoakSample[],
  stoppedBy?: string,
): Promise<SoakReport> {
  const samples = await withGatewayLatency(plan.gatewayLog, measured);
  return {
    scenario: plan.scenario.name,
    minutes: plan.options.soakMinutes ?? 0,
    intervalSec: plan.options.soakIntervalSec,
    samples,
    summary: summarizeSoak(samples),
    ...(stoppedBy === undefined ? {} : { stoppedBy }),
  };
}

function stopped(plan: SoakPlan, samples: SoakSample[], why: string): Promise<SoakReport> {
  console.error(
    `error: soak stopped: ${why}; the report keeps the ${samples.length} intervals before it`,
  );
  return soakReport(plan, samples, why);
}

/** Longer than the access log's flush period (50 ms, shared/access-log.ts): its last lines are out. */
const LOG_FLUSH_WAIT_MS = 200;

/**
 * The samples with the gateway's own latency over each run, from its log (`logPath`) read once;
 * a run without an access line gets none (`n/a`, never 0), and without a log none does.
 */
export async function withGatewayLatency(
  logPath: string | undefined,
  samples: readonly SoakSample[],
): Promise<SoakSample[]> {
  if (logPath === undefined || samples.length === 0) return [...samples];
  await delay(LOG_FLUSH_WAIT_MS);
  const spans = samples.map((s) => ({
    startMs: Date.parse(s.startedAt),
    endMs: Date.parse(s.endedAt),
  }));
  let latencies: (SpanLatency | undefined)[] | undefined;
  try {
    latencies = await spanLatencies(logPath, spans);
  } catch (err) {
    // The soak's figures stand without the log: a log that cannot be read costs its columns only.
    console.error(`notice: the gateway's log ${logPath} could not be read: ${String(err)}`);
  }
  if (latencies === undefined) console.error(`notice: no gateway latency from ${logPath}`);
  return samples.map((s, i) => ({ ...s, ...gatewayFields(latencies?.[i]) }));
}

function gatewayFields(
  latency: SpanLatency | undefined,
): Pick<SoakSample, 'gatewayRequests' | 'gatewayP50Ms' | 'gatewayP99Ms'> {
  return latency === undefined
    ? {}
    : {
        gatewayRequests: latency.requests,
        gatewayP50Ms: latency.p50Ms,
        gatewayP99Ms: latency.p99Ms,
      };
}

interface CostSnapshot {
  gatewaySec: number | undefined;
  upstreamSec: number | undefined;
  machine: MachineTicks | undefined;
}

function costSnapshot(supervisor: number, upstream: number | undefined): CostSnapshot {
  return {
    gatewaySec: treeCpuSeconds(supervisor),
    upstreamSec: upstream === undefined ? undefined : treeCpuSeconds(upstream),
    machine: machineTicks(),
  };
}

/** What one run cost, from the snapshots around it; a figure that cannot be had is undefined. */
export function runCost(
  before: CostSnapshot,
  after: CostSnapshot,
  requests: number,
): Pick<SoakSample, 'cpuUsPerRequest' | 'upstreamCpuUsPerRequest' | 'machineIdlePercent'> {
  const perRequest = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || requests <= 0 ? undefined : ((b - a) * 1e6) / requests;
  const m0 = before.machine;
  const m1 = after.machine;
  const ticks = m0 && m1 ? m1.total - m0.total : 0;
  return {
    cpuUsPerRequest: perRequest(before.gatewaySec, after.gatewaySec),
    upstreamCpuUsPerRequest: perRequest(before.upstreamSec, after.upstreamSec),
    machineIdlePercent: m0 && m1 && ticks > 0 ? ((m1.idle - m0.idle) / ticks) * 100 : undefined,
  };
}

/** `CPU 61 µs/req (upstream 29), machine idle 3%`: a figure that could not be had is `?`. */
export function costLine(sample: SoakSample): string {
  const n = (v: number | undefined) => (v === undefined ? '?' : v.toFixed(0));
  return `CPU ${n(sample.cpuUsPerRequest)} µs/req (upstream ${n(sample.upstreamCpuUsPerRequest)}), machine idle ${n(sample.machineIdlePercent)}%`;
}

/** Each edge's memory in one sample: `pid RSS / heap used / heap total MiB`. */
export function edgesMemoryLine(sample: SoakSample): string {
  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const heap = (h: EdgeHeap | undefined) =>
    h === undefined ? 'heap ?' : `heap ${mib(h.usedBytes)} used / ${mib(h.totalBytes)} total`;
  const edges = Object.entries(sample.edgesRssKiB).map(
    ([pid, kib]) => `${pid}: RSS ${mib(kib * 1024)}, ${heap(sample.edgesHeap[pid])}`,
  );
  return `edges (MiB) ${edges.join('; ')}`;
}

function wrongAnswers(plan: SoakPlan, result: LoadResult): string | undefined {
  const problem = checkLoadResult(plan.scenario, result);
  return problem === undefined ? undefined : `${plan.scenario.name}: ${problem}`;
}

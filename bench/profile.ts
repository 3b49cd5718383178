// `--profile DIR`: one gateway scenario under `node --cpu-prof`, one warm-up and one timed run
// (every thread's CPU sampled at its start and end), a clean stop (V8 writes the profiles at
// exit), then a summary of the edges', their worker threads' and the supervisor's profiles.

import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BenchError } from './bench-error.js';
import type { CleanupStack } from './cleanup-stack.js';
import { startGateway } from './gateway.js';
import { loadRequestFor } from './load-request.js';
import type { LoadResult, LoadTool } from './load-result.js';
import { describeExit } from './managed-process.js';
import type { BenchOptions } from './options.js';
import { gatewayCliPath } from './paths.js';
import { profiledGatewayOf, profileScenarioOf } from './profile-scenario.js';
import {
  asCpuProfile,
  type CpuProfile,
  isEdgeProfile,
  type ProfileFile,
  type ProfileGroup,
  type ProfileSection,
  profileThreadOf,
  renderProfileSummary,
  summarizeProfiles,
} from './profile-summary.js';
import { BENCH_BACKEND_WEIGHTS, type Scenario } from './scenarios.js';
import type { Service } from './service.js';
import { targetFor } from './service.js';
import {
  classifyThreads,
  readThreadSnapshot,
  renderThreadCpuTable,
  type ThreadSnapshot,
  threadCpuTable,
} from './thread-cpu.js';
import { startUpstream } from './upstream.js';
import { checkLoadResult, verifyScenario } from './verify.js';

/** V8's sampling interval under `--profile`, µs (node's default, said out loud). */
export const PROFILE_INTERVAL_US = 1000;

/** Node flags of the profiled gateway; its edges inherit them (fork uses the parent's execArgv). */
export function profileNodeArgs(dir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', String(PROFILE_INTERVAL_US)];
}

/** What the profile run needs from the runner. */
export interface ProfilePlan {
  readonly options: BenchOptions & { readonly profileDir: string };
  readonly tool: LoadTool;
  readonly processes: number;
  readonly cleanup: CleanupStack;
  /** The run's temp dir, removed at cleanup: the gateway's files go below it. */
  readonly work: string;
  readonly signal: AbortSignal;
}

/** Microseconds of the monotonic clock, the clock V8 stamps its profiles with on Linux. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Runs the profile and prints its summary (also written to `<dir>/summary.md`). Throws
 * `BENCH_PROFILE` when DIR already holds profiles (they would be summed with this run's), when a
 * run answers wrongly, when the gateway does not exit cleanly (its edges' profiles may be
 * missing) or when no edge profile was written.
 */
export async function runProfile(plan: ProfilePlan): Promise<string> {
  const { options, tool, signal } = plan;
  const dir = resolve(options.profileDir);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).some((f) => f.endsWith('.cpuprofile'))) {
    throw new BenchError(
      'BENCH_PROFILE',
      `${dir} already holds .cpuprofile files: give an empty or new directory`,
    );
  }
  const scenario = profileScenarioOf(options.scenarios);
  const gateway = await startProfiledGateway(scenario, dir, plan);
  const target = targetFor(scenario, gateway);
  await verifyScenario(scenario, target);
  const run = async (label: string, durationSec: number): Promise<LoadResult> => {
    const result = await tool.run(loadRequestFor(scenario, target, options, durationSec), signal);
    const problem = checkLoadResult(scenario, result);
    if (problem) throw new BenchError('BENCH_PROFILE', `${label}: ${problem}`);
    return result;
  };
  if (options.warmupSec > 0) await run('warm-up', options.warmupSec);
  const root = gateway.pid as number;
  const threadsBefore = readThreadSnapshot(root);
  const fromUs = monotonicUs();
  const timed = await run('timed run', options.durationSec);
  const toUs = monotonicUs();
  const threadsAfter = readThreadSnapshot(root);
  console.log(
    `profiled ${scenario.name}: ${Math.round(timed.requestsPerSec)} req/s for ${options.durationSec} s`,
  );
  const exit = await gateway.stop?.();
  if (exit === undefined || exit.code !== 0) {
    throw new BenchError(
      'BENCH_PROFILE',
      `the gateway did not exit cleanly on SIGTERM (${exit ? describeExit(exit) : 'no stop'}): its edges' profiles may be missing`,
    );
  }
  const { files, groups } = await readProfiles(dir, root);
  const sections = summarize(groups, { fromUs, toUs });
  const text = renderProfileSummary(sections, {
    scenario: scenario.name,
    files,
    intervalUs: PROFILE_INTERVAL_US,
    warmupSec: options.warmupSec,
    durationSec: options.durationSec,
    requestsPerSec: timed.requestsPerSec,
    requests: timed.requests,
    threadTable: threadTableOf(threadsBefore, threadsAfter, timed.requests, files),
  });
  await writeFile(join(dir, 'summary.md'), text);
  return text;
}

/** The scenario's own gateway service (its features, edges, second upstream) under the profiler. */
async function startProfiledGateway(
  scenario: Scenario,
  dir: string,
  plan: ProfilePlan,
): Promise<Service> {
  const { cleanup, work } = plan;
  const profiled = profiledGatewayOf(scenario.service);
  if (profiled === undefined) throw new BenchError('BENCH_PROFILE', `${scenario.name}: no gateway`);
  const upstreamPort = Number(new URL((await startUpstream(cleanup)).baseUrl).port);
  const ports = [upstreamPort];
  if (profiled.balanced) ports.push(Number(new URL((await startUpstream(cleanup)).baseUrl).port));
  const backends = profiled.balanced
    ? ports.map((port, i) => ({ port, weight: BENCH_BACKEND_WEIGHTS[i] as number }))
    : undefined;
  return startGateway(
    profiled.service,
    gatewayCliPath(),
    join(work, 'gateway'),
    upstreamPort,
    profiled.instances ?? plan.processes,
    cleanup,
    { ...profiled.features, ...(backends ? { backends } : {}), nodeArgs: profileNodeArgs(dir) },
  );
}

/**
 * The profiles in `dir` by section: the supervisor's main thread (pid `root`, thread 0), the
 * edges' main threads (a frame of worker/edge.js), the edges' pool threads (another thread of an
 * edge's pid with a frame of piscina); any other is left out (such as the loader hooks' thread
 * a `NODE_OPTIONS` `--import` starts in every process). Throws `BENCH_PROFILE` when no edge profile is there.
 */
async function readProfiles(
  dir: string,
  root: number,
): Promise<{ files: ProfileFile[]; groups: Map<ProfileGroup, CpuProfile[]> }> {
  const read: { name: string; profile: CpuProfile }[] = [];
  for (const name of (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    read.push({
      name,
      profile: asCpuProfile(JSON.parse(await readFile(join(dir, name), 'utf8')), name),
    });
  }
  const edgePids = new Set(
    read.filter((r) => isEdgeProfile(r.profile)).map((r) => profileThreadOf(r.name)?.pid),
  );
  const groupOf = ({ name, profile }: (typeof read)[number]): ProfileGroup | undefined => {
    if (isEdgeProfile(profile)) return 'edge main';
    const thread = profileThreadOf(name);
    if (thread === undefined) return undefined;
    if (thread.pid === root && thread.threadId === 0) return 'supervisor';
    const pool = profile.nodes.some((n) => n.callFrame.url.includes('/node_modules/piscina/'));
    return edgePids.has(thread.pid) && thread.threadId > 0 && pool ? 'edge worker' : undefined;
  };
  const files: ProfileFile[] = [];
  const groups = new Map<ProfileGroup, CpuProfile[]>();
  for (const r of read) {
    const group = groupOf(r);
    files.push({ name: r.name, group });
    if (group !== undefined) groups.set(group, [...(groups.get(group) ?? []), r.profile]);
  }
  if (!groups.has('edge main')) {
    throw new BenchError('BENCH_PROFILE', `no edge profile in ${dir} (${files.length} profiles)`);
  }
  return { files, groups };
}

/** One section per group that has profiles, edges first; throws when the edges have no sample. */
function summarize(
  groups: ReadonlyMap<ProfileGroup, CpuProfile[]>,
  window: { fromUs: number; toUs: number },
): ProfileSection[] {
  const order: [ProfileGroup, number][] = [
    ['edge main', 25],
    ['edge worker', 12],
    ['supervisor', 12],
  ];
  const sections = order.flatMap(([group, top]) => {
    const profiles = groups.get(group);
    return profiles === undefined
      ? []
      : [{ group, summary: summarizeProfiles(profiles, window, top) }];
  });
  const edges = sections[0]?.summary;
  if (edges === undefined || edges.busySamples + edges.idleSamples === 0) {
    throw new BenchError(
      'BENCH_PROFILE',
      `no sample of the edges' profiles falls in the timed run (${edges?.samplesOutside ?? 0} outside it)`,
    );
  }
  return sections;
}

/** The per-thread CPU table, or a line saying why there is none (not Linux, the gateway gone). */
function threadTableOf(
  before: ThreadSnapshot | undefined,
  after: ThreadSnapshot | undefined,
  requests: number,
  files: readonly ProfileFile[],
): string {
  if (before === undefined || after === undefined) {
    return '## CPU per request by thread\n\nnot measured: no /proc/<pid>/task for the gateway\n';
  }
  const edges = new Set(after.threads.filter((t) => t.pid !== after.root).map((t) => t.pid));
  const workers = new Map<number, { js: number; pool: number }>();
  for (const f of files) {
    const thread = profileThreadOf(f.name);
    if (thread === undefined || thread.threadId === 0 || !edges.has(thread.pid)) continue;
    const count = workers.get(thread.pid) ?? { js: 0, pool: 0 };
    const pool = f.group === 'edge worker' ? 1 : 0;
    workers.set(thread.pid, { js: count.js + 1, pool: count.pool + pool });
  }
  const roles = classifyThreads(after, workers);
  return renderThreadCpuTable(threadCpuTable(before, after, requests, roles));
}

// `--profile DIR`: gateway-auth-proxy under `node --cpu-prof`, one warm-up and one timed run,
// a clean stop (V8 writes the profiles at exit), then a summary of the edges' profiles.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BenchError } from './bench-error.js';
import type { CleanupStack } from './cleanup-stack.js';
import { startGateway } from './gateway.js';
import { loadRequestFor } from './load-request.js';
import type { LoadResult, LoadTool } from './load-result.js';
import { describeExit } from './managed-process.js';
import type { BenchOptions } from './options.js';
import { gatewayCliPath } from './paths.js';
import {
  asCpuProfile,
  type CpuProfile,
  isEdgeProfile,
  renderProfileSummary,
  summarizeProfiles,
} from './profile-summary.js';
import { SCENARIOS } from './scenarios.js';
import { targetFor } from './service.js';
import { startUpstream } from './upstream.js';
import { checkLoadResult, verifyScenario } from './verify.js';

/** The scenario `--profile` runs. */
export const PROFILE_SCENARIO = 'gateway-auth-proxy';

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
  const { options, tool, signal, cleanup } = plan;
  const dir = resolve(options.profileDir);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).some((f) => f.endsWith('.cpuprofile'))) {
    throw new BenchError(
      'BENCH_PROFILE',
      `${dir} already holds .cpuprofile files: give an empty or new directory`,
    );
  }
  const scenario = SCENARIOS.find((s) => s.name === PROFILE_SCENARIO);
  if (scenario === undefined) throw new BenchError('BENCH_PROFILE', 'no gateway-auth-proxy');
  const work = await mkdtemp(join(tmpdir(), 'proxyauth-bench-'));
  cleanup.add('remove temp dir', () => rm(work, { recursive: true, force: true }));
  const upstream = await startUpstream(cleanup);
  const upstreamPort = Number(new URL(upstream.baseUrl).port);
  const gateway = await startGateway(
    'gateway',
    gatewayCliPath(),
    join(work, 'gateway'),
    upstreamPort,
    plan.processes,
    cleanup,
    { nodeArgs: profileNodeArgs(dir) },
  );
  const target = targetFor(scenario, gateway);
  await verifyScenario(scenario, target);
  const run = async (label: string, durationSec: number): Promise<LoadResult> => {
    const result = await tool.run(loadRequestFor(scenario, target, options, durationSec), signal);
    const problem = checkLoadResult(scenario, result);
    if (problem) throw new BenchError('BENCH_PROFILE', `${label}: ${problem}`);
    return result;
  };
  if (options.warmupSec > 0) await run('warm-up', options.warmupSec);
  const fromUs = monotonicUs();
  const timed = await run('timed run', options.durationSec);
  const toUs = monotonicUs();
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
  const files: { name: string; edge: boolean }[] = [];
  const edges: CpuProfile[] = [];
  for (const name of (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    const profile = asCpuProfile(JSON.parse(await readFile(join(dir, name), 'utf8')), name);
    const edge = isEdgeProfile(profile);
    files.push({ name, edge });
    if (edge) edges.push(profile);
  }
  if (edges.length === 0) {
    throw new BenchError('BENCH_PROFILE', `no edge profile in ${dir} (${files.length} profiles)`);
  }
  const summary = summarizeProfiles(edges, { fromUs, toUs });
  if (summary.busySamples + summary.idleSamples === 0) {
    throw new BenchError(
      'BENCH_PROFILE',
      `no sample of the edges' profiles falls in the timed run (${summary.samplesOutside} outside it)`,
    );
  }
  const text = renderProfileSummary(summary, {
    scenario: scenario.name,
    files,
    intervalUs: PROFILE_INTERVAL_US,
    warmupSec: options.warmupSec,
    durationSec: options.durationSec,
    requestsPerSec: timed.requestsPerSec,
  });
  await writeFile(join(dir, 'summary.md'), text);
  return text;
}

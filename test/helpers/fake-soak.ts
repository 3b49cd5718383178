import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { LoadResult, LoadTool } from '../../bench/load-result.js';
import { parseBenchOptions } from '../../bench/options.js';
import { SCENARIOS } from '../../bench/scenarios.js';
import { runSoak, type SoakPlan } from '../../bench/soak.js';
import type { SoakReport } from '../../bench/soak-report.js';

/** A load run's result: 1,000 requests in 1 s, p99 2 ms, all answered right unless told. */
export function loadResult(extra: Partial<LoadResult> = {}): LoadResult {
  return {
    requests: 1000,
    durationSec: 1,
    requestsPerSec: 1000,
    latencyP50Ms: 1,
    latencyP99Ms: 2,
    latencyMaxMs: 3,
    errorResponses: 0,
    socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
    ...extra,
  };
}

/**
 * A soak of gateway-auth-proxy with the options `argv` and `run` as the load tool, against a
 * stand-in supervisor without edges (nothing gets a heap-report signal).
 */
export async function fakeSoak(
  t: Test,
  argv: readonly string[],
  run: LoadTool['run'],
  plan: Pick<SoakPlan, 'gatewayLog'> = {},
): Promise<SoakReport> {
  const supervisor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    stdio: 'ignore',
  });
  t.teardown(() => supervisor.kill());
  const heapReportDir = await mkdtemp(join(tmpdir(), 'fake-soak-'));
  t.teardown(() => rm(heapReportDir, { recursive: true, force: true }));
  const scenario = SCENARIOS.find((s) => s.name === 'gateway-auth-proxy');
  if (scenario === undefined) throw new Error('no gateway-auth-proxy scenario');
  return runSoak({
    scenario,
    target: { url: 'http://127.0.0.1:1/api/hello', headers: {}, pid: supervisor.pid },
    tool: { name: 'wrk', version: 'fake', run },
    options: parseBenchOptions(argv),
    signal: new AbortController().signal,
    heapReportDir,
    ...plan,
  });
}

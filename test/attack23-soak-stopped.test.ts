// Regression: a soak interval with wrong answers (the upstream killed mid-soak: 97,917 of
// 117,127 responses >= 400, measured) threw out of runSoak, so the intervals before it, their
// memory and CPU figures, were lost with the whole report. The soak must stop there and report
// what it had, saying why it stopped.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { LoadResult, LoadTool } from '../bench/load-result.js';
import { parseBenchOptions } from '../bench/options.js';
import { SCENARIOS } from '../bench/scenarios.js';
import { runSoak } from '../bench/soak.js';
import { renderSoak } from '../bench/soak-report.js';

function result(errorResponses: number): LoadResult {
  return {
    requests: 1000,
    durationSec: 1,
    requestsPerSec: 1000,
    latencyP50Ms: 1,
    latencyP99Ms: 2,
    latencyMaxMs: 3,
    errorResponses,
    socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
  };
}

t.test('a soak stopped by wrong answers keeps the intervals before it', async (t) => {
  // A stand-in supervisor without edges: nothing gets a heap-report signal.
  const supervisor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    stdio: 'ignore',
  });
  t.teardown(() => supervisor.kill());
  const heapReportDir = await mkdtemp(join(tmpdir(), 'attack23-soak-'));
  t.teardown(() => rm(heapReportDir, { recursive: true, force: true }));
  const scenario = SCENARIOS.find((s) => s.name === 'gateway-auth-proxy');
  if (scenario === undefined) throw new Error('no gateway-auth-proxy scenario');
  const answers = [result(0), result(0), result(900)];
  const tool: LoadTool = {
    name: 'wrk',
    version: 'fake',
    run: async () => answers.shift() ?? result(0),
  };
  const options = parseBenchOptions(['--soak', '1', '--soak-interval', '20', '--warmup', '0']);
  const soak = await runSoak({
    scenario,
    target: { url: 'http://127.0.0.1:1/api/hello', headers: {}, pid: supervisor.pid },
    tool,
    options,
    signal: new AbortController().signal,
    heapReportDir,
  });
  t.equal(soak.samples.length, 2, 'the two good intervals are kept');
  t.match(soak.stoppedBy, /900 of 1000 responses had status >= 400/);
  t.equal(soak.summary?.endP99Ms, 2, 'the summary covers the intervals it has');
  t.match(renderSoak(soak).join('\n'), /the soak stopped after 40 of 60 s: .*900 of 1000/);
});

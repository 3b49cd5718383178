// `--profile DIR` end to end: the compiled runner (dist/bench/run.js) starts the gateway under
// `node --cpu-prof`, and the edges, forked with the supervisor's execArgv, write their profiles
// at a clean stop; the summary is printed and written to DIR/summary.md. A short run: 1 s of
// warm-up, 1 s timed, few connections.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { asCpuProfile, isEdgeProfile } from '../bench/profile-summary.js';
import { cliEnv } from './helpers/cli.js';

const RUNNER = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));

function runBench(
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: cliEnv(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('--profile writes the edges profiles and summarizes them', async (t) => {
  t.ok(existsSync(RUNNER), 'the bench is built (npm run build)');
  const dir = join(t.testdir({}), 'prof');
  const args = ['--profile', dir, '--duration', '1', '--warmup', '1', '--connections', '8'];
  const run = await runBench([...args, '--threads', '1']);
  t.equal(run.code, 0, `exit 0 (stderr: ${run.stderr.slice(-2000)})`);
  t.match(run.stdout, /profiled gateway-auth-proxy: \d+ req\/s for 1 s/);
  t.match(run.stdout, /## CPU profile of the gateway's edges, gateway-auth-proxy/);
  t.match(run.stdout, /wall time on the thread/);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const edges = [];
  for (const f of files) {
    const profile = asCpuProfile(JSON.parse(await readFile(join(dir, f), 'utf8')), f);
    if (isEdgeProfile(profile)) edges.push(f);
  }
  t.equal(edges.length, 2, 'one profile per edge: the edges inherit --cpu-prof');
  t.ok(files.length > edges.length, "the supervisor's profile is there too, and left out");
  t.match(run.stdout, /- edge profiles: 2 \(/);
  const summary = await readFile(join(dir, 'summary.md'), 'utf8');
  t.ok(run.stdout.includes(summary.trim()), 'summary.md is the printed summary');
  t.match(summary, /### Self time by category\n\n\| category \| samples \| % of busy \|/);
  t.match(summary, /\| gateway code \| \d+ \| \d+\.\d \|/);
  t.match(summary, /### Top \d+ functions by self time/);
  const busy = Number(/busy (\d+):/.exec(summary)?.[1]);
  t.ok(busy > 0, `busy samples in the timed run: ${busy}`);

  // The same DIR again: its profiles would be summed with the new run's.
  const again = await runBench(args);
  t.equal(again.code, 1);
  t.match(again.stderr, /\[BENCH_PROFILE\]: .*already holds \.cpuprofile files/);
  t.equal(
    (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).length,
    files.length,
    'nothing started, nothing written',
  );
});

t.test('--profile refuses another mode before starting anything', async (t) => {
  const dir = join(t.testdir({}), 'prof');
  const run = await runBench(['--profile', dir, '--scenarios', 'gateway-one-edge']);
  t.equal(run.code, 1);
  t.match(run.stderr, /\[BENCH_BAD_OPTION\]: --profile runs gateway-auth-proxy alone/);
  t.notOk(existsSync(dir), 'no directory made');
});

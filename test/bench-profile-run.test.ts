// `--profile DIR` end to end: the compiled runner (dist/bench/run.js) starts the gateway under
// `node --cpu-prof`, and the edges, forked with the supervisor's execArgv, write their profiles
// at a clean stop; the summary is printed and written to DIR/summary.md. Short runs: 1 s of
// warm-up, 1 or 2 s timed, few connections. Then gateway-login: its own service and POST, the
// pool threads' and the supervisor's profiles, the per-thread CPU table.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { asCpuProfile, isEdgeProfile } from '../bench/profile-summary.js';
import { cliEnv } from './helpers/cli.js';

const RUNNER = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));

/**
 * Runs the compiled runner. `hooks: false` has env(1) drop NODE_OPTIONS on the way: tap's
 * coverage hook re-adds itself to the NODE_OPTIONS of every process spawned from here, and its
 * `--import` starts a loader thread in every process of the gateway (test/helpers/store-process.ts).
 */
function runBench(
  args: readonly string[],
  hooks = true,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const command = hooks
      ? [process.execPath, RUNNER, ...args]
      : ['env', '-u', 'NODE_OPTIONS', process.execPath, RUNNER, ...args];
    const child = spawn(command[0] as string, command.slice(1), {
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
  t.match(run.stdout, /# CPU profile of the gateway, gateway-auth-proxy/);
  t.match(run.stdout, /wall time on the thread/);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const edges = [];
  for (const f of files) {
    const profile = asCpuProfile(JSON.parse(await readFile(join(dir, f), 'utf8')), f);
    if (isEdgeProfile(profile)) edges.push(f);
  }
  t.equal(edges.length, 2, 'one profile per edge: the edges inherit --cpu-prof');
  t.ok(files.length > edges.length, "the supervisor's profile is there too");
  t.match(run.stdout, /- edges' main threads: 2 \(/);
  t.match(run.stdout, /## Supervisor \(main thread\)/);
  const summary = await readFile(join(dir, 'summary.md'), 'utf8');
  t.ok(run.stdout.includes(summary.trim()), 'summary.md is the printed summary');
  t.match(summary, /### Self time by category\n\n\| category \| samples \| % of busy \|/);
  t.match(summary, /\| edge main threads \| 2 \| \d+\.\d\d \| \d+ \|/, 'the thread table');
  t.match(summary, /\| gateway code \| \d+ \| \d+\.\d \|/);
  t.match(summary, /### Top \d+ functions by self time/);
  const busy = Number(/busy (\d+)[ :]/.exec(summary)?.[1]);
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

t.test(
  '--profile --scenarios gateway-login: its service, every thread, the thread table',
  async (t) => {
    const dir = join(t.testdir({}), 'prof');
    const args = ['--profile', dir, '--scenarios', 'gateway-login', '--duration', '2'];
    // Without tap's hooks: with JS workers besides the pool's, the table cannot tell the pool's
    // threads apart (it says so, and counts them in "edge other threads").
    const run = await runBench([...args, '--warmup', '1', '--threads', '1'], false);
    t.equal(run.code, 0, `exit 0 (stderr: ${run.stderr.slice(-2000)})`);
    t.match(run.stdout, /profiled gateway-login: \d+ req\/s for 2 s/, 'logins answered 200');
    const summary = await readFile(join(dir, 'summary.md'), 'utf8');
    t.match(summary, /^# CPU profile of the gateway, gateway-login/);
    t.match(summary, /- edges' worker threads: 2 \(/, 'one pool thread per edge');
    for (const section of [
      "## Edges' main threads",
      "## Edges' worker threads (crypto pool: Argon2)",
      '## Supervisor (main thread)',
    ]) {
      t.ok(summary.includes(section), section);
    }
    const pool = summary.slice(summary.indexOf("## Edges' worker threads"));
    const argon2 = /\| Argon2 native \(from password\.js\) \| (\d+) \|/.exec(pool);
    t.ok(Number(argon2?.[1]) > 0, 'the pool threads spend their time in Argon2');
    const usPerRequest = (role: string) =>
      Number(new RegExp(`\\| ${role} \\| \\d+ \\| [\\d.]+ \\| (\\d+) \\|`).exec(summary)?.[1]);
    const argon2Us = usPerRequest('edge worker threads \\(crypto pool\\)');
    t.ok(argon2Us > 3000, `a login's Argon2 on the pool threads: ${argon2Us} µs (told apart)`);
    t.ok(
      usPerRequest('edge main threads') < argon2Us,
      'less on the edges main threads than on the pool',
    );
    t.ok(usPerRequest('supervisor main') > 0, 'the supervisor answers the lockout asks');
    t.match(summary, /\| total without the profiler threads \| \d+ \|/);
  },
);

t.test('--profile refuses a non-gateway scenario before starting anything', async (t) => {
  const dir = join(t.testdir({}), 'prof');
  const run = await runBench(['--profile', dir, '--scenarios', 'nginx-proxy']);
  t.equal(run.code, 1);
  t.match(run.stderr, /\[BENCH_BAD_OPTION\]: --profile --scenarios nginx-proxy: not a gateway/);
  t.notOk(existsSync(dir), 'no directory made');
});

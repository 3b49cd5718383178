// Regression: the bench starts its services detached (each the leader of its own process group)
// and removes them and its temp dir in a cleanup that runs on a normal end, an error or Ctrl-C.
// A bench killed with SIGKILL (OOM killer, `kill -9`, a CI timeout) ran no cleanup: the gateway
// kept its port, nginx, HAProxy and the upstream ran on, and the temp dir (a config with the
// bench user's Argon2 hash, wrk scripts with the run's password) stayed. Each case starts the
// compiled runner with TMPDIR pointed at an empty directory, waits until its service answers,
// SIGKILLs the runner and expects every process below it gone and TMPDIR empty within seconds.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { findHaproxy } from '../bench/haproxy.js';
import { findNginx } from '../bench/nginx.js';
import { allProcesses, isAlive, type ProcStat } from '../bench/proc-stat.js';
import { cliEnv } from './helpers/cli.js';

const RUNNER = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));

type Bench = ChildProcessByStdio<null, Readable, Readable>;

/** The runner on one scenario, timed long enough to be killed in the middle of its load. */
function startBench(t: Test, scenario: string, tmp: string, durationSec = 30): Bench {
  const load = ['--runs', '1', '--duration', String(durationSec), '--warmup', '0'];
  const args = [RUNNER, '--scenarios', scenario, ...load, '--connections', '4', '--threads', '1'];
  const bench = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: cliEnv({ TMPDIR: tmp }),
  });
  t.teardown(() => {
    bench.kill('SIGKILL');
  });
  return bench;
}

/** Resolves once the runner has checked `scenario`'s answers: its services are up. */
function checked(bench: Bench, scenario: string): Promise<void> {
  const line = `checked ${scenario}: answers are correct`;
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    bench.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) resolve();
    });
    bench.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    bench.once('exit', () => reject(new Error(`bench exited first: ${err.slice(-2000)}`)));
  });
}

/** Every process below `pid` (children, their children...), with its command line. */
function descendants(pid: number): (ProcStat & { readonly cmd: string })[] {
  const all = allProcesses();
  const found: (ProcStat & { readonly cmd: string })[] = [];
  for (let parents = new Set([pid]); parents.size > 0; ) {
    const next = all.filter((p) => parents.has(p.ppid));
    found.push(...next.map((p) => ({ ...p, cmd: commandLine(p.pid) })));
    parents = new Set(next.map((p) => p.pid));
  }
  return found;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Polls `check` every 100 ms for up to `ms`; its last answer. */
async function within<T>(ms: number, check: () => T[]): Promise<T[]> {
  let left = check();
  for (let waited = 0; left.length > 0 && waited < ms; waited += 100) {
    await sleep(100);
    left = check();
  }
  return left;
}

/** SIGKILLs whatever of `procs` still runs, so that a failing case leaves nothing behind. */
function killLeft(procs: readonly ProcStat[]): void {
  for (const p of procs) {
    if (isAlive(p.pid, p.startTime)) process.kill(p.pid, 'SIGKILL');
  }
}

/**
 * Waits until `bench` has checked `scenario` and started its load, and returns every process
 * below it, each SIGKILLed at the end of the test should it still run. The 300 ms let wrk start
 * and be recorded: a child spawned in the very milliseconds the runner dies is not in the
 * ledger (bench/README.md, "A killed bench").
 */
async function runningTree(t: Test, bench: Bench, scenario: string) {
  await checked(bench, scenario);
  await sleep(300);
  const tree = descendants(bench.pid as number);
  t.teardown(() => killLeft(tree));
  return tree;
}

/**
 * Starts the runner on `scenario`, SIGKILLs it once the scenario's answers are checked (its
 * load has started), and checks that nothing it started outlives it.
 */
async function killedMidRun(t: Test, scenario: string, service: RegExp): Promise<void> {
  const tmp = t.testdir();
  const bench = startBench(t, scenario, tmp);
  const tree = await runningTree(t, bench, scenario);
  t.ok(
    tree.some((p) => service.test(p.cmd)),
    `the service runs below the bench (${tree.map((p) => p.cmd).join(' | ')})`,
  );
  bench.kill('SIGKILL');
  const left = await within(10_000, () => tree.filter((p) => isAlive(p.pid, p.startTime)));
  t.same(
    left.map((p) => `${p.pid} ${p.cmd}`),
    [],
    'no process started by the bench outlives it',
  );
  t.same(await within(3000, () => readdirSync(tmp)), [], 'the temp dir is removed');
}

t.test('the upstream', (t) => killedMidRun(t, 'upstream-direct', /upstream-server\.js/));

t.test('the gateway: supervisor and edges', (t) =>
  killedMidRun(t, 'gateway-auth-proxy', /supervisor\/cli\.js/),
);

const nginxSkip = (await findNginx()) ? false : 'nginx not installed';
t.test('nginx: master and workers', { skip: nginxSkip }, (t) =>
  killedMidRun(t, 'nginx-proxy', /nginx/),
);

const haproxySkip = (await findHaproxy())?.hasJwt ? false : 'HAProxy 2.5+ not installed';
t.test('HAProxy', { skip: haproxySkip }, (t) =>
  killedMidRun(t, 'haproxy-jwt-auth-proxy', /haproxy/),
);

t.test('the floor: a parent and its forked relays', (t) =>
  killedMidRun(t, 'floor-proxy', /floor-server\.js/),
);

// A service that does not stop by itself when the runner dies (the upstream and the floor
// leave on the end of their IPC channel): nginx starts in a second, the gateway hashes first.
const lingering = nginxSkip
  ? { scenario: 'gateway-auth-proxy', name: 'the gateway', cmd: /supervisor\/cli\.js/ }
  : { scenario: 'nginx-proxy', name: 'nginx', cmd: /nginx: master/ };

t.test('the runner and its guard both killed: the next run reaps what they left', async (t) => {
  const tmp = t.testdir();
  const bench = startBench(t, lingering.scenario, tmp);
  const tree = await runningTree(t, bench, lingering.scenario);
  // The guard, when there is one, dies with the runner (both picked by an OOM killer, say).
  const guards = tree.filter((p) => /run-guard\.js/.test(p.cmd));
  for (const p of [{ pid: bench.pid as number }, ...guards]) process.kill(p.pid, 'SIGKILL');
  await sleep(500);
  const left = tree.filter((p) => isAlive(p.pid, p.startTime) && !/wrk/.test(p.cmd));
  t.ok(
    left.some((p) => lingering.cmd.test(p.cmd)),
    `with no one to stop it, ${lingering.name} outlives the runner`,
  );

  const next = startBench(t, 'upstream-direct', tmp, 1);
  const exit = await new Promise<number | null>((resolve) => next.once('exit', resolve));
  t.equal(exit, 0, 'the next run completes');
  t.same(
    tree.filter((p) => isAlive(p.pid, p.startTime)).map((p) => `${p.pid} ${p.cmd}`),
    [],
    'the next run stopped every process the killed one left',
  );
  t.same(await within(3000, () => readdirSync(tmp)), [], 'both temp dirs are removed');
});

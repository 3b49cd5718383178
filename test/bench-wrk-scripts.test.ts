// Regression: wrk takes the method and body from a Lua script, which the bench wrote into the
// OS temp dir as proxyauth-bench-<hash>.lua and never removed; a login's body carries the run's
// own password, so every POST or login run left a file (about 60 in /tmp after a few weeks).
// The compiled runner (dist/bench/run.js) runs with TMPDIR pointed at an empty directory, which
// must be empty again once it exits: after a complete run, after a failed one, after Ctrl-C.
import { spawn } from 'node:child_process';
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { cliEnv } from './helpers/cli.js';

const RUNNER = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));

/** `--profile` runs one gateway scenario and writes no result file; gateway-post is a POST. */
function profileArgs(dir: string, durationSec: number): string[] {
  const load = ['--duration', String(durationSec), '--warmup', '0'];
  return ['--profile', dir, '--scenarios', 'gateway-post', ...load, '--connections', '4'];
}

/** The runner with `TMPDIR` set; `onStart` gets the child once spawned. */
function runBench(
  args: readonly string[],
  env: Record<string, string>,
  onStart: (child: ReturnType<typeof spawn>) => void = () => {},
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, ...args, '--threads', '1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: cliEnv(env),
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
    onStart(child);
  });
}

/** Every file and directory below `dir`. */
function leftIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' });
}

/** Resolves once a Lua script stands anywhere below `dir`: wrk is about to run or running. */
async function scriptWritten(dir: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (leftIn(dir).some((f) => f.endsWith('.lua'))) return;
    await sleep(50);
  }
  throw new Error('no Lua script written within 30 s');
}

/** A fresh temp dir (`tmp`) and a place for the profiles, apart from it. */
function dirs(t: Test, extra: Record<string, Record<string, string>> = {}) {
  const root = t.testdir({ tmp: {}, prof: {}, ...extra });
  return { root, tmp: join(root, 'tmp'), prof: join(root, 'prof') };
}

t.test('a complete run leaves nothing in the temp dir', async (t) => {
  const { tmp, prof } = dirs(t);
  const run = await runBench(profileArgs(prof, 1), { TMPDIR: tmp });
  t.equal(run.code, 0, `exit 0 (stderr: ${run.stderr.slice(-2000)})`);
  t.same(leftIn(tmp), [], 'nothing left in TMPDIR');
});

t.test('a run whose load tool fails leaves nothing in the temp dir', async (t) => {
  // A wrk that knows its version and fails every load run.
  const fake = '#!/bin/sh\n[ "$1" = -v ] && echo "wrk 0.0-fake" && exit 1\nexit 2\n';
  const { root, tmp, prof } = dirs(t, { bin: { wrk: fake } });
  chmodSync(join(root, 'bin', 'wrk'), 0o755);
  const env = { TMPDIR: tmp, PATH: `${join(root, 'bin')}:${process.env.PATH ?? ''}` };
  const run = await runBench(profileArgs(prof, 1), env);
  t.equal(run.code, 1);
  t.match(run.stderr, /\[BENCH_LOAD_TOOL\]: wrk exited 2/);
  t.same(leftIn(tmp), [], 'nothing left in TMPDIR');
});

t.test('a run stopped by SIGINT during the load leaves nothing in the temp dir', async (t) => {
  const { tmp, prof } = dirs(t);
  let signalled = false;
  const run = await runBench(profileArgs(prof, 60), { TMPDIR: tmp }, (child) => {
    scriptWritten(tmp).then(
      () => {
        signalled = child.kill('SIGINT');
      },
      () => child.kill('SIGKILL'),
    );
  });
  t.ok(signalled, 'SIGINT sent while the script was there');
  t.equal(run.code, 130, `exit 130 (stderr: ${run.stderr.slice(-2000)})`);
  t.same(leftIn(tmp), [], 'nothing left in TMPDIR');
});

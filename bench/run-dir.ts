import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CleanupStack } from './cleanup-stack.js';
import { benchDir } from './paths.js';
import { GUARD_DISMISS, openLedger } from './run-ledger.js';
import { RUN_DIR_PREFIX, reapStaleRuns } from './stale-runs.js';

/** SIGTERM to SIGKILL for the children of a stale run. */
const STALE_GRACE_MS = 5000;

/**
 * The run's temp dir (mode 0700: configs with the bench user's hash, wrk scripts with its
 * password), removed at `cleanup` and, should the runner be SIGKILLed before, by a run guard
 * that also stops every child the runner started. Runs left by a runner and guard both killed
 * are reaped first.
 */
export async function openRunDir(cleanup: CleanupStack): Promise<string> {
  const parent = tmpdir();
  for (const { dir, stopped } of await reapStaleRuns(parent, STALE_GRACE_MS)) {
    console.log(`notice: removed ${dir}, left by a bench that died (${stopped} children stopped)`);
  }
  const dir = await mkdtemp(join(parent, RUN_DIR_PREFIX));
  const guard = startGuard(dir);
  // Added first, so run last: the guard is dismissed once everything else is cleaned up.
  cleanup.add('dismiss run guard', () => dismiss(guard));
  cleanup.add('remove temp dir', () => rm(dir, { recursive: true, force: true }));
  openLedger(dir);
  return dir;
}

function startGuard(dir: string): ChildProcess {
  const guard = spawn(process.execPath, [join(benchDir, 'run-guard.js'), dir], {
    detached: true,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  guard.on('error', (err) => console.error(`notice: bench run guard failed: ${err.message}`));
  // A guard that died early makes the dismissal's write fail with EPIPE: nothing to dismiss.
  guard.stdin?.on('error', () => {});
  guard.unref();
  return guard;
}

function dismiss(guard: ChildProcess): void {
  guard.stdin?.end(`${GUARD_DISMISS}\n`);
}

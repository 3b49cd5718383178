import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from './proc-stat.js';
import { reapRun } from './reap-run.js';
import { readLedger } from './run-ledger.js';

/** The runner's temp dirs: `mkdtemp` adds six characters to this prefix. */
export const RUN_DIR_PREFIX = 'proxyauth-bench-';

const RUN_DIR_NAME = new RegExp(`^${RUN_DIR_PREFIX}[A-Za-z0-9]{6}$`);

/** A run dir whose runner is gone, and what was still running in it. */
export interface StaleRun {
  readonly dir: string;
  readonly stopped: number;
}

/**
 * Reaps the runs under `parent` (the temp dir) whose runner died and whose guard did not clean
 * up either (both SIGKILLed, a reboot without a tmpfs...). Only directories named as the runner
 * names them, owned by this user, not symlinks, and with a ledger whose owner no longer runs:
 * a dir without a ledger (another version's, or one being created right now) is left alone.
 */
export async function reapStaleRuns(parent: string, graceMs: number): Promise<StaleRun[]> {
  const reaped: StaleRun[] = [];
  for (const name of readdirSync(parent)) {
    if (!RUN_DIR_NAME.test(name)) continue;
    const dir = join(parent, name);
    if (!ownDirectory(dir)) continue;
    const owner = readLedger(dir).find((e) => e.kind === 'owner');
    if (owner === undefined || isAlive(owner.pid, owner.startTime)) continue;
    reaped.push({ dir, ...(await reapRun(dir, graceMs)) });
  }
  return reaped;
}

function ownDirectory(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && st.uid === process.getuid?.();
  } catch {
    return false;
  }
}

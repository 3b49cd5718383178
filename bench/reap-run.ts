import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, procStat } from './proc-stat.js';
import { type LedgerEntry, readLedger } from './run-ledger.js';

/** What {@link reapRun} found still running. */
export interface Reaped {
  /** Children of the ledger (groups and single processes) still running when reaping began. */
  readonly stopped: number;
}

/**
 * Stops what the ledger in `dir` lists and removes `dir`: the clean-up of a runner that died
 * without its own (SIGKILL). As `ManagedProcess.stop`: SIGTERM to each child (a gateway's
 * supervisor drains and stops its edges, nginx's master its workers), up to `graceMs` for them
 * to exit, then SIGKILL to every group, so that nothing a child left behind survives either.
 */
export async function reapRun(dir: string, graceMs: number): Promise<Reaped> {
  const children = readLedger(dir).filter((e) => e.kind !== 'owner' && ours(e));
  for (const child of children) signal(child, 'SIGTERM');
  for (let waited = 0; waited < graceMs && children.some(running); waited += 100) {
    await sleep(100);
  }
  for (const child of children) if (ours(child)) signal(child, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  return { stopped: children.length };
}

/**
 * Whether the entry's pid still names our child: the same process (a zombie counts: it holds
 * its pid), or for a group, no process under that pid at all. A group's id stays taken while any
 * member lives, so a leaderless group whose pid is free is still ours; a pid taken by another
 * process means our group emptied and its id went to someone else.
 */
function ours(entry: LedgerEntry): boolean {
  const stat = procStat(entry.pid);
  if (stat === undefined) return entry.kind === 'group';
  return stat.startTime === entry.startTime;
}

function running(entry: LedgerEntry): boolean {
  return isAlive(entry.pid, entry.startTime);
}

/** The leader only for SIGTERM (its own handler stops the rest), the whole group for SIGKILL. */
function signal(entry: LedgerEntry, sig: NodeJS.Signals): void {
  const target = entry.kind === 'group' && sig === 'SIGKILL' ? -entry.pid : entry.pid;
  if (sig === 'SIGTERM' && !running(entry)) return;
  try {
    process.kill(target, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

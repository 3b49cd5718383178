import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { allProcesses, isAlive, procStat } from './proc-stat.js';
import { type LedgerEntry, ledgerOfThisBoot, readLedger } from './run-ledger.js';

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
  // A ledger of another boot (a TMPDIR that is not a tmpfs) names no process of ours.
  const ledger = ledgerOfThisBoot(dir) ? readLedger(dir) : [];
  const children = ledger.filter((e) => e.kind !== 'owner' && ours(e));
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
 * its pid), or for a group whose leader is gone, a group of that id that is still the session
 * the leader opened (spawnManaged's children are detached: `setsid`) with members started after
 * it. A group's id stays taken while any member lives; but once ours emptied, the pid may go to
 * a process that leads a group of its own and exits before its members: the first command of a
 * shell pipeline (`cat f | less`, in the shell's session), or a daemon forking twice (its own
 * session, started later than our leader but indistinguishable here: see bench/README.md).
 */
function ours(entry: LedgerEntry): boolean {
  const stat = procStat(entry.pid);
  if (stat !== undefined) return stat.startTime === entry.startTime;
  if (entry.kind !== 'group') return false;
  return allProcesses().some(
    (p) => p.pgrp === entry.pid && p.session === entry.pid && p.startTime >= entry.startTime,
  );
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

import {
  appendFileSync,
  closeSync,
  constants,
  lstatSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { bootTimeSeconds, procStat } from './proc-stat.js';

/**
 * The ledger of a run: a file in the run's temp dir naming the runner (`owner`) and every child
 * it started, each with its start time so that a reused pid is never taken for it. The run
 * guard (`run-guard.ts`) reads it when the runner dies without cleaning up, and so does the next
 * run's sweep (`stale-runs.ts`) when the guard died too.
 */
export const LEDGER_FILE = 'ledger';

/** What the runner writes to its run guard once its own clean-up is done (`run-guard.ts`). */
export const GUARD_DISMISS = 'done';

/** `group`: a detached child, leader of its own process group; `process`: one process. */
export type LedgerKind = 'owner' | 'group' | 'process';

/** One line of a ledger. */
export interface LedgerEntry {
  readonly kind: LedgerKind;
  readonly pid: number;
  readonly startTime: number;
}

// One bench run per process: the ledger is process-wide, like the children it lists. Undefined
// (nothing recorded) outside `npm run bench`, e.g. when a test starts one service.
let ledgerPath: string | undefined;

/** Starts the ledger of this process's run in `dir` (created by the caller, mode 0700). */
export function openLedger(dir: string): void {
  const path = join(dir, LEDGER_FILE);
  writeFileSync(path, line('owner', process.pid), { mode: 0o600, flag: 'wx' });
  ledgerPath = path;
}

/** Records a child just spawned; a no-op without a ledger or a pid (spawn failed). */
export function recordChild(kind: 'group' | 'process', pid: number | undefined): void {
  if (ledgerPath === undefined || pid === undefined) return;
  appendFileSync(ledgerPath, line(kind, pid));
}

function line(kind: LedgerKind, pid: number): string {
  // Read before the child can be reaped: until the runner's loop runs it is at worst a zombie.
  return `${kind} ${pid} ${procStat(pid)?.startTime ?? 0}\n`;
}

/**
 * The entries of the ledger in `dir`; none when there is no ledger (a run from before ledgers,
 * or one that has not written it yet). A symlink in its place is refused, not followed.
 */
export function readLedger(dir: string): LedgerEntry[] {
  let fd: number;
  try {
    fd = openSync(join(dir, LEDGER_FILE), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return [];
  }
  try {
    return readFileSync(fd, 'utf8').split('\n').flatMap(parseLine);
  } finally {
    closeSync(fd);
  }
}

function parseLine(text: string): LedgerEntry[] {
  const m = /^(owner|group|process) (\d+) (\d+)$/.exec(text);
  if (!m) return [];
  return [{ kind: m[1] as LedgerKind, pid: Number(m[2]), startTime: Number(m[3]) }];
}

/**
 * Whether the ledger in `dir` was last written since the machine booted: the pids of one written
 * before name processes of another boot, which may be anyone's now.
 */
export function ledgerOfThisBoot(dir: string): boolean {
  try {
    return lstatSync(join(dir, LEDGER_FILE)).mtimeMs / 1000 >= bootTimeSeconds();
  } catch {
    return false;
  }
}

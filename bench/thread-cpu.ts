// CPU time of every thread of the gateway's process tree (/proc/<pid>/task/<tid>/stat), sampled
// at the start and the end of `--profile`'s timed run, and the table made of the two: CPU per
// request by kind of thread (supervisor, edges' main threads, their crypto pool threads, ...).

import { readdirSync, readFileSync } from 'node:fs';
import { readStat, TICKS_PER_SECOND, treeProcesses } from './process-cpu.js';

/** One thread's CPU so far. */
export interface ThreadStat {
  readonly pid: number;
  readonly tid: number;
  /** `/proc/<pid>/task/<tid>/comm`: `node` for every thread node makes, named ones aside. */
  readonly comm: string;
  /** utime + stime, in ticks of {@link TICKS_PER_SECOND}. */
  readonly ticks: number;
}

/** Every thread of a process tree at one moment. */
export interface ThreadSnapshot {
  /** The supervisor: the root of the tree; every other process is an edge. */
  readonly root: number;
  readonly threads: readonly ThreadStat[];
}

/** The rows of the table, in its order. */
export const THREAD_ROLES = [
  'supervisor main',
  'supervisor other threads',
  'edge main threads',
  'edge worker threads (crypto pool)',
  'edge other threads',
  'V8 profiler threads',
] as const;

export type ThreadRole = (typeof THREAD_ROLES)[number];

/** The name V8 gives the thread that collects a `--cpu-prof` profile (one per isolate). */
const PROFILER_COMM = 'v8:ProfEvntProc';

/** The threads of `root` and its descendants; undefined when `root` is gone or not on Linux. */
export function readThreadSnapshot(root: number): ThreadSnapshot | undefined {
  const processes = treeProcesses(root);
  if (processes === undefined) return undefined;
  const threads: ThreadStat[] = [];
  for (const pid of processes.keys()) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // the process exited since it was listed
    }
    for (const tid of tids) {
      const stat = readStat(`${pid}/task/${tid}`);
      const comm = readComm(`/proc/${pid}/task/${tid}/comm`);
      if (stat === undefined || comm === undefined) continue; // the thread exited
      threads.push({ pid, tid: Number(tid), comm, ticks: stat.ticks });
    }
  }
  return { root, threads };
}

function readComm(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Which role each thread has, and whether the edges' crypto pool threads could be told apart. */
export interface ThreadRoles {
  /** By tid. */
  readonly roles: ReadonlyMap<number, ThreadRole>;
  /** Why the pool threads are not told apart (they are in "edge other threads"), when not. */
  readonly workersUnknown?: string | undefined;
}

/**
 * The role of every thread of `snapshot`. Node names none of its threads on Linux (all `node`),
 * so the edges' JS worker threads (the crypto pool's: the only workers an edge starts) are found
 * through the profiler: under `--cpu-prof` every isolate gets a `v8:ProfEvntProc` thread, started
 * right after its own thread has booted. In an edge, the first one is the main isolate's; each
 * later one's isolate thread is the nearest thread before it in creation (tid) order that is
 * neither a profiler thread nor the main thread. That is checked against `workers` (by pid, the
 * worker-thread profiles each edge wrote: all of them, and the crypto pool's): when the counts
 * differ, or when an edge runs JS workers besides the pool's (loader hooks of a `NODE_OPTIONS`
 * `--import`: which is which cannot be told), no thread is called a pool thread and they are all
 * "edge other threads" (with V8's platform threads, libuv's pool, ...).
 */
export function classifyThreads(
  snapshot: ThreadSnapshot,
  workers: ReadonlyMap<number, { readonly js: number; readonly pool: number }>,
): ThreadRoles {
  const roles = new Map<number, ThreadRole>();
  const byPid = new Map<number, ThreadStat[]>();
  for (const t of snapshot.threads) {
    byPid.set(t.pid, [...(byPid.get(t.pid) ?? []), t]);
    roles.set(t.tid, baseRole(t, snapshot.root));
  }
  const pool: number[] = [];
  const mismatches: string[] = [];
  for (const [pid, threads] of byPid) {
    if (pid === snapshot.root) continue;
    const found = workerThreadsOf(threads.sort((a, b) => a.tid - b.tid));
    const expected = workers.get(pid) ?? { js: 0, pool: 0 };
    if (found.length !== expected.js) {
      mismatches.push(`edge ${pid}: ${found.length} found, ${expected.js} profiles`);
    } else if (expected.pool !== expected.js) {
      mismatches.push(`edge ${pid}: ${expected.js - expected.pool} JS workers besides the pool's`);
    } else {
      pool.push(...found);
    }
  }
  if (mismatches.length > 0) {
    return { roles, workersUnknown: `worker threads not told apart (${mismatches.join('; ')})` };
  }
  for (const tid of pool) roles.set(tid, 'edge worker threads (crypto pool)');
  return { roles };
}

function baseRole(t: ThreadStat, root: number): ThreadRole {
  if (t.comm === PROFILER_COMM) return 'V8 profiler threads';
  if (t.pid === root) return t.tid === t.pid ? 'supervisor main' : 'supervisor other threads';
  return t.tid === t.pid ? 'edge main threads' : 'edge other threads';
}

/** The JS worker threads of one process's threads (sorted by tid); see {@link classifyThreads}. */
function workerThreadsOf(threads: readonly ThreadStat[]): number[] {
  const found: number[] = [];
  let profilers = 0;
  let candidate: number | undefined;
  for (const t of threads) {
    if (t.comm !== PROFILER_COMM) {
      if (t.tid !== t.pid) candidate = t.tid;
      continue;
    }
    // The first profiler thread is the main isolate's.
    if (profilers++ > 0 && candidate !== undefined) found.push(candidate);
    candidate = undefined;
  }
  return found;
}

/** One row of the table. */
export interface ThreadCpuRow {
  readonly role: ThreadRole | 'total' | 'total without the profiler threads';
  readonly threads: number;
  readonly cpuSec: number;
  readonly usPerRequest: number;
}

/** One of the busiest threads of the run. */
export interface BusyThread extends ThreadStat {
  readonly role: ThreadRole;
  readonly usPerRequest: number;
}

/** What {@link threadCpuTable} computes. */
export interface ThreadCpuTable {
  readonly requests: number;
  /** Every role with a thread (the pool row only when told apart), then the totals. */
  readonly rows: readonly ThreadCpuRow[];
  /** The threads with the most CPU in the run, most first. */
  readonly busiest: readonly BusyThread[];
  /** Threads of the first snapshot gone at the end: their CPU in the run is not counted. */
  readonly exited: number;
  readonly workersUnknown?: string | undefined;
}

/** How many of the busiest threads the table lists. */
export const BUSIEST_THREADS = 8;

/**
 * The CPU each kind of thread spent between `before` and `after`, per request (`requests` in the
 * run). A thread started during the run counts from zero; one gone by `after` is not counted
 * (`exited` says how many). Roles come from `roles` (of `after`); a tid it lacks is an edge's
 * other thread.
 */
export function threadCpuTable(
  before: ThreadSnapshot,
  after: ThreadSnapshot,
  requests: number,
  roles: ThreadRoles,
): ThreadCpuTable {
  const start = new Map(before.threads.map((t) => [t.tid, t.ticks]));
  const perRequest = (sec: number) => (requests === 0 ? 0 : (sec * 1e6) / requests);
  const sums = new Map<ThreadRole, { threads: number; ticks: number }>();
  const busy: BusyThread[] = [];
  for (const t of after.threads) {
    const role = roles.roles.get(t.tid) ?? 'edge other threads';
    const ticks = Math.max(0, t.ticks - (start.get(t.tid) ?? 0));
    const sum = sums.get(role) ?? { threads: 0, ticks: 0 };
    sums.set(role, { threads: sum.threads + 1, ticks: sum.ticks + ticks });
    if (ticks > 0) busy.push({ ...t, ticks, role, usPerRequest: perRequest(seconds(ticks)) });
  }
  const row = (role: ThreadCpuRow['role'], threads: number, ticks: number): ThreadCpuRow => ({
    role,
    threads,
    cpuSec: seconds(ticks),
    usPerRequest: perRequest(seconds(ticks)),
  });
  const rows = THREAD_ROLES.filter((r) => sums.has(r)).map((r) => {
    const sum = sums.get(r) as { threads: number; ticks: number };
    return row(r, sum.threads, sum.ticks);
  });
  const total = (keep: (r: ThreadRole) => boolean) => {
    let threads = 0;
    let ticks = 0;
    for (const [role, sum] of sums) {
      if (!keep(role)) continue;
      threads += sum.threads;
      ticks += sum.ticks;
    }
    return { threads, ticks };
  };
  const all = total(() => true);
  rows.push(row('total', all.threads, all.ticks));
  if (sums.has('V8 profiler threads')) {
    const profiled = total((r) => r !== 'V8 profiler threads');
    rows.push(row('total without the profiler threads', profiled.threads, profiled.ticks));
  }
  const now = new Set(after.threads.map((t) => t.tid));
  return {
    requests,
    rows,
    busiest: busy.sort((a, b) => b.ticks - a.ticks || a.tid - b.tid).slice(0, BUSIEST_THREADS),
    exited: before.threads.filter((t) => !now.has(t.tid)).length,
    workersUnknown: roles.workersUnknown,
  };
}

function seconds(ticks: number): number {
  return ticks / TICKS_PER_SECOND;
}

/** The table as markdown, for the summary. */
export function renderThreadCpuTable(table: ThreadCpuTable): string {
  const total = table.rows.find((r) => r.role === 'total')?.cpuSec ?? 0;
  const pct = (sec: number) => (total === 0 ? 'n/a' : ((sec * 100) / total).toFixed(1));
  const notes = [
    table.workersUnknown === undefined
      ? ''
      : `- the crypto pool's threads are in "edge other threads": ${table.workersUnknown}`,
    table.exited === 0 ? '' : `- threads that exited during the run (not counted): ${table.exited}`,
  ].filter(Boolean);
  return [
    '## CPU per request by thread (timed run)',
    '',
    `utime + stime of every thread of the gateway (/proc/<pid>/task/<tid>/stat, ${1000 / TICKS_PER_SECOND} ms ticks) at the start and the end of the timed run, over its ${table.requests.toLocaleString('en-US')} requests. Unlike the profiles' samples, this is CPU only: time a thread waits for a core is not in it. The profiler's own threads are a row apart; its sampling also costs the profiled threads some CPU.`,
    '',
    ...notes,
    ...(notes.length > 0 ? [''] : []),
    '| threads | count | CPU s | µs/request | % of total |',
    '| --- | --: | --: | --: | --: |',
    ...table.rows.map(
      (r) =>
        `| ${r.role} | ${r.threads} | ${r.cpuSec.toFixed(2)} | ${r.usPerRequest.toFixed(0)} | ${pct(r.cpuSec)} |`,
    ),
    '',
    `### Busiest ${table.busiest.length} threads`,
    '',
    '| pid | tid | comm | role | CPU s | µs/request |',
    '| --: | --: | --- | --- | --: | --: |',
    ...table.busiest.map(
      (t) =>
        `| ${t.pid} | ${t.tid} | ${t.comm} | ${t.role} | ${seconds(t.ticks).toFixed(2)} | ${t.usPerRequest.toFixed(0)} |`,
    ),
    '',
  ].join('\n');
}

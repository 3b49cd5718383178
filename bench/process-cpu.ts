import { readdirSync, readFileSync } from 'node:fs';

/*
 * CPU time of a process tree, from /proc. On a 2-core machine shared by the load tool, the
 * proxy and the upstream, req/s mostly says who got the cores; CPU time per request says what
 * each request costs the proxy, whatever else ran. Linux only; elsewhere it reports nothing.
 */
/** USER_HZ, the unit of /proc's utime and stime: 100 on every mainstream Linux build. */
export const TICKS_PER_SECOND = 100;

/** A process's parent and CPU ticks so far (utime + stime, every thread). */
export interface ProcStat {
  ppid: number;
  ticks: number;
  /**
   * cutime + cstime: the ticks of the children it has reaped (and of theirs). Per process: a
   * thread's stat repeats its process's figure.
   */
  reapedTicks: number;
  /** The kernel's part of `ticks` (stime), and of `reapedTicks` (cstime). */
  sysTicks: number;
  reapedSysTicks: number;
}

/** The parent and ticks of `/proc/<path>/stat` (`<pid>` or `<pid>/task/<tid>`), if it exists. */
export function readStat(path: string): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${path}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // state=0, ppid=1, ... utime=11, stime=12, cutime=13, cstime=14 (fields 4, 14-17 of
    // proc(5), shifted by 3).
    return {
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
      reapedTicks: Number(fields[13]) + Number(fields[14]),
      sysTicks: Number(fields[12]),
      reapedSysTicks: Number(fields[14]),
    };
  } catch {
    return undefined; // the process exited between listing and reading
  }
}

/**
 * Seconds of CPU used so far by `root` and all its descendants (every thread included), those
 * that exited too: a process's ticks are its own while it is listed (running or a zombie), then
 * its reaper's reaped ticks. Without them a killed edge took its whole life's CPU out of the sum
 * (measured: a soak interval at -30 µs/req).
 */
export function treeCpuSeconds(root: number): number | undefined {
  return treeCpuTimes(root)?.total;
}

/** CPU seconds of a process tree (as treeCpuSeconds) and the part spent in the kernel. */
export interface CpuTimes {
  /** user + system */
  readonly total: number;
  /** system (stime): syscalls, and on loopback the TCP receive path of what the tree sends */
  readonly sys: number;
}

/** treeCpuSeconds with the kernel's part (stime, cstime) apart; undefined as treeCpuSeconds. */
export function treeCpuTimes(root: number): CpuTimes | undefined {
  const tree = treeProcesses(root);
  if (tree === undefined) return undefined;
  let ticks = 0;
  let sys = 0;
  for (const stat of tree.values()) {
    ticks += stat.ticks + stat.reapedTicks;
    sys += stat.sysTicks + stat.reapedSysTicks;
  }
  return { total: ticks / TICKS_PER_SECOND, sys: sys / TICKS_PER_SECOND };
}

/** `root` and all its descendants, by pid; undefined when `root` is gone (or not on Linux). */
export function treeProcesses(root: number): Map<number, ProcStat> | undefined {
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return undefined;
  }
  const stats = new Map<number, ProcStat>();
  for (const pid of pids) {
    const stat = readStat(String(pid));
    if (stat) stats.set(pid, stat);
  }
  if (!stats.has(root)) return undefined;
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = stats.get(p)?.ppid) {
      if (p === root) return true;
    }
    return false;
  };
  return new Map([...stats].filter(([pid]) => inTree(pid)));
}

/** The whole machine's CPU ticks so far, all cores: idle (idle + iowait) and all. */
export interface MachineTicks {
  idle: number;
  total: number;
}

/**
 * The first line of /proc/stat (proc(5): user nice system idle iowait irq softirq steal ...,
 * USER_HZ ticks summed over the cores); guest time is already inside user, so it is left out.
 * Undefined off Linux.
 */
export function machineTicks(): MachineTicks | undefined {
  let line: string;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    return undefined;
  }
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (line.slice(0, 4) !== 'cpu ' || fields.length < 5 || fields.some((n) => !Number.isFinite(n))) {
    return undefined;
  }
  const total = fields.reduce((a, b) => a + b, 0);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total };
}

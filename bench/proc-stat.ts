import { readdirSync, readFileSync } from 'node:fs';

/** The fields of `/proc/<pid>/stat` the bench's clean-up needs (proc(5)). */
export interface ProcStat {
  readonly pid: number;
  /** One letter: `R`, `S`, `Z` (zombie: exited, not yet reaped)... */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  /** The session: a detached child (`setsid`) opens its own, of its pid. */
  readonly session: number;
  /** Clock ticks after boot: with the pid, names one process even after the pid is reused. */
  readonly startTime: number;
}

/** The stat of `pid`, or undefined when no such process exists (reaped, or never was). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields 3+ follow the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    pid,
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    session: Number(fields[3]),
    startTime: Number(fields[19]),
  };
}

/** Whether the process `pid` that started at `startTime` still runs (a zombie does not). */
export function isAlive(pid: number, startTime: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z';
}

/** Every process on the machine, zombies included. */
export function allProcesses(): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat) all.push(stat);
  }
  return all;
}

/** When the machine booted, Unix seconds (`btime` of `/proc/stat`); 0 when unknown. */
export function bootTimeSeconds(): number {
  try {
    return Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

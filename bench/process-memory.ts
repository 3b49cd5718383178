import { readdirSync, readFileSync } from 'node:fs';

/** Direct children of `parent` (from /proc/<pid>/stat); empty off Linux or when it is gone. */
export function childPids(parent: number): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) children.push(Number(name));
    } catch {
      // The process exited between listing and reading.
    }
  }
  return children.sort((a, b) => a - b);
}

/** Resident set size of `pid` in KiB (`VmRSS` of /proc/<pid>/status), undefined when gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    return parseVmRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The `VmRSS:  1234 kB` line of a /proc/<pid>/status text, in KiB; undefined when absent. */
export function parseVmRss(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

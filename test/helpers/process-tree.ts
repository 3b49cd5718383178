import { readdir, readFile } from 'node:fs/promises';

/**
 * Pids of the live edge processes of a gateway, read from /proc: the children of the
 * supervisor whose command line runs `edge.js`. Tests use this rather than pids parsed from
 * log lines, which a changed message would silently turn into an empty list.
 */
export async function edgePids(supervisorPid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const [stat, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
    ]);
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === supervisorPid && cmdline.split('\0').some((arg) => arg.endsWith('edge.js')))
      pids.push(pid);
  }
  return pids.sort((a, b) => a - b);
}

/**
 * Whether every thread of `pid` has exited, so its sockets are closed. A SIGKILLed process
 * shows as a zombie as soon as its main thread is dead, while its other threads (and the
 * sockets they share) may still be going: the process counts as exited once it is reaped, or
 * is a zombie with no thread left but the main one.
 */
export async function hasExited(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return true;
  if (!stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
  const threads = await readdir(`/proc/${pid}/task`).catch(() => []);
  return threads.length <= 1;
}

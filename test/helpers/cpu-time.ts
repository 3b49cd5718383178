/**
 * CPU milliseconds this process spends running `work` (every thread: user + system). Unlike
 * wall time, a busy machine does not inflate it (the process waits for a core off the clock),
 * so a bound on it tests the algorithm, not the machine's load.
 */
export function cpuMs(work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

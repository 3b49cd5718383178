import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The JS heap of one process's main thread, as V8 counts it in a diagnostic report. */
export interface EdgeHeap {
  /** Bytes held by live and not yet collected objects (`javascriptHeap.usedMemory`). */
  readonly usedBytes: number;
  /** Bytes V8 has reserved for the heap (`javascriptHeap.totalMemory`). */
  readonly totalBytes: number;
  /** Bytes outside the heap that JS objects hold: Buffers, ArrayBuffers (`externalMemory`). */
  readonly externalBytes: number;
}

/**
 * The signal that makes a soak's edges write a diagnostic report. The gateway handles SIGUSR1
 * (log level), SIGHUP, SIGINT and SIGTERM; SIGUSR2 is free. Without the flags below it would
 * terminate the process (Node installs no handler for it).
 */
export const HEAP_REPORT_SIGNAL = 'SIGUSR2';

/**
 * Node flags that make a process (and the edges its supervisor forks with the same execArgv)
 * write a report into `dir` on {@link HEAP_REPORT_SIGNAL}: heap figures without a hook in the
 * gateway's code. `--report-compact` keeps each report on one line (it is read, then deleted).
 */
export function heapReportArgs(dir: string): string[] {
  return [
    '--report-on-signal',
    `--report-signal=${HEAP_REPORT_SIGNAL}`,
    `--report-directory=${dir}`,
    '--report-compact',
  ];
}

/** `javascriptHeap` of a report's JSON text; undefined when the text is not a whole report. */
export function parseHeapReport(text: string): EdgeHeap | undefined {
  let report: unknown;
  try {
    report = JSON.parse(text);
  } catch {
    return undefined; // still being written: the caller reads it again
  }
  const heap = (report as { javascriptHeap?: Record<string, unknown> } | null)?.javascriptHeap;
  const { usedMemory, totalMemory, externalMemory } = heap ?? {};
  if (typeof usedMemory !== 'number' || typeof totalMemory !== 'number') return undefined;
  if (typeof externalMemory !== 'number') return undefined;
  return { usedBytes: usedMemory, totalBytes: totalMemory, externalBytes: externalMemory };
}

const POLL_MS = 25;

/**
 * Signals every pid (each started with {@link heapReportArgs}`(dir)`), waits up to `timeoutMs`
 * for their reports, and returns each one's heap keyed by pid; a pid whose report did not come
 * (gone, or paused) is left out, and its late report is dropped by the next call. Reports are
 * deleted once read: they hold the environment.
 * The edges are signalled together, so each pauses once, for the few ms a report takes.
 */
export async function edgesHeap(
  pids: readonly number[],
  dir: string,
  timeoutMs = 5000,
): Promise<Record<string, EdgeHeap>> {
  // A report that came after an earlier call gave up (the edge was paused) is stale: drop it.
  for (const [, file] of await reportFiles(dir, new Set(pids))) await unlink(file);
  const pending = new Set<number>();
  for (const pid of pids) {
    try {
      process.kill(pid, HEAP_REPORT_SIGNAL);
      pending.add(pid);
    } catch {
      // The edge exited since it was listed.
    }
  }
  const heaps: Record<string, EdgeHeap> = {};
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0 && Date.now() < deadline) {
    await sleep(POLL_MS);
    for (const [pid, file] of await reportFiles(dir, pending)) {
      const heap = parseHeapReport(await readFile(file, 'utf8'));
      if (heap === undefined) continue;
      heaps[String(pid)] = heap;
      pending.delete(pid);
      await unlink(file);
    }
  }
  return heaps;
}

/** Reports in `dir` of the main thread (thread id 0) of each of `pids`. */
async function reportFiles(dir: string, pids: ReadonlySet<number>): Promise<[number, string][]> {
  const found: [number, string][] = [];
  // Node names them report.<date>.<time>.<pid>.<thread id>.<sequence>.json.
  for (const name of await readdir(dir)) {
    const m = /^report\.\d+\.\d+\.(\d+)\.0\.\d+\.json$/.exec(name);
    const pid = Number(m?.[1]);
    if (pids.has(pid)) found.push([pid, join(dir, name)]);
  }
  return found;
}

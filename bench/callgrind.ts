// valgrind's callgrind as `--instructions` drives it: the launcher that puts the gateway under
// it (instrumentation off from the start), the edge's pid, `callgrind_control` to zero, switch
// and dump one process's counters, and the instruction total of a dump file.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError } from './bench-error.js';
import { findExecutable } from './find-executable.js';
import { readStat } from './process-cpu.js';

/** The two programs `--instructions` needs, as found on PATH. */
export interface CallgrindTools {
  readonly valgrind: string;
  readonly callgrindControl: string;
  /** `valgrind --version`'s line, e.g. `valgrind-3.19.0`. */
  readonly version: string;
}

/** How long one `callgrind_control` call (or `valgrind --version`) may take, ms. */
const CONTROL_TIMEOUT_MS = 30_000;
/** How long a dump file may take to show up whole after `callgrind_control -d` said OK, ms. */
const DUMP_WAIT_MS = 10_000;

/** valgrind and callgrind_control; throws `BENCH_NO_VALGRIND` (with the apt line) without them. */
export async function findCallgrind(): Promise<CallgrindTools> {
  const valgrind = findExecutable('valgrind');
  const callgrindControl = findExecutable('callgrind_control');
  if (valgrind === undefined || callgrindControl === undefined) {
    throw new BenchError(
      'BENCH_NO_VALGRIND',
      `--instructions needs valgrind's callgrind (${valgrind === undefined ? 'valgrind' : 'callgrind_control'} not found on PATH): apt-get install valgrind`,
    );
  }
  const { stdout } = await run(valgrind, ['--version']);
  return { valgrind, callgrindControl, version: stdout.trim() };
}

/** Where one gateway's callgrind files go, and the vgdb pipes its control calls use. */
export interface CallgrindFiles {
  /** Directory of `callgrind.out.<pid>` and its dumps `callgrind.out.<pid>.<n>`. */
  readonly dir: string;
  /** `--vgdb-prefix`: the FIFOs valgrind and callgrind_control talk through, below the run dir. */
  readonly vgdbPrefix: string;
}

/** The files of a gateway whose callgrind output goes below `dir`. */
export function callgrindFilesIn(dir: string): CallgrindFiles {
  return { dir, vgdbPrefix: join(dir, 'vgdb') };
}

/**
 * The launcher (`GatewayFeatures.launcher`) that runs node under callgrind: every process of the
 * tree followed across fork and exec (the supervisor's edges), no instruction counted until
 * `callgrind_control -i on`, code written at run time (V8's JIT, outside any file) checked for
 * changes, one output file per pid.
 */
export function callgrindLauncher(valgrind: string, files: CallgrindFiles): string[] {
  return [
    valgrind,
    '--tool=callgrind',
    '--trace-children=yes',
    '--instr-atstart=no',
    '--smc-check=all-non-file',
    `--vgdb-prefix=${files.vgdbPrefix}`,
    `--callgrind-out-file=${join(files.dir, 'callgrind.out.%p')}`,
  ];
}

/**
 * Whether a `/proc/<pid>/cmdline` (arguments split on NUL) is an edge's: one argument ends with
 * `worker/edge.js`. Under valgrind the line is `valgrind.bin <valgrind options> <node> [node
 * flags] <dir>/worker/edge.js`, without it `<node> [node flags] <dir>/worker/edge.js`.
 */
export function isEdgeCommandLine(cmdline: string): boolean {
  return cmdline
    .split('\0')
    .some((arg) => arg === 'worker/edge.js' || arg.endsWith('/worker/edge.js'));
}

/**
 * The pid of the one edge among the children of `root` (the gateway's supervisor). Throws
 * `BENCH_CALLGRIND` when there is none or more than one (`--instructions` runs one edge).
 */
export function findEdgePid(root: number): number {
  const edges: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || readStat(name)?.ppid !== root) continue;
    try {
      if (isEdgeCommandLine(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) edges.push(pid);
    } catch {
      // It exited between listing and reading.
    }
  }
  if (edges.length !== 1) {
    throw new BenchError(
      'BENCH_CALLGRIND',
      `expected one edge (a child of the gateway ${root} running worker/edge.js), found ${edges.length}${edges.length > 0 ? ` (${edges.join(', ')})` : ''}`,
    );
  }
  return edges[0] as number;
}

/** What `callgrind_control` is asked of one process. */
export type CallgrindCommand = 'zero' | 'instrumentation on' | 'instrumentation off' | 'dump';

const CONTROL_FLAGS: Readonly<Record<CallgrindCommand, readonly string[]>> = {
  zero: ['-z'],
  'instrumentation on': ['-i', 'on'],
  'instrumentation off': ['-i', 'off'],
  dump: ['-d'],
};

/**
 * Runs `callgrind_control <flags> <pid>` through the run's vgdb pipes, at most
 * {@link CONTROL_TIMEOUT_MS}. It exits 0 whether or not the process answered, so success is its
 * `OK.` line; anything else throws `BENCH_CALLGRIND` with its output.
 */
export async function callgrindControl(
  tools: Pick<CallgrindTools, 'callgrindControl'>,
  files: CallgrindFiles,
  pid: number,
  command: CallgrindCommand,
): Promise<void> {
  const args = [`--vgdb-prefix=${files.vgdbPrefix}`, ...CONTROL_FLAGS[command], String(pid)];
  let out: { stdout: string; stderr: string };
  try {
    out = await run(tools.callgrindControl, args);
  } catch (err) {
    throw new BenchError(
      'BENCH_CALLGRIND',
      `callgrind_control ${command} of ${pid}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!/^\s*OK\.\s*$/m.test(out.stdout)) {
    throw new BenchError(
      'BENCH_CALLGRIND',
      `callgrind_control ${command} of ${pid} did not answer OK: ${`${out.stdout}${out.stderr}`.trim().slice(0, 500)}`,
    );
  }
}

/** The names of `pid`'s dump files now in `files.dir` (`callgrind.out.<pid>.<n>`). */
export async function dumpFilesOf(files: CallgrindFiles, pid: number): Promise<Set<string>> {
  const prefix = `callgrind.out.${pid}.`;
  return new Set((await readdir(files.dir)).filter((f) => f.startsWith(prefix)));
}

/**
 * Dumps `pid`'s counters (`callgrind_control -d`) and returns the instructions (Ir) of the new
 * dump file, the one not in `before`. Throws `BENCH_CALLGRIND` when no single new file appears
 * with a total within {@link DUMP_WAIT_MS}.
 */
export async function dumpInstructions(
  tools: Pick<CallgrindTools, 'callgrindControl'>,
  files: CallgrindFiles,
  pid: number,
): Promise<{ file: string; instructions: number }> {
  const before = await dumpFilesOf(files, pid);
  await callgrindControl(tools, files, pid, 'dump');
  const deadline = Date.now() + DUMP_WAIT_MS;
  for (;;) {
    const fresh = [...(await dumpFilesOf(files, pid))].filter((f) => !before.has(f));
    let problem = `no new callgrind.out.${pid}.<n> in ${files.dir}`;
    if (fresh.length > 1) problem = `${fresh.length} new dump files (${fresh.join(', ')})`;
    if (fresh.length === 1) {
      const file = join(files.dir, fresh[0] as string);
      try {
        return { file, instructions: callgrindTotal(await readFile(file, 'utf8'), file) };
      } catch (err) {
        problem = (err as Error).message; // maybe written still: read again
      }
    }
    if (Date.now() >= deadline) {
      throw new BenchError('BENCH_CALLGRIND', `after callgrind_control -d ${pid}: ${problem}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The instructions executed (Ir) in one callgrind output file: the first number of its
 * `totals:` line, else of its `summary:` line (callgrind writes both, equal). When the file has
 * an `events:` line, Ir must be its first event (what `--tool=callgrind` counts by default).
 * Throws `BENCH_CALLGRIND`, naming `source`, when there is neither line or the number is not one.
 */
export function callgrindTotal(text: string, source: string): number {
  const lines = text.split('\n');
  const value = (key: string): string | undefined =>
    lines
      .find((l) => l.startsWith(`${key}:`))
      ?.slice(key.length + 1)
      .trim();
  const events = value('events');
  if (events !== undefined && events.split(/\s+/)[0] !== 'Ir') {
    throw new BenchError(
      'BENCH_CALLGRIND',
      `${source}: the first event is not Ir (events: ${events.slice(0, 100)})`,
    );
  }
  const total = value('totals') ?? value('summary');
  if (total === undefined) {
    throw new BenchError('BENCH_CALLGRIND', `${source}: no totals: or summary: line`);
  }
  const first = total.split(/\s+/)[0] ?? '';
  const instructions = Number(first);
  if (!/^\d+$/.test(first) || !Number.isSafeInteger(instructions)) {
    throw new BenchError(
      'BENCH_CALLGRIND',
      `${source}: the total is not a count of instructions: ${total.slice(0, 100)}`,
    );
  }
  return instructions;
}

/** `execFile` bounded by {@link CONTROL_TIMEOUT_MS}; rejects on a non-zero exit or the timeout. */
function run(file: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { timeout: CONTROL_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message.trim()} ${stderr}`.trim()));
        else resolve({ stdout, stderr });
      },
    );
  });
}

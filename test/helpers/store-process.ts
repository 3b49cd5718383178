import { type ChildProcess, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const CHILD = join(import.meta.dirname, 'store-child.ts');
const CHURN = join(import.meta.dirname, 'store-churn.ts');

// The node command line of this test (tap's TypeScript loader among its flags), so the child
// runs the same .ts sources. tap's coverage hook (processinfo) writes files at exit: another
// user cannot, and under a file size limit it is killed by SIGXFSZ. It also re-adds itself to
// the NODE_OPTIONS of every process spawned from here, so `coverage: false` has env(1) drop
// NODE_OPTIONS on the way.
function nodeCommand(coverage: boolean): string[] {
  if (coverage) return [process.execPath, ...process.execArgv];
  const flags = process.execArgv.filter((arg) => !arg.includes('processinfo'));
  return ['env', '-u', 'NODE_OPTIONS', process.execPath, ...flags];
}

/** What `store-child.ts open` printed: `ok` with the token count, or the error. */
export interface OpenAnswer {
  ok?: true;
  tokens?: number;
  /** timed-open only: ms the open, count and close took in the child (its start-up left out). */
  openMs?: number;
  code?: string;
  message?: string;
}

/**
 * Runs `store-child.ts open <dataDir> <ro|rw>` (as `uid` when given) and returns its answer;
 * throws when it has not answered within `timeout` ms (it is killed).
 */
export function openInChild(
  dataDir: string,
  access: 'ro' | 'rw',
  uid?: number,
  timeout = 60_000,
  mode: 'open' | 'timed-open' = 'open',
): OpenAnswer {
  const [command, ...args] = nodeCommand(uid === undefined);
  const run = spawnSync(command!, [...args, CHILD, mode, dataDir, access], {
    encoding: 'utf8',
    timeout,
    // A child stuck in a system call never runs the SIGTERM handlers tap's hooks install.
    killSignal: 'SIGKILL',
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  return answerOf(run);
}

/**
 * Why a child process of user `uid` cannot run the store child here (say, the checkout is in a
 * home directory that user cannot enter), or undefined when it can.
 */
export function cannotRunAs(uid: number): string | undefined {
  const [command, ...args] = nodeCommand(false);
  const check = `require('node:fs').accessSync(${JSON.stringify(CHILD)}, 4)`;
  const run = spawnSync(command!, [...args, '-e', check], { uid, gid: uid, encoding: 'utf8' });
  return run.status === 0 ? undefined : `user ${uid} cannot read ${CHILD}: ${run.stderr.trim()}`;
}

/**
 * Opens a writer in a child whose file size limit (RLIMIT_FSIZE, bash `ulimit -f`) is `kib`
 * KiB, SIGXFSZ ignored: a write past it fails (EFBIG, or short: LMDB says EIO). Needs bash.
 */
export function openWithFileSizeLimit(dataDir: string, kib: number): OpenAnswer {
  const script = `trap '' XFSZ; ulimit -f ${kib}; exec "$@"`;
  const command = [...nodeCommand(false), CHILD, 'open', dataDir, 'rw'];
  const run = spawnSync('bash', ['-c', script, 'bash', ...command], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return answerOf(run);
}

function answerOf(run: SpawnSyncReturns<string>): OpenAnswer {
  const line = run.stdout.trim().split('\n').at(-1);
  if (run.status !== 0 || !line) {
    throw new Error(`store child failed (${run.status ?? run.signal}): ${run.stderr}`);
  }
  return JSON.parse(line) as OpenAnswer;
}

/** A `store-child.ts follow` or `hold` process: one JSON command in, one JSON answer out. */
export interface Follower {
  ask: (command: { op: string; [field: string]: unknown }) => Promise<Record<string, unknown>>;
  proc: ChildProcess;
}

/** Starts a reader process on `dataDir` and resolves once it has opened the store. */
export function startFollower(dataDir: string): Promise<Follower> {
  return startChild('follow', dataDir);
}

/**
 * Starts a process that holds the store of `dataDir` open as a writer (as a running supervisor
 * does) and resolves once it has opened it. See store-child.ts `hold` for its commands.
 */
export function startHolder(dataDir: string): Promise<Follower> {
  return startChild('hold', dataDir);
}

async function startChild(mode: 'follow' | 'hold', dataDir: string): Promise<Follower> {
  const [command, ...args] = nodeCommand(true);
  const proc = spawn(command!, [...args, CHILD, mode, dataDir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the ${mode} process ended`);
    return JSON.parse(value) as Record<string, unknown>;
  };
  const ready = await next();
  if (ready.ready !== true)
    throw new Error(`${mode} process did not start: ${JSON.stringify(ready)}`);
  return {
    proc,
    ask: (command) => {
      proc.stdin!.write(`${JSON.stringify(command)}\n`);
      return next();
    },
  };
}

/**
 * Why tmpfs mounts cannot be made here (not root, no mount(8), a container without
 * CAP_SYS_ADMIN), or undefined when they can: the test of a full disk and of a read-only file
 * system use real mounts.
 */
export function mountUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const dir = mkdtempSync(join(tmpdir(), 'proxyauth-mount-probe-'));
  try {
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    if (mounted.status !== 0) return `mount failed: ${String(mounted.stderr ?? mounted.error)}`;
    spawnSync('umount', [dir]);
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A tmpfs of `bytes` mounted on a new directory, and how to change or remove it. */
export interface Tmpfs {
  dir: string;
  remount: (options: string) => void;
  unmount: () => void;
}

/** Mounts a tmpfs of `bytes` (needs root, see mountUnsupported). */
export function mountTmpfs(bytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'proxyauth-tmpfs-'));
  run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    remount: (options) => run('mount', ['-o', `remount,${options}`, dir]),
    unmount: () => {
      if (!mounted) return;
      mounted = false;
      // A lazy unmount still detaches it when a failed test left a file open in it.
      if (spawnSync('umount', [dir]).status !== 0) run('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function run(command: string, args: string[]): void {
  const done = spawnSync(command, args, { encoding: 'utf8' });
  if (done.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed: ${done.stderr || done.error}`);
  }
}

/** What `store-churn.ts` printed: how many opens it made, how many failed, and the first errors. */
export interface ChurnTally {
  opens: number;
  failures: number;
  errors: { code: string; message: string }[];
}

/** One of the modes of store-churn.ts. */
export type ChurnMode = 'ro' | 'rw' | 'create' | 'ro-newest' | 'rw-newest';

/**
 * Runs one `store-churn.ts` per mode (each opens, uses and closes a store of `dir` in a loop,
 * see there), starts them together once all are loaded, and resolves with their tallies. Each
 * loops `forMs`, and on until it opened the store `minOpens` times (at most 30 s).
 */
export async function churnTogether(
  dir: string,
  modes: readonly ChurnMode[],
  forMs: number,
  minOpens = 0,
): Promise<ChurnTally[]> {
  const [command, ...args] = nodeCommand(false);
  const children = modes.map((mode) => {
    const proc = spawn(command!, [...args, CHURN, dir, mode, String(forMs), String(minOpens)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const next = async (): Promise<Record<string, unknown>> => {
      const { value, done } = await lines.next();
      if (done) throw new Error(`store churn (${mode}) ended: ${stderr}`);
      return JSON.parse(value) as Record<string, unknown>;
    };
    return { proc, next };
  });
  await Promise.all(children.map((child) => child.next()));
  for (const child of children) child.proc.stdin!.end('go\n');
  return Promise.all(children.map(async (child) => (await child.next()) as unknown as ChurnTally));
}

import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { type Readiness, readReadiness } from '../../supervisor/ready-signal.js';
import { CLI, READY_FD, waitFor } from './gateway.js';

/** How a finished CLI run ended and what it printed. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Written to stdin, which is then closed; without it stdin is closed at once. */
  input?: string;
  /** Added to the environment (after PROXYAUTH_CONFIG_DIR / PROXYAUTH_DATA_DIR are removed). */
  env?: Record<string, string>;
  /** Adds `--ready-fd 3` and a pipe on fd 3, read by `CliProcess.ready`. */
  readyFd?: boolean;
}

/** A CLI process left running, with its output captured as it arrives. */
export interface CliProcess {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * With `readyFd`: the readiness line (`{ready: false}` when the process closed the fd without
   * one, e.g. it died). Rejects after `timeoutMs`, or at once without `readyFd`.
   */
  ready: (timeoutMs?: number) => Promise<Readiness>;
  /** True once `check(stdout, stderr)` holds, false on timeout or when the process exits first. */
  waitForOutput: (
    check: (stdout: string, stderr: string) => boolean,
    timeoutMs: number,
  ) => Promise<boolean>;
  /** SIGTERM (SIGKILL after `graceMs`), then the exit. Safe to call more than once. */
  stop: (graceMs?: number) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * The caller's environment without the variables that pick the config and data dirs, so a
 * developer's own settings never leak into a test.
 */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.PROXYAUTH_CONFIG_DIR;
  delete env.PROXYAUTH_DATA_DIR;
  return { ...env, ...extra };
}

/** Starts the compiled CLI (`dist/supervisor/cli.js`) with `args`. */
export function spawnCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const readyArgs = options.readyFd ? ['--ready-fd', String(READY_FD)] : [];
  const proc = spawn(process.execPath, [CLI, ...args, ...readyArgs], {
    stdio: options.readyFd ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
    env: cliEnv(options.env),
  });
  let readiness: Promise<Readiness> | undefined;
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  // A child that exits before reading its stdin would otherwise raise EPIPE here.
  proc.stdin!.on('error', () => {});
  proc.stdin!.end(options.input ?? '');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    ready: (timeoutMs = 30_000) => {
      if (!options.readyFd) return Promise.reject(new Error('spawned without readyFd'));
      readiness ??= readReadiness(proc.stdio[READY_FD] as Readable, timeoutMs);
      return readiness;
    },
    waitForOutput: async (check, timeoutMs) =>
      (await waitFor(() => done || check(out, err), timeoutMs)) && check(out, err),
    stop: async (graceMs = 15_000) => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Runs the CLI to completion; SIGKILLs it after `timeoutMs` so a hang fails the test. */
export async function runCli(
  args: readonly string[],
  options: CliOptions = {},
  timeoutMs = 30_000,
): Promise<CliResult> {
  const child = spawnCli(args, options);
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await child.exited;
  clearTimeout(timer);
  return { code, signal, stdout: child.stdout(), stderr: child.stderr() };
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

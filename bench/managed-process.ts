import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { recordChild } from './run-ledger.js';

/** How a managed process ended; `error` is set when it could not be started at all. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

/** Options for {@link spawnManaged}. */
export interface SpawnManagedOptions {
  readonly stdio?: StdioOptions;
  readonly env?: NodeJS.ProcessEnv;
}

/** A child started in its own process group, so that it and its own children stop together. */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Settles once the child is gone; never rejects. */
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(this.#settle({ code, signal })));
      child.on('error', (error) => {
        // 'error' without a pid means spawn failed and no 'exit' will follow.
        if (child.pid === undefined) resolve(this.#settle({ code: null, signal: null, error }));
      });
    });
  }

  /** True until the child has exited. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /**
   * Sends SIGTERM and waits up to `graceMs`; then SIGKILLs the whole group. The group is
   * SIGKILLed after a clean exit too, so that grandchildren left behind do not outlive the run.
   */
  async stop(graceMs = 5000): Promise<ExitInfo> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.killGroup('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.killGroup('SIGKILL');
    return this.exited;
  }

  /** Signals every process in the child's group; a group already gone is not an error. */
  killGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  #settle(info: ExitInfo): ExitInfo {
    this.#exit ??= info;
    return this.#exit;
  }
}

/** Starts `command` as the leader of a new process group. */
export function spawnManaged(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnManagedOptions = {},
): ManagedProcess {
  const child = spawn(command, args, {
    detached: true,
    stdio: options.stdio ?? 'ignore',
    env: options.env ?? process.env,
  });
  recordChild('group', child.pid);
  return new ManagedProcess(name, child);
}

/** Human summary of an exit, e.g. `exit code 1` or `signal SIGKILL`. */
export function describeExit(info: ExitInfo): string {
  if (info.error) return `failed to start: ${info.error.message}`;
  if (info.signal) return `signal ${info.signal}`;
  return `exit code ${info.code}`;
}

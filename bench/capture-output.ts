import { spawn } from 'node:child_process';
import { recordChild } from './run-ledger.js';

/** Result of {@link captureOutput}. */
export interface CapturedOutput {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to completion and collects its output; a non-zero exit is not an error
 * (`wrk -v` exits 1). `signal` aborts the command, e.g. on Ctrl-C.
 */
export function captureOutput(
  command: string,
  args: readonly string[],
  signal?: AbortSignal,
): Promise<CapturedOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    recordChild('process', child.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError } from './bench-error.js';
import { describeExit, type ManagedProcess } from './managed-process.js';

/** Options for {@link waitForHttp}. */
export interface WaitForHttpOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs?: number;
  /** Gives up early when this process exits while we wait. */
  readonly process?: ManagedProcess;
}

const POLL_INTERVAL_MS = 100;

/**
 * Resolves with the first HTTP response of any status: a service is ready once it answers.
 * Connection errors mean "not yet"; throws `BENCH_NOT_READY` after the timeout.
 */
export async function waitForHttp(
  url: string,
  options: WaitForHttpOptions = {},
): Promise<Response> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    const proc = options.process;
    if (proc && !proc.running) {
      const info = await proc.exited;
      throw new BenchError(
        'BENCH_NOT_READY',
        `${proc.name} exited while starting (${describeExit(info)})`,
      );
    }
    try {
      return await fetch(url, {
        method: options.method ?? 'GET',
        headers: options.headers,
        body: options.body,
        signal: AbortSignal.timeout(2000),
      });
    } catch (err) {
      lastError = err;
      await sleep(POLL_INTERVAL_MS);
    }
  }
  throw new BenchError('BENCH_NOT_READY', `no answer from ${url} in time`, { cause: lastError });
}

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BenchError } from './bench-error.js';
import type { LoadResult } from './load-result.js';
import { benchDir } from './paths.js';
import type {
  Argon2WorkerData,
  Argon2WorkerDone,
  Argon2WorkerMessage,
} from './raw-argon2-message.js';

/** The compiled worker entry, next to this module (dist/bench). */
export const argon2WorkerPath = join(benchDir, 'raw-argon2-worker.js');

/** One raw-Argon2 measurement. */
export interface Argon2Request {
  readonly hash: string;
  readonly password: string;
  /** Worker threads, one per core by default. */
  readonly threads?: number;
  readonly durationSec: number;
  /** The worker entry; {@link argon2WorkerPath} by default (tests pass the built one). */
  readonly workerPath?: string;
}

/** A raw-Argon2 run as a load result, plus the runner's CPU time per verification (µs). */
export interface Argon2Measurement {
  readonly result: LoadResult;
  readonly cpuUsPerVerification: number | undefined;
}

/**
 * Verifies `hash` with `password` on `threads` worker threads (@node-rs/argon2, the gateway's
 * own verify) back to back for `durationSec`, no gateway and no HTTP: the ceiling of the login
 * scenario on this machine. Verifications per second are reported as requests per second; a
 * verification that answers false counts as an error response (the check before timing fails).
 */
export async function measureArgon2(request: Argon2Request): Promise<Argon2Measurement> {
  const threads = request.threads ?? availableParallelism();
  const data: Argon2WorkerData = {
    hash: request.hash,
    password: request.password,
    durationMs: request.durationSec * 1000,
  };
  const path = request.workerPath ?? argon2WorkerPath;
  const workers = Array.from({ length: threads }, () => new Worker(path, { workerData: data }));
  try {
    const outcomes = workers.map(outcome);
    await Promise.all(outcomes.map((o) => o.ready));
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (const worker of workers) worker.postMessage('go');
    const results = await Promise.all(outcomes.map((o) => o.done));
    const elapsedSec = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    return summarizeArgon2(results, elapsedSec, cpu.user + cpu.system);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The measurement from the workers' results, the wall time and the CPU time (µs) spent. */
function summarizeArgon2(
  results: readonly Argon2WorkerDone[],
  elapsedSec: number,
  cpuUs: number,
): Argon2Measurement {
  const latencies = results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const requests = latencies.length;
  const result: LoadResult = {
    requests,
    durationSec: elapsedSec,
    requestsPerSec: requests / elapsedSec,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP99Ms: percentile(latencies, 0.99),
    latencyMaxMs: latencies.at(-1) ?? 0,
    errorResponses: results.reduce((sum, r) => sum + r.refused, 0),
    socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
  };
  const cpuUsPerVerification = requests === 0 ? undefined : cpuUs / requests;
  return { result, cpuUsPerVerification };
}

/** The value at quantile `q` (0..1) of ascending `sorted` (nearest rank); 0 when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

/** The worker's two awaited messages: loaded (and the pair verified), then done. */
function outcome(worker: Worker): {
  ready: Promise<void>;
  done: Promise<Argon2WorkerDone>;
} {
  let fail: (err: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {});
  worker.once('error', (err) => fail(err));
  worker.once('exit', (code) =>
    fail(new BenchError('BENCH_ARGON2', `argon2 worker exited (${code}) before it was done`)),
  );
  const message = (type: Argon2WorkerMessage['type']) =>
    new Promise<Argon2WorkerMessage>((resolve) => {
      const listen = (m: Argon2WorkerMessage) => {
        if (m.type !== type) return;
        worker.off('message', listen);
        resolve(m);
      };
      worker.on('message', listen);
    });
  const ready = Promise.race([message('ready'), failed]).then((m) => {
    if (m.type === 'ready' && !m.verifies) {
      throw new BenchError('BENCH_WRONG_ANSWER', 'raw-argon2: the hash does not verify');
    }
  });
  const done = Promise.race([message('done'), failed]) as Promise<Argon2WorkerDone>;
  // Awaited only once every worker is ready: a refusal before that must not go unhandled.
  done.catch(() => {});
  return { ready, done };
}

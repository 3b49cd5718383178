import { BenchError } from './bench-error.js';
import type { CleanupStack } from './cleanup-stack.js';
import { freePort } from './free-port.js';
import { describeExit, spawnManaged } from './managed-process.js';
import type { Service } from './service.js';
import type { UpstreamMessage } from './upstream-message.js';

const START_TIMEOUT_MS = 20_000;

/** Settings of the floor service (bench/floor-server.ts). */
export interface FloorParams {
  /** The compiled `floor-server.js` (dist/bench, beside the runner). */
  readonly entry: string;
  readonly upstreamPort: number;
  /** Relay processes on the shared port, as many as the gateway's edges. */
  readonly processes: number;
  /** Sent by its scenarios and ignored: the same Authorization header the gateway gets. */
  readonly authHeaders: Readonly<Record<string, string>>;
}

/**
 * Starts the floor (a parent and its relay processes, one process tree for the CPU accounting)
 * and waits until every relay listens. Throws `BENCH_NOT_READY` when it exits or is not ready
 * in time.
 */
export async function startFloor(p: FloorParams, cleanup: CleanupStack): Promise<Service> {
  const port = await freePort();
  const args = [
    p.entry,
    '--port',
    String(port),
    '--upstream',
    `127.0.0.1:${p.upstreamPort}`,
    '--processes',
    String(p.processes),
  ];
  const proc = spawnManaged('floor', process.execPath, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanup.add('stop floor', async () => {
    await proc.stop();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new BenchError('BENCH_NOT_READY', 'floor not listening in time')),
      START_TIMEOUT_MS,
    );
    proc.child.once('message', (message: UpstreamMessage) => {
      clearTimeout(timer);
      if (message.port === port) resolve();
      else reject(new BenchError('BENCH_NOT_READY', `floor reported port ${message.port}`));
    });
    void proc.exited.then((info) => {
      clearTimeout(timer);
      reject(new BenchError('BENCH_NOT_READY', `floor exited (${describeExit(info)})`));
    });
  });
  return {
    name: 'floor',
    baseUrl: `http://127.0.0.1:${port}`,
    pid: proc.child.pid,
    authHeaders: p.authHeaders,
  };
}

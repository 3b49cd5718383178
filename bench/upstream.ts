import { BenchError } from './bench-error.js';
import type { CleanupStack } from './cleanup-stack.js';
import { describeExit, spawnManaged } from './managed-process.js';
import { upstreamServerPath } from './paths.js';
import type { Service } from './service.js';
import type { UpstreamMessage } from './upstream-message.js';

const START_TIMEOUT_MS = 10_000;

/** Starts the upstream child process; its stop is registered on `cleanup`. */
export async function startUpstream(cleanup: CleanupStack): Promise<Service> {
  const proc = spawnManaged('upstream', process.execPath, [upstreamServerPath], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanup.add('stop upstream', async () => {
    await proc.stop();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new BenchError('BENCH_NOT_READY', 'upstream did not report its port in time')),
      START_TIMEOUT_MS,
    );
    proc.child.once('message', (message: UpstreamMessage) => {
      clearTimeout(timer);
      resolve(message.port);
    });
    void proc.exited.then((info) => {
      clearTimeout(timer);
      reject(new BenchError('BENCH_NOT_READY', `upstream exited (${describeExit(info)})`));
    });
  });
  return { name: 'upstream', baseUrl: `http://127.0.0.1:${port}`, pid: proc.child.pid };
}

// Worker thread entry of bench/raw-argon2.ts: once loaded, says so and waits for the start;
// then verifies one Argon2 hash back to back for the duration and posts its count and
// latencies. Loading (the native module, the first verify's allocation) is not timed.
import { parentPort, workerData } from 'node:worker_threads';
import { verifyPasswordSync } from '../crypto-pool/password.js';
import type { Argon2WorkerData, Argon2WorkerMessage } from './raw-argon2-message.js';

const { hash, password, durationMs } = workerData as Argon2WorkerData;
const port = parentPort;
if (port === null) throw new Error('raw-argon2-worker runs as a worker thread');

function post(message: Argon2WorkerMessage): void {
  port?.postMessage(message);
}

// One untimed verify: loads @node-rs/argon2 and checks the pair before the clock starts.
post({ type: 'ready', verifies: verifyPasswordSync(hash, password) });
port.once('message', () => {
  const latenciesMs: number[] = [];
  let refused = 0;
  const deadline = performance.now() + durationMs;
  for (let start = performance.now(); start < deadline; start = performance.now()) {
    if (!verifyPasswordSync(hash, password)) refused += 1;
    latenciesMs.push(performance.now() - start);
  }
  post({ type: 'done', latenciesMs, refused });
});

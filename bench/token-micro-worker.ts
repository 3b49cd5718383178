// Thread entry for bench/token-micro: one codec per thread, built from the secret in workerData.
import { workerData } from 'node:worker_threads';
import { TokenCodec } from '../shared/token-codec.js';

/** What the bench sends per task. */
export interface VerifyTask {
  token: string;
  now: number;
}

const codec = new TokenCodec((workerData as { secret: string }).secret);

/** Verifies one token; returns the username or null, so the caller can check the answer. */
export function verify(task: VerifyTask): string | null {
  const result = codec.verify(task.token, task.now);
  return result.ok ? result.claims.sub : null;
}

/** Does nothing: the cost of the thread hop alone. */
export function echo(value: number): number {
  return value;
}

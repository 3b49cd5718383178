import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { GatewayError } from '../shared/errors.js';
import {
  type HashParams,
  type HashPasswordTask,
  TASKS,
  type VerifyPasswordTask,
} from './task-types.js';

export interface CryptoPoolOptions {
  threads: number;
  /** Tasks allowed to wait for a thread; beyond that calls fail fast with OVERLOADED. */
  maxQueue: number;
}

/** Argon2 off the event loop, with a bounded queue so a login flood cannot grow memory. */
export class CryptoPool {
  readonly #pool: Piscina;
  readonly #maxQueue: number;

  constructor(options: CryptoPoolOptions) {
    this.#maxQueue = options.maxQueue;
    this.#pool = new Piscina({
      filename: fileURLToPath(new URL('./tasks.js', import.meta.url)),
      minThreads: options.threads,
      maxThreads: options.threads,
      // The queue bound is checked here so that the error is ours (OVERLOADED), not piscina's.
      maxQueue: Number.POSITIVE_INFINITY,
      idleTimeout: Number.POSITIVE_INFINITY,
    });
  }

  hashPassword(password: string, params?: HashParams): Promise<string> {
    return this.#run<HashPasswordTask, string>(TASKS.hashPassword, { password, params });
  }

  verifyPassword(hash: string, password: string): Promise<boolean> {
    return this.#run<VerifyPasswordTask, boolean>(TASKS.verifyPassword, { hash, password });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  #run<T, R>(name: string, task: T): Promise<R> {
    if (this.#pool.queueSize >= this.#maxQueue) {
      return Promise.reject(new GatewayError('OVERLOADED'));
    }
    return this.#pool.run(task, { name }) as Promise<R>;
  }
}

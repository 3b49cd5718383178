// Thread entry of the crypto pool: piscina calls these by name. Imports only leaf code.
// The work runs on this thread (sync calls): the pool's threads are the Argon2 threads, with no
// second hop to libuv's pool.
import { hashPasswordSync, verifyPasswordSync } from './password.js';
import type { HashPasswordTask, VerifyPasswordTask } from './task-types.js';

export function hashPassword(task: HashPasswordTask): string {
  return hashPasswordSync(task.password, task.params);
}

export function verifyPassword(task: VerifyPasswordTask): boolean {
  return verifyPasswordSync(task.hash, task.password);
}

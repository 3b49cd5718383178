// Thread entry of the crypto pool: piscina calls these by name. Imports only leaf code.
import { hashPassword as hash, verifyPassword as verify } from './password.js';
import type { HashPasswordTask, VerifyPasswordTask } from './task-types.js';

export function hashPassword(task: HashPasswordTask): Promise<string> {
  return hash(task.password, task.params);
}

export function verifyPassword(task: VerifyPasswordTask): Promise<boolean> {
  return verify(task.hash, task.password);
}

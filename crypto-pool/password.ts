import { hash, hashSync, verify, verifySync } from '@node-rs/argon2';
import type { HashParams } from './task-types.js';

/** `Algorithm.Argon2id` of @node-rs/argon2 (a `const enum`, which isolated modules cannot import). */
const ARGON2ID = 2;

/**
 * Argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane): the hash stays
 * verifiable by the original ProxyAuth and costs about 13-15 ms on one core of this machine
 * (measured 2026-12-01; a quarter of it is kernel time: @node-rs/argon2 maps and unmaps the
 * 19 MiB for every hash).
 */
export const ARGON2_OPTIONS = {
  algorithm: ARGON2ID,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

function options(params: HashParams | undefined) {
  return params ? { ...ARGON2_OPTIONS, ...params } : ARGON2_OPTIONS;
}

/** An argon2id PHC string for `password`, computed off the calling thread (libuv pool). */
export function hashPassword(password: string, params?: HashParams): Promise<string> {
  return hash(password, options(params));
}

/** As {@link hashPassword}, on the calling thread: for the crypto pool's own threads. */
export function hashPasswordSync(password: string, params?: HashParams): string {
  return hashSync(password, options(params));
}

/** False (never a throw) for a hash that cannot be parsed, so a broken entry denies the login. */
export async function verifyPassword(hashed: string, password: string): Promise<boolean> {
  try {
    return await verify(hashed, password);
  } catch {
    return false;
  }
}

/** As {@link verifyPassword}, on the calling thread: for the crypto pool's own threads. */
export function verifyPasswordSync(hashed: string, password: string): boolean {
  try {
    return verifySync(hashed, password);
  } catch {
    return false;
  }
}

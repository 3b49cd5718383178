import argon2 from 'argon2';
import type { HashParams } from './task-types.js';

/**
 * Argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane): the hash stays
 * verifiable by the original ProxyAuth and costs about 20-30 ms on one core of this machine.
 */
export const ARGON2_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

const ARGON2_PREFIX = /^\$argon2(?:id|i|d)\$/;

export function isArgon2Hash(value: string): boolean {
  return ARGON2_PREFIX.test(value);
}

export function hashPassword(password: string, params?: HashParams): Promise<string> {
  return argon2.hash(password, params ? { ...ARGON2_OPTIONS, ...params } : ARGON2_OPTIONS);
}

/** False (never a throw) for a hash argon2 cannot parse, so a broken entry denies the login. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

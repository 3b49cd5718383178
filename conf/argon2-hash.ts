import { parseOptions } from '@node-rs/argon2';
import { CodedError } from '../shared/coded-error.js';

/**
 * The cost parameters of an Argon2 hash, as @node-rs/argon2's `Options` spells them (the same
 * shape as the crypto pool's HashParams, so a dummy hash can mirror a user's).
 */
export interface Argon2Cost {
  /** `m`: memory per verification, in KiB. */
  memoryCost: number;
  /** `t`: passes over that memory. */
  timeCost: number;
  /** `p`: lanes, computed in parallel. */
  parallelism: number;
}

export type Argon2HashErrorCode = 'ARGON2_HASH_MALFORMED' | 'ARGON2_HASH_TOO_COSTLY';

/** A `users[].password` that claims to be an Argon2 hash but cannot be used as one. */
export class Argon2HashError extends CodedError<Argon2HashErrorCode> {}

/*
 * Ceilings on what one verification may cost. Every login runs one (an unknown username runs
 * one against a dummy hash with the most common parameters, so anyone can trigger it), and each
 * crypto thread (`worker`) runs one at a time, so an edge holds up to `worker` x m at once.
 *
 * - m: 1 GiB. The heaviest published setting, RFC 9106 §4's first option (2 GiB, t=1, p=4),
 *   suits a machine doing one derivation at a time, not a gateway verifying `worker` logins
 *   at once; its second option (64 MiB) and OWASP's settings (7-46 MiB) sit far below. 1 GiB
 *   per verification times the default 4 threads is already 4 GiB per edge.
 * - m * t: 4 GiB of memory passes. Time grows with m * t: 1 GiB with t=1 took 0.6-1.6 s on
 *   one core of the development machine, so this caps one login at a few seconds of a thread.
 *   It allows t=4 at 1 GiB, t=64 at 64 MiB and t=215 at OWASP's 19 MiB, beyond every
 *   published recommendation (t=1-5).
 * - p: 16. @node-rs/argon2 computes lanes in parallel (p=4 ran about 3x faster than p=1 at
 *   256 MiB here), so p multiplies the threads one login occupies; RFC 9106 recommends 4.
 */
/** Largest accepted `m`, in KiB (1 GiB). */
export const ARGON2_MAX_MEMORY_KIB = 1_048_576;
/** Largest accepted `m * t`, in KiB passes (4 GiB). */
export const ARGON2_MAX_MEMORY_PASSES_KIB = 4 * ARGON2_MAX_MEMORY_KIB;
/** Largest accepted `p`. */
export const ARGON2_MAX_PARALLELISM = 16;

/**
 * The cost of a valid Argon2 PHC string (`$argon2{i,d,id}$v=19$m=..,t=..,p=..$salt$hash`),
 * parsed by the same code that verifies passwords. Throws Argon2HashError: ARGON2_HASH_MALFORMED
 * when it does not parse (the message never repeats the hash), ARGON2_HASH_TOO_COSTLY when it
 * is above the ceilings above.
 */
export function argon2Cost(hash: string): Argon2Cost {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(hash);
  } catch (cause) {
    // The library's reasons ("Decoding failed", "Salt is too short") name no part of the input.
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Argon2HashError('ARGON2_HASH_MALFORMED', `malformed Argon2 hash: ${reason}`, {
      cause,
    });
  }
  const { memoryCost, timeCost, parallelism } = parsed;
  const tooCostly = costProblem(memoryCost, timeCost, parallelism);
  if (tooCostly !== undefined) throw new Argon2HashError('ARGON2_HASH_TOO_COSTLY', tooCostly);
  return { memoryCost, timeCost, parallelism };
}

function costProblem(m: number, t: number, p: number): string | undefined {
  const prefix = 'Argon2 hash too costly for a login';
  if (m > ARGON2_MAX_MEMORY_KIB) {
    return `${prefix}: m=${m} KiB is above ${ARGON2_MAX_MEMORY_KIB} KiB (1 GiB)`;
  }
  if (m * t > ARGON2_MAX_MEMORY_PASSES_KIB) {
    return `${prefix}: m*t=${m * t} KiB passes is above ${ARGON2_MAX_MEMORY_PASSES_KIB} (4 GiB)`;
  }
  if (p > ARGON2_MAX_PARALLELISM) {
    return `${prefix}: p=${p} is above ${ARGON2_MAX_PARALLELISM}`;
  }
  return undefined;
}

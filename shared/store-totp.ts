// The store's TOTP records: a sealed secret per user (shared/totp-seal.ts) and the last time
// step accepted for each secret, so that a code is accepted only for a step greater than the
// last accepted one (RFC 6238 section 5.2), on every edge and across restarts. The step is kept
// per (user, secret): a secret replaced or removed takes its step with it, and config.json's
// plaintext secret (no record here) has its own, under CONFIG_SECRET_ID. The bodies run inside
// one write transaction each (store-writes.ts), so the compare-and-set of a step is exact.
import { checkKey, checkTime } from './store-args.js';
import type { StoreDbs } from './store-schema.js';
import type { SealedTotp } from './totp-seal.js';

/** Names config.json's plaintext secret where a sealed record's nonce names the record. */
export const CONFIG_SECRET_ID = '';

/** 'enrol' stores a secret only for a user without one; 'reset' replaces any. */
export type TotpPutMode = 'enrol' | 'reset';

/** Most steps one consume names: the skew window is 3 steps. */
const MAX_STEPS = 16;

/** Stores `sealed` as `user`'s secret (see TotpPutMode); false when 'enrol' found one. */
export function putTotpSecret(
  dbs: StoreDbs,
  user: string,
  sealed: SealedTotp,
  mode: TotpPutMode,
): boolean {
  const old = dbs.totpSecrets.get(user);
  if (old !== undefined) {
    if (mode === 'enrol') return false;
    dbs.totpSteps.remove([user, old.nonce]);
  }
  dbs.totpSecrets.put(user, sealed);
  return true;
}

/** Removes `user`'s sealed secret and its step; false when there was none. */
export function removeTotpSecret(dbs: StoreDbs, user: string): boolean {
  const old = dbs.totpSecrets.get(user);
  if (old === undefined) return false;
  dbs.totpSecrets.remove(user);
  dbs.totpSteps.remove([user, old.nonce]);
  return true;
}

/**
 * Accepts the smallest of `steps` greater than the last step accepted for `user`'s secret
 * `secretId` and records it; returns it, or undefined when none is greater (a replay, or an
 * earlier step after a later one) or when `secretId` is no longer the user's secret in force
 * (replaced or removed since the code was checked).
 */
export function consumeTotpStep(
  dbs: StoreDbs,
  user: string,
  secretId: string,
  steps: readonly number[],
): number | undefined {
  const inForce = dbs.totpSecrets.get(user)?.nonce ?? CONFIG_SECRET_ID;
  if (inForce !== secretId) return undefined;
  const last = dbs.totpSteps.get([user, secretId]);
  const step = [...steps].sort((a, b) => a - b).find((s) => last === undefined || s > last);
  if (step === undefined) return undefined;
  dbs.totpSteps.put([user, secretId], step);
  return step;
}

/** Throws unless `sealed` is well-formed (shapes only: whether it opens is the edge's check). */
export function checkSealed(sealed: SealedTotp): void {
  checkKey('nonce', sealed.nonce);
  checkKey('box', sealed.box);
  if (!['SHA1', 'SHA256', 'SHA512'].includes(sealed.algorithm)) {
    throw new TypeError(`algorithm must be SHA1, SHA256 or SHA512, got ${sealed.algorithm}`);
  }
  if (!Number.isInteger(sealed.digits) || sealed.digits < 6 || sealed.digits > 8) {
    throw new RangeError(`digits must be 6 to 8, got ${sealed.digits}`);
  }
  if (!Number.isInteger(sealed.period) || sealed.period < 1 || sealed.period > 300) {
    throw new RangeError(`period must be 1 to 300 seconds, got ${sealed.period}`);
  }
  checkTime('createdAt', sealed.createdAt);
}

/** Throws unless `secretId` is a nonce or CONFIG_SECRET_ID, and `steps` are 1 to 16 step numbers. */
export function checkConsume(secretId: string, steps: readonly number[]): void {
  if (typeof secretId !== 'string' || secretId.length > 64) {
    throw new TypeError('secretId must be a nonce or the config secret id');
  }
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_STEPS) {
    throw new RangeError(`steps must list 1 to ${MAX_STEPS} time steps`);
  }
  for (const step of steps) {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new RangeError(`a time step is a non-negative integer, got ${String(step)}`);
    }
  }
}

/*
 * TOTP (RFC 6238) as the second factor of POST /auth and of the enrolment endpoint. The secret
 * in force for a user is the one sealed in the store (read fresh at every check, so an
 * enrolment, a reset or a removal holds at once on every edge), else config.json's plaintext
 * one. A code is checked in constant time against the steps within ±1 of now
 * (shared/totp.ts), then its step is consumed by the supervisor, which accepts it only when it
 * is greater than the last step accepted for that secret: a code works once, on one edge.
 */

import { GatewayError } from '../shared/errors.js';
import type { TotpChange } from '../shared/ipc.js';
import { CONFIG_SECRET_ID } from '../shared/store.js';
import { matchingSteps, type TotpSecret } from '../shared/totp.js';
import { openTotp, TotpSealError } from '../shared/totp-seal.js';
import type { RequestContext } from './request-context.js';
import type { UserEntry } from './runtime.js';
import { AskError } from './supervisor-link.js';

/** How long an edge waits for the supervisor to carry out a TOTP change. */
const ASK_TIMEOUT_MS = 5_000;

/** A user's secret in force; `secret` is undefined when its sealed record does not open. */
export interface SecretInForce {
  /** The sealed record's nonce, or CONFIG_SECRET_ID for config.json's secret. */
  readonly id: string;
  readonly secret: TotpSecret | undefined;
}

/**
 * `user`'s TOTP secret in force: the store's, else config.json's, else undefined (the user has
 * no TOTP). A sealed record that does not open (config.json's `secret` changed, or the record
 * was altered) is logged and still counts as the user's secret, one no code matches: fail
 * closed, until an admin resets it.
 */
export function secretInForce(ctx: RequestContext, user: UserEntry): SecretInForce | undefined {
  const { store, log } = ctx.services;
  store.refresh();
  const sealed = store.getTotp(user.name);
  if (sealed === undefined) {
    const secret = user.totp.configSecret;
    return secret === undefined ? undefined : { id: CONFIG_SECRET_ID, secret };
  }
  try {
    return { id: sealed.nonce, secret: openTotp(ctx.rt.totpKey, user.name, sealed) };
  } catch (err) {
    if (!(err instanceof TotpSealError)) throw err;
    log.error('a TOTP secret in the store does not open; reset it', {
      user: user.name,
      reason: err.message,
    });
    return { id: sealed.nonce, secret: undefined };
  }
}

/**
 * Whether `code` is a valid code of `inForce` not used before: checked within ±1 step, then its
 * step consumed through the supervisor (refused when that step, or a later one, was already
 * accepted). A missing code is false. Rejects with 503 STORE_UNAVAILABLE when the supervisor
 * cannot answer (fail closed).
 */
export async function checkCode(
  ctx: RequestContext,
  user: string,
  inForce: SecretInForce,
  code: string | undefined,
): Promise<boolean> {
  if (code === undefined || inForce.secret === undefined) return false;
  const steps = matchingSteps(inForce.secret, code, Date.now());
  if (steps.length === 0) return false;
  const { done } = await totpChange(ctx, { op: 'consume', user, secretId: inForce.id, steps });
  return done;
}

/** What the second factor of a login says once the password was right. */
export type SecondFactor =
  /** Go on: the code was valid, or none is asked. */
  | 'pass'
  /** Wrong, missing or replayed code: the same 401 as a wrong password. */
  | 'fail'
  /** The user must use TOTP (`users[].totp: true`) and has no secret yet: 403. */
  | 'enrol';

/**
 * The second factor of POST /auth, after a correct password. With `login_via_otp` false no
 * code is asked. Otherwise a user with a secret must send a valid, unused `totp_code`; a user
 * without one passes unless `users[].totp` says TOTP is required.
 */
export async function secondFactor(
  ctx: RequestContext,
  user: UserEntry,
  code: string | undefined,
): Promise<SecondFactor> {
  if (!ctx.rt.config.login_via_otp) return 'pass';
  const inForce = secretInForce(ctx, user);
  if (inForce === undefined) return user.totp.required ? 'enrol' : 'pass';
  return (await checkCode(ctx, user.name, inForce, code)) ? 'pass' : 'fail';
}

/**
 * Asks the supervisor to carry out `change` in the store and resolves with its answer; 503
 * STORE_UNAVAILABLE when it could not.
 */
export async function totpChange(
  ctx: RequestContext,
  change: TotpChange,
): Promise<{ done: boolean }> {
  try {
    return await ctx.services.supervisor.ask({ type: 'totp-change', change }, ASK_TIMEOUT_MS);
  } catch (err) {
    if (!(err instanceof AskError)) throw err;
    ctx.services.log.error('TOTP change failed', {
      op: change.op,
      code: err.code,
      reason: err.message,
    });
    throw new GatewayError('STORE_UNAVAILABLE', { cause: err });
  }
}

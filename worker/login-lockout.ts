/*
 * Every password and admin-token check runs under the node's lockout (login_lockout): the edge
 * asks the supervisor before checking (supervisor/login-guard.ts admits it, makes it wait, or
 * answers that the user or the address is locked out), then reports how the check ended. With
 * max_failures 0 nothing is asked.
 */

import { GatewayError } from '../shared/errors.js';
import { addressKey } from './client-address.js';
import type { RequestContext } from './request-context.js';
import { AskError } from './supervisor-link.js';

/** The supervisor makes an attempt wait at most 10 s for a slot; this is the edge's patience. */
const ATTEMPT_TIMEOUT_MS = 15_000;

const UNAVAILABLE = new GatewayError('LIMITER_UNAVAILABLE');

/**
 * Runs `check` (true: the secret was right) for `user` (null: the admin token) from the
 * request's client, under the lockout. Resolves with the check's result; rejects with 429
 * LOGIN_LOCKED (Retry-After, body `after`) while the user or the address is locked out, with
 * 503 LIMITER_UNAVAILABLE when the supervisor does not answer (fail closed), or with what
 * `check` throws (the attempt is then reported as aborted, not as a failure).
 */
export async function checkUnderLockout(
  ctx: RequestContext,
  user: string | null,
  check: () => boolean | Promise<boolean>,
): Promise<boolean> {
  const { rt, services } = ctx;
  if (rt.config.login_lockout.max_failures === 0) return check();
  const ip = addressKey(ctx.clientIp, rt.config.client_ipv6_prefix);
  let answer: { ticket: number; lockedMs: number };
  try {
    answer = await services.supervisor.ask({ type: 'login-attempt', user, ip }, ATTEMPT_TIMEOUT_MS);
  } catch (err) {
    if (!(err instanceof AskError)) throw err;
    services.log.error('lockout check failed', { code: err.code, reason: err.message });
    throw UNAVAILABLE;
  }
  if (answer.lockedMs > 0) {
    throw new GatewayError('LOGIN_LOCKED', { after: Math.ceil(answer.lockedMs / 1000) });
  }
  let outcome: 'success' | 'failure' | 'aborted' = 'aborted';
  try {
    const ok = await check();
    outcome = ok ? 'success' : 'failure';
    return ok;
  } finally {
    if (answer.ticket > 0) {
      services.supervisor.notify({ type: 'login-result', ticket: answer.ticket, outcome });
    }
  }
}

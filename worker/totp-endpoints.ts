/*
 * TOTP enrolment and its administration.
 *
 * - POST /adm/auth/totp/get: a user operation (username, password, optional totp_code; JSON or
 *   form), not behind the admin token, behind `ratelimit_auth` and the login lockout like
 *   /auth. A user without TOTP gets a new secret; a user with one gets it back only with a
 *   valid, unused code (consumed like a login's): the password alone never reveals a secret.
 * - POST /adm/auth/totp/reset {"username"} and DELETE /adm/auth/totp?user=: admin token; a new
 *   secret for the user (replacing any), or none.
 *
 * Secrets are generated and sealed on the edge (shared/totp-seal.ts); the supervisor stores
 * the sealed record. Answers that hold a secret are `Cache-Control: no-store` (uws-io.ts).
 */

import { z } from 'zod';
import { GatewayError, refusal } from '../shared/errors.js';
import { base32Of, newTotpSecret, otpauthUri, type TotpSecret } from '../shared/totp.js';
import { sealTotp } from '../shared/totp-seal.js';
import { usernameProblem } from '../shared/username.js';
import { bodyKind, parseCredentials } from './credentials.js';
import { checkUnderLockout } from './login-lockout.js';
import type { RequestContext } from './request-context.js';
import { checkCode, secretInForce, totpChange } from './totp-login.js';
import { header, readBody, sendJson } from './uws-io.js';

const ENROL_TYPES = new GatewayError('UNSUPPORTED_MEDIA_TYPE', {
  detail: 'an enrolment is application/json or application/x-www-form-urlencoded',
});
const JSON_ONLY = new GatewayError('UNSUPPORTED_MEDIA_TYPE', {
  detail: 'the admin API takes application/json',
});

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** POST /adm/auth/totp/get: see the file comment. */
export function handleTotpEnrol(ctx: RequestContext): Promise<void> {
  const kind = bodyKind(header(ctx.ex, 'content-type'));
  if (kind === null) throw ENROL_TYPES;
  return enrol(ctx, kind);
}

async function enrol(ctx: RequestContext, kind: 'json' | 'form'): Promise<void> {
  const { ex, rt } = ctx;
  const body = await readBody(ex, rt.config.max_body_auth_bytes);
  const { username, password, totpCode } = parseCredentials(body, kind);
  const user = rt.users.get(username);
  const lockKey = usernameProblem(username) === undefined ? username : null;
  // The existing secret, once its code passed; undefined: the user has none yet.
  let existing: TotpSecret | undefined;
  // As /auth (auth-handler.ts): a dummy hash for unknown users, under the lockout, and a wrong
  // or missing code for a user who has TOTP is a failure like a wrong password.
  const valid = await checkUnderLockout(ctx, lockKey, async () => {
    const ok = await ctx.services.crypto.verifyPassword(user?.hash ?? rt.dummyHash, password);
    if (!ok || user === undefined) return false;
    const inForce = secretInForce(ctx, user);
    if (inForce === undefined) return true;
    if (!(await checkCode(ctx, user.name, inForce, totpCode))) return false;
    existing = inForce.secret;
    return true;
  });
  if (!valid || user === undefined) throw refusal('INVALID_CREDENTIALS');
  if (user.allows && !user.allows(ctx.clientIp)) throw refusal('IP_NOT_ALLOWED');
  ctx.logUser = username;
  if (existing !== undefined) {
    await sendSecret(ctx, username, existing, false);
    return;
  }
  const fresh = newTotpSecret();
  const sealed = sealTotp(rt.totpKey, username, fresh, nowSeconds());
  // Another enrolment of this user may have landed since the check: its secret needs a code.
  const { done } = await totpChange(ctx, { op: 'enrol', user: username, sealed });
  if (!done) throw refusal('INVALID_CREDENTIALS');
  await sendSecret(ctx, username, fresh, true);
}

const resetBody = z.strictObject({ username: z.unknown() });

/** POST /adm/auth/totp/reset `{"username": "..."}` (admin): a new secret, replacing any. */
export function handleTotpReset(ctx: RequestContext): Promise<void> {
  const type = header(ctx.ex, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw JSON_ONLY;
  return reset(ctx);
}

async function reset(ctx: RequestContext): Promise<void> {
  const { ex, rt } = ctx;
  const body = await readBody(ex, rt.config.max_body_auth_bytes);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw badBody('the body is not valid JSON');
  }
  const parsed = resetBody.safeParse(json);
  if (!parsed.success) throw badBody('expected a JSON object with username only');
  const problem = usernameProblem(parsed.data.username);
  if (problem !== undefined) throw badBody(`username ${problem}`);
  const username = parsed.data.username as string;
  // A secret is only of use to a user the gateway knows.
  if (!rt.users.has(username)) throw refusal('USER_NOT_FOUND');
  const fresh = newTotpSecret();
  await totpChange(ctx, {
    op: 'reset',
    user: username,
    sealed: sealTotp(rt.totpKey, username, fresh, nowSeconds()),
  });
  await sendSecret(ctx, username, fresh, true);
}

/**
 * DELETE /adm/auth/totp?user=NAME (admin): removes the user's secret from the store. 404
 * TOTP_NOT_FOUND when there is none; `config_secret` says whether config.json still gives the
 * user a plaintext one (which then applies again).
 */
export function handleTotpRemove(ctx: RequestContext): Promise<void> {
  const params = new URLSearchParams(ctx.ex.query);
  const names = [...params.keys()];
  const user = params.get('user');
  if (user === null || names.length !== 1) {
    throw badRequest('give exactly one query parameter, user');
  }
  const problem = usernameProblem(user);
  if (problem !== undefined) throw badRequest(`user ${problem}`);
  return remove(ctx, user);
}

async function remove(ctx: RequestContext, user: string): Promise<void> {
  const { done } = await totpChange(ctx, { op: 'remove', user });
  if (!done) throw refusal('TOTP_NOT_FOUND');
  const configSecret = ctx.rt.users.get(user)?.totp.configSecret !== undefined;
  sendJson(
    ctx.ex,
    200,
    JSON.stringify({ removed: true, username: user, config_secret: configSecret }),
  );
}

/**
 * `{"otpauth_uri", "otpkey", "qr_svg", "created"}`: the secret as an authenticator app takes it
 * (the URI, its base32 key, the URI as a QR code in SVG); `created` is false when an existing
 * secret is handed back.
 */
async function sendSecret(
  ctx: RequestContext,
  user: string,
  secret: TotpSecret,
  created: boolean,
): Promise<void> {
  const uri = otpauthUri(user, secret);
  // Loaded on first use: an edge that never enrols anyone never loads it.
  const qrcode = await import('qrcode');
  const svg = await qrcode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  sendJson(
    ctx.ex,
    200,
    JSON.stringify({ otpauth_uri: uri, otpkey: base32Of(secret), qr_svg: svg, created }),
  );
}

function badBody(detail: string): GatewayError {
  return new GatewayError('BAD_BODY', { detail });
}

function badRequest(detail: string): GatewayError {
  return new GatewayError('BAD_REQUEST', { detail });
}

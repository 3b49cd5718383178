import { GatewayError, refusal } from '../shared/errors.js';
import { formatExpiresAt } from '../shared/time-format.js';
import { usernameProblem } from '../shared/username.js';
import { bodyKind, parseCredentials } from './credentials.js';
import { checkUnderLockout } from './login-lockout.js';
import { loginRedirect } from './login-redirect.js';
import { isBrowserForm, sendSignedInPage } from './page-answer.js';
import type { RequestContext } from './request-context.js';
import { loginIssuedAt } from './revocation-set.js';
import { sessionCookie } from './session-cookie.js';
import { type SecondFactor, secondFactor } from './totp-login.js';
import { type HeaderPair, header, readBody, sendJson } from './uws-io.js';

const LOGIN_TYPES = new GatewayError('UNSUPPORTED_MEDIA_TYPE', {
  detail: 'a login is application/json or application/x-www-form-urlencoded',
});

/**
 * POST /auth. Unknown users are verified against a dummy hash of the same cost, and the IP
 * allow list is checked only after a correct password, so neither the status nor the timing
 * tells a stranger which usernames exist; a wrong TOTP code gets the same 401 as a wrong
 * password (totp-login.ts); lockouts (login-lockout.ts) count unknown names like
 * known ones, for the same reason. An unsupported body type is refused synchronously.
 */
export function handleLogin(ctx: RequestContext): Promise<void> {
  const kind = bodyKind(header(ctx.ex, 'content-type'));
  if (kind === null) throw LOGIN_TYPES;
  return login(ctx, kind);
}

async function login(ctx: RequestContext, kind: 'json' | 'form'): Promise<void> {
  const { ex, rt } = ctx;
  const body = await readBody(ex, rt.config.max_body_auth_bytes);
  const { username, password, totpCode } = parseCredentials(body, kind);
  const user = rt.users.get(username);
  // A name no user can have is counted against the address only (it names nobody to lock).
  const lockKey = usernameProblem(username) === undefined ? username : null;
  // The TOTP code is checked inside the lockout with the password: a wrong code is a failure.
  let factor = 'pass' as SecondFactor;
  const valid = await checkUnderLockout(ctx, lockKey, async () => {
    const ok = await ctx.services.crypto.verifyPassword(user?.hash ?? rt.dummyHash, password);
    if (!ok || user === undefined) return false;
    factor = await secondFactor(ctx, user, totpCode);
    return factor !== 'fail';
  });
  if (!valid || user === undefined) throw refusal('INVALID_CREDENTIALS');
  if (user.allows && !user.allows(ctx.clientIp)) throw refusal('IP_NOT_ALLOWED');
  if (factor === 'enrol') throw refusal('TOTP_ENROLMENT_REQUIRED');
  const { revocations, supervisor } = ctx.services;
  // A revocation of the user refuses tokens issued at or before its second: a login in that
  // same second, after it, is dated the next one so that it works (never far in the future).
  const now = Math.floor(Date.now() / 1000);
  const iat = loginIssuedAt(revocations.notBeforeOf(username), now);
  const { token, claims } = rt.codec.issue(username, rt.config.token_expiry_seconds, iat);
  const tokenId = rt.codec.tokenId(claims);
  supervisor.notify({
    type: 'token-issued',
    token: { tokenId, user: username, iat: claims.iat, exp: claims.exp },
  });
  ctx.logUser = username;
  const { config } = rt;
  const answer = JSON.stringify({
    token,
    expires_at: formatExpiresAt(claims.exp, config.timezone),
    token_id: tokenId,
  });
  if (!config.session_cookie) {
    sendJson(ex, 200, answer);
    return;
  }
  // The cookie lives no longer than its token (README "Browser sessions").
  const cookie: HeaderPair = [
    'set-cookie',
    sessionCookie(token, Math.min(config.max_age_session_cookie, claims.exp - now)),
  ];
  // `rd` (forward-auth's way back, checked before the password) wins over the configured page.
  const to = loginRedirect(ctx) ?? config.login_redirect_url;
  if (to !== undefined) {
    sendJson(ex, 303, answer, [cookie, ['location', to]]);
  } else if (isBrowserForm(ex)) sendSignedInPage(ex, config, username, cookie);
  else sendJson(ex, 200, answer, [cookie]);
}

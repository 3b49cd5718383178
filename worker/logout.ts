/*
 * GET and POST /logout (HEAD is not accepted: a HEAD must not log anyone out, endpoints.ts).
 *
 * The credential is a bearer header, or in session-cookie mode (no Authorization header) the
 * session cookie. The session's token is revoked until its expiry (revocation-ask.ts: on every
 * edge before the answer), then: in session-cookie mode the cookie is expired, and the answer is
 * 302 to `logout_redirect_url` when it is set, else 200 `{"logged_out": true, "token_id",
 * "token_ids"}` (in session-cookie mode a browser's navigation, Accept naming text/html, gets
 * the built-in "signed out" page instead).
 *
 * Bearer requests keep their refusals (401 TOKEN_MISSING, TOKEN_INVALID, TOKEN_REVOKED). A
 * browser, though, is logged out whatever its cookie: one whose cookie expired, was revoked or
 * is missing still gets the cookie expired and the redirect (nothing to revoke), or it would be
 * stuck on an error page; two different session cookies (which no secure route accepts) are
 * each revoked when valid. SameSite=Strict keeps a cross-site page from sending the cookie, so
 * another site cannot log a user out through their cookie.
 */

import { GatewayError } from '../shared/errors.js';
import { acceptsHtml, sendSignedOutPage } from './page-answer.js';
import type { RequestContext } from './request-context.js';
import { changeRevocations } from './revocation-ask.js';
import type { Session } from './session-cache.js';
import { expiredSessionCookie, sessionCookieValues } from './session-cookie.js';
import { authenticateBearer, authenticateToken } from './steps/credential.js';
import { type Exchange, type HeaderPair, header, sendJson } from './uws-io.js';

/** Distinct session cookie values examined at most (each is a token check and a revocation). */
const MAX_COOKIE_VALUES = 8;

const EXPIRE_COOKIE: HeaderPair = ['set-cookie', expiredSessionCookie()];

/** GET or POST /logout. */
export function handleLogout(ctx: RequestContext): Promise<void> {
  if (!ctx.rt.config.session_cookie || header(ctx.ex, 'authorization') !== undefined) {
    return logout(ctx, [authenticateBearer(ctx)]);
  }
  return logout(ctx, cookieSessions(ctx));
}

/** The valid sessions of the request's session cookies; invalid ones are skipped. */
function cookieSessions(ctx: RequestContext): Session[] {
  const sessions: Session[] = [];
  const tried = new Set<string>();
  for (const value of sessionCookieValues(cookieHeaders(ctx.ex))) {
    if (value === '' || tried.has(value)) continue;
    if (tried.size === MAX_COOKIE_VALUES) break;
    tried.add(value);
    let session: Session;
    try {
      session = authenticateToken(ctx, value);
    } catch (err) {
      if (err instanceof GatewayError) continue;
      throw err;
    }
    if (!sessions.some((s) => s.tokenId === session.tokenId)) sessions.push(session);
  }
  return sessions;
}

function cookieHeaders(ex: Exchange): string[] {
  const values: string[] = [];
  const h = ex.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'cookie') values.push(h[i + 1]!);
  return values;
}

async function logout(ctx: RequestContext, sessions: readonly Session[]): Promise<void> {
  const { config } = ctx.rt;
  const cookieMode = config.session_cookie;
  const revokedAt = Math.floor(Date.now() / 1000);
  try {
    for (const s of sessions) {
      await changeRevocations(ctx, {
        op: 'revoke-token',
        tokenId: s.tokenId,
        until: s.exp,
        revokedAt,
      });
    }
  } catch (err) {
    // The token still works, so the answer is the failure; the browser still drops its cookie.
    if (cookieMode && err instanceof GatewayError) {
      throw new GatewayError(err.code, { cause: err.cause, headers: [EXPIRE_COOKIE] });
    }
    throw err;
  }
  const ids = sessions.map((s) => s.tokenId);
  const body = JSON.stringify({ logged_out: true, token_id: ids[0] ?? null, token_ids: ids });
  const headers: HeaderPair[] = cookieMode ? [EXPIRE_COOKIE] : [];
  const to = config.logout_redirect_url;
  if (to !== undefined) sendJson(ctx.ex, 302, body, [...headers, ['location', to]]);
  else if (cookieMode && acceptsHtml(ctx.ex)) sendSignedOutPage(ctx.ex, config, EXPIRE_COOKIE);
  else sendJson(ctx.ex, 200, body, headers);
}

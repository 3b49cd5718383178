import { refusal } from '../../shared/errors.js';
import { MAX_TOKEN_LENGTH, MIN_TOKEN_LENGTH } from '../../shared/token-codec.js';
import type { RouteFeature } from '../pipeline.js';
import type { RequestContext } from '../request-context.js';
import type { Session } from '../session-cache.js';
import { sessionCookieValues } from '../session-cookie.js';
import { header, singleHeader } from '../uws-io.js';

/** The scheme, lower case (compared case-insensitively: RFC 9110 section 11.1). */
const BEARER = 'bearer';

/**
 * The token of an `Authorization: Bearer` value (RFC 6750 section 2.1), or undefined: the
 * scheme in any letter case, one or more SP or HTAB, then the token (trimmed; not empty). By
 * hand, not `/^bearer[ \t]+/i.exec` (~640 instructions a request with the match array,
 * callgrind): `c | 0x20` folds exactly the two cases of each of the scheme's letters.
 */
export function bearerToken(value: string | undefined): string | undefined {
  if (value === undefined || value.length <= BEARER.length) return undefined;
  for (let i = 0; i < BEARER.length; i++) {
    if ((value.charCodeAt(i) | 0x20) !== BEARER.charCodeAt(i)) return undefined;
  }
  let at = BEARER.length;
  while (at < value.length && (value.charCodeAt(at) === 0x20 || value.charCodeAt(at) === 0x09)) {
    at++;
  }
  if (at === BEARER.length) return undefined;
  const token = value.slice(at).trim();
  return token.length > 0 ? token : undefined;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * The session of the request's bearer token: exactly one `Authorization` header (a singleton
 * field, RFC 9110 section 11.6.2: with two of them, which one a backend or another proxy would
 * read is a guess), a token of ours, not revoked, for a user that still exists. Refuses with
 * CREDENTIALS_AMBIGUOUS, TOKEN_MISSING, TOKEN_INVALID or TOKEN_REVOKED.
 */
export function authenticateBearer(ctx: RequestContext): Session {
  const value = singleHeader(ctx.ex, 'authorization');
  if (value === null) throw refusal('CREDENTIALS_AMBIGUOUS');
  const token = bearerToken(value);
  if (token === undefined) throw refusal('TOKEN_MISSING');
  return authenticateToken(ctx, token);
}

/**
 * The session of the request: its bearer token when it has an `Authorization` header (which
 * then decides alone), else, in session-cookie mode, its `session_token` cookie (README
 * "Browser sessions"); `ctx.viaCookie` tells which. Several different session cookies are
 * CREDENTIALS_AMBIGUOUS; other refusals as authenticateBearer.
 */
export function authenticateRequest(ctx: RequestContext): Session {
  if (ctx.rt.config.session_cookie && header(ctx.ex, 'authorization') === undefined) {
    const token = sessionCookieToken(ctx);
    if (token !== undefined) {
      const session = authenticateToken(ctx, token);
      ctx.viaCookie = true;
      return session;
    }
  }
  return authenticateBearer(ctx);
}

/** The request's session cookie value, undefined without one; several different ones refuse. */
export function sessionCookieToken(ctx: RequestContext): string | undefined {
  const h = ctx.ex.headers;
  let cookies: string[] | undefined;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'cookie') continue;
    if (cookies === undefined) cookies = [h[i + 1]!];
    else cookies.push(h[i + 1]!);
  }
  if (cookies === undefined) return undefined;
  const values = sessionCookieValues(cookies);
  if (values.length === 0) return undefined;
  const first = values[0]!;
  for (const v of values) if (v !== first) throw refusal('CREDENTIALS_AMBIGUOUS');
  return first.length > 0 ? first : undefined;
}

/**
 * The session of one token of ours (its user set on `ctx`): TOKEN_INVALID or TOKEN_REVOKED
 * otherwise.
 */
export function authenticateToken(ctx: RequestContext, token: string): Session {
  const { rt, services } = ctx;
  const now = nowSeconds();
  const session = services.sessions.authenticate(rt.codec, token, now);
  if (session === undefined) throw refusal('TOKEN_INVALID');
  // One comparison per request until the revocation set changes (revocation-set.ts).
  const revocations = services.revocations;
  if (session.cleanAt !== revocations.epoch) {
    if (revocations.revokes(session, now)) throw refusal('TOKEN_REVOKED');
    session.cleanAt = revocations.epoch;
  }
  const user = rt.users.get(session.user);
  if (!user) throw refusal('TOKEN_INVALID');
  ctx.user = user;
  ctx.session = session;
  ctx.logUser = user.name;
  return session;
}

/** A secure route needs a valid token; the gateway's credential never goes upstream. */
function requireToken(ctx: RequestContext): void {
  authenticateRequest(ctx);
  ctx.dropAllAuthorization = true;
}

/**
 * A public route forwards `Authorization` (its backend may use its own tokens), except every
 * header that carries one of our tokens, valid or expired, in any form (`Bearer <t>`, another
 * scheme, bare, quoted, in a list): those are the gateway's credentials and never reach a
 * backend. Every header is examined, not only the first.
 */
function withholdGatewayTokens(ctx: RequestContext): void {
  const h = ctx.ex.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'authorization') continue;
    const value = h[i + 1]!;
    if (!carriesOurToken(ctx, value)) continue;
    if (ctx.withheldAuthorization === undefined) ctx.withheldAuthorization = [value];
    else ctx.withheldAuthorization.push(value);
  }
}

/** Runs of base64url characters: every place a token of ours could sit in a header value. */
const TOKEN_CANDIDATE = /[A-Za-z0-9_-]+/g;

function carriesOurToken(ctx: RequestContext, value: string): boolean {
  for (const [candidate] of value.matchAll(TOKEN_CANDIDATE)) {
    if (candidate.length < MIN_TOKEN_LENGTH || candidate.length > MAX_TOKEN_LENGTH) continue;
    if (isOurs(ctx, candidate)) return true;
  }
  return false;
}

function isOurs(ctx: RequestContext, token: string): boolean {
  const { rt } = ctx;
  const now = nowSeconds();
  if (ctx.services.sessions.authenticate(rt.codec, token, now) !== undefined) return true;
  const result = rt.codec.verify(token, now);
  // `expired` is only reported for an authentic token (token-codec.ts).
  return result.ok || result.reason === 'expired';
}

/**
 * Tokens (bearer, or the session cookie): required on secure routes; ours are withheld from
 * public routes' backends (the cookie by upstream-headers.ts).
 */
export const credential: RouteFeature = {
  name: 'credential',
  compile(build) {
    build.step(build.route.secure ? requireToken : withholdGatewayTokens);
  },
};

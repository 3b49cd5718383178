import { rewritableAcceptEncoding } from '../content-coding.js';
import { csrfTokensFor } from '../csrf-token.js';
import type { RouteFeature } from '../pipeline.js';
import { PlaceholderTransform } from '../placeholder-transform.js';
import type { RequestContext } from '../request-context.js';
import type { Session } from '../session-cache.js';
import { sessionCookieToken } from './credential.js';

/**
 * The session a public route's request carries in its cookie, if valid (public routes do not
 * authenticate, and a refusal here would be wrong): undefined otherwise.
 */
function cookieSession(ctx: RequestContext): Session | undefined {
  let token: string | undefined;
  try {
    token = sessionCookieToken(ctx);
  } catch {
    // Two different session cookies: no session to bind a token to.
    return undefined;
  }
  if (token === undefined) return undefined;
  const { rt, services } = ctx;
  const now = Math.floor(Date.now() / 1000);
  const session = services.sessions.authenticate(rt.codec, token, now);
  if (session === undefined || !rt.users.has(session.user)) return undefined;
  return services.revocations.revokes(session, now) ? undefined : session;
}

/**
 * The value of the request's placeholders: a CSRF token bound to the session that
 * authenticated it (bearer or cookie; on a public route, a valid session cookie), or the empty
 * string without one, so that a page never shows its template.
 */
function tokenFor(ctx: RequestContext): string {
  const session = ctx.session ?? (ctx.route?.config.secure ? undefined : cookieSession(ctx));
  if (session === undefined) return '';
  const { config, codec } = ctx.rt;
  const tokens = csrfTokensFor(codec, session.keyId);
  if (tokens === undefined) return '';
  const now = Math.floor(Date.now() / 1000);
  return tokens.mint(session.tokenId, now, config.csrf_token_ttl);
}

/**
 * Keeps a backend from answering in a coding the gateway cannot rewrite (zstd, compress): the
 * request's Accept-Encoding lists only gzip, deflate, br and identity.
 */
function limitAcceptEncoding(ctx: RequestContext): void {
  const h = ctx.ex.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'accept-encoding') h[i + 1] = rewritableAcceptEncoding(h[i + 1]!);
  }
}

/**
 * `{{ csrf_token }}` and `{{csrf_token}}` in proxied HTML pages are replaced by a CSRF token
 * (README "CSRF tokens in pages"). On when `session_cookie` and `csrf_token` are: otherwise the
 * route gets neither the step nor the transform.
 */
export const csrfPlaceholders: RouteFeature = {
  name: 'csrf-placeholders',
  compile(build) {
    const { config } = build;
    if (!config.session_cookie || !config.csrf_token) return;
    build.step(limitAcceptEncoding);
    build.transformResponses(
      (ctx, sink) => new PlaceholderTransform(() => tokenFor(ctx), sink, ctx.services.log),
    );
  },
};

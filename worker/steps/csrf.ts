/*
 * The CSRF check of session-cookie requests (README "CSRF"; OWASP CSRF Prevention Cheat Sheet:
 * synchronizer token, plus verifying origin with standard headers). Compiled only on a secure
 * route with `need_csrf` when config.json has `session_cookie` and `csrf_token`: anywhere else
 * it adds no step.
 *
 * At request time it acts only on requests authenticated by the session cookie (a browser
 * sends the cookie on its own; a bearer header is something a script chose to send, so bearer
 * requests are exempt):
 * - a WebSocket handshake: its Origin (or Referer) is checked (csrf-origin.ts). Browsers send
 *   cookies on handshakes from other sites and a page cannot add a header to them, so the
 *   origin is the only defence against cross-site WebSocket hijacking;
 * - a request whose method is not safe (RFC 9110 section 9.2.1: anything but GET, HEAD,
 *   OPTIONS and TRACE, custom methods included): its Origin (or Referer), then a CSRF token
 *   (worker/csrf-token.ts) minted for this session and not expired, taken from exactly one
 *   X-CSRF-Token header, else from the body (csrf-body.ts). With `csrf_single_use` the token is
 *   then spent through the supervisor, which records its nonce in the store: a token works
 *   once, on any edge, also after a restart.
 * No path is exempt (the original skipped paths ending in `.js`, `.css`...).
 *
 * Refusals: 403 CSRF_ORIGIN_MISMATCH, 403 CSRF_INVALID (missing, malformed, forged, expired,
 * another session's, spent), 403 CSRF_BODY_UNREADABLE (no header, and a body the token cannot
 * be read from: over the bound, compressed, not a form or JSON), 503 CSRF_UNAVAILABLE (single
 * use, and the supervisor did not answer: fail closed). Each is logged with its reason, never
 * with the token. The upstream is never called for a refused request.
 */

import type { Config } from '../../conf/config-schema.js';
import type { RouteConfig } from '../../conf/routes-schema.js';
import { type ErrorCode, GatewayError, refusal } from '../../shared/errors.js';
import { LruCache } from '../../shared/lru-cache.js';
import { type BodyFormat, bodyFormat, bodyToken } from '../csrf-body.js';
import { type OriginPolicy, originRefusal } from '../csrf-origin.js';
import { type CsrfTokens, csrfTokensFor } from '../csrf-token.js';
import type { RouteFeature } from '../pipeline.js';
import type { RequestContext } from '../request-context.js';
import { AskError } from '../supervisor-link.js';
import { readBody, singleHeader } from '../uws-io.js';

/** RFC 9110 section 9.2.1. Methods are upper-cased by uws-io.ts (TRACE is refused earlier). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** Largest body read for its token on a route without `filters.max_body_bytes`. */
export const CSRF_MAX_BODY_BYTES = 1024 * 1024;

/** How long a request waits for the supervisor to spend its token. */
const SPEND_TIMEOUT_MS = 5_000;

/**
 * Verified tokens kept per edge (and per secret). A page reuses its token for every form and
 * fetch it sends, and a verification costs ~10-13 µs (keyed BLAKE3 in WebAssembly, measured)
 * while a hit costs under 1 µs for the whole check. Bounded: only tokens whose MAC checked are
 * kept, at most this many (a few hundred bytes each); single-use tokens are not kept.
 */
const VERIFIED_ENTRIES = 10_000;

interface Verified {
  readonly tokenId: string;
  readonly nonce: string;
  readonly exp: number;
}

const verifiedCaches = new WeakMap<CsrfTokens, LruCache<string, Verified>>();

function verifiedCache(tokens: CsrfTokens): LruCache<string, Verified> {
  let cache = verifiedCaches.get(tokens);
  if (cache === undefined) {
    cache = new LruCache(VERIFIED_ENTRIES);
    verifiedCaches.set(tokens, cache);
  }
  return cache;
}

/** `Content-Encoding` values that leave the bytes as they are. */
const IDENTITY = /^\s*(?:identity)?\s*$/i;

/** The route's compiled CSRF settings. */
interface Plan {
  readonly origins: OriginPolicy;
  readonly singleUse: boolean;
  readonly maxBody: number;
}

/** Whether the route gets the CSRF step at all. */
export function csrfApplies(config: Config, route: RouteConfig): boolean {
  return config.session_cookie && config.csrf_token && route.need_csrf && route.secure;
}

function plan(config: Config, route: RouteConfig): Plan {
  return {
    origins: { listed: new Set(config.cors_origins), plainHttp: !config.tls },
    singleUse: config.csrf_single_use,
    // One bound per route: the body filters read the same buffered body (filters.ts).
    maxBody: route.filters?.max_body_bytes ?? CSRF_MAX_BODY_BYTES,
  };
}

/** Logs why a request was refused (never the token) and returns the error to throw. */
function refuse(ctx: RequestContext, code: ErrorCode, reason: string): GatewayError {
  const ex = ctx.ex;
  ctx.services.log.warn('CSRF check refused a request', {
    code,
    reason,
    user: ctx.user?.name,
    method: ex.method.length > 32 ? ex.method.slice(0, 32) : ex.method,
    path: ex.url.length > 256 ? `${ex.url.slice(0, 256)}...` : ex.url,
    ip: ctx.clientIp,
  });
  return refusal(code);
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The step; undefined when the request passed at once, a promise when it waits. */
function check(p: Plan, ctx: RequestContext): Promise<void> | undefined {
  if (!ctx.viaCookie) return undefined;
  const ex = ctx.ex;
  const upgrade = ctx.upgrade !== undefined;
  if (!upgrade && SAFE_METHODS.has(ex.method)) return undefined;
  const bad = originRefusal(ex, p.origins);
  if (bad !== undefined) throw refuse(ctx, 'CSRF_ORIGIN_MISMATCH', bad);
  if (upgrade) return undefined;
  const header = singleHeader(ex, 'x-csrf-token');
  if (header === null) throw refuse(ctx, 'CSRF_INVALID', 'several X-CSRF-Token headers');
  if (header !== undefined) return verify(p, ctx, header);
  return fromBody(p, ctx);
}

/** Checks a token found in the request for its session; spends it when single use. */
function verify(p: Plan, ctx: RequestContext, token: string): Promise<void> | undefined {
  const session = ctx.session!;
  const tokenId = session.tokenId;
  // The session's CSRF tokens are keyed under the ring key that issued it (csrf-token.ts).
  const tokens = csrfTokensFor(ctx.rt.codec, session.keyId);
  if (tokens === undefined) throw refuse(ctx, 'CSRF_INVALID', 'the session key left the ring');
  const verified = verifiedCache(tokens);
  const now = nowSeconds();
  let found = verified.get(token);
  // A token verified for another session is verified again (and refused as forged).
  if (found === undefined || found.tokenId !== tokenId) {
    const result = tokens.verify(token, tokenId, now);
    if (!result.ok) {
      const why =
        result.reason === 'forged' ? 'forged, or minted for another session' : result.reason;
      throw refuse(ctx, 'CSRF_INVALID', why);
    }
    found = { tokenId, nonce: result.nonce, exp: result.exp };
    // A single-use token is never accepted twice: keeping it would only serve its refusals.
    if (!p.singleUse) verified.set(token, found);
  }
  // Written so that a NaN clock fails closed.
  if (!(now < found.exp)) {
    verified.delete(token);
    throw refuse(ctx, 'CSRF_INVALID', 'expired');
  }
  return p.singleUse ? spend(ctx, found.nonce, found.exp) : undefined;
}

async function spend(ctx: RequestContext, nonce: string, exp: number): Promise<void> {
  let fresh: boolean;
  try {
    ({ fresh } = await ctx.services.supervisor.ask(
      { type: 'csrf-spend', nonce, exp },
      SPEND_TIMEOUT_MS,
    ));
  } catch (err) {
    if (!(err instanceof AskError)) throw err;
    // Logged by dispatch.ts with the ask's code (a 5xx answer), once per request.
    throw new GatewayError('CSRF_UNAVAILABLE', { cause: err });
  }
  if (!fresh) throw refuse(ctx, 'CSRF_INVALID', 'already used (csrf_single_use)');
}

/** No header: the token must be in a form or JSON body, read whole (bounded) and kept. */
function fromBody(p: Plan, ctx: RequestContext): Promise<void> {
  const ex = ctx.ex;
  if (!ex.hasBody) throw refuse(ctx, 'CSRF_INVALID', 'no token (no header, no body)');
  const format = readableFormat(ctx);
  const contentType = singleHeader(ex, 'content-type')!;
  // Read on the next microtask: runSteps first has the body held (pipeline.ts).
  return Promise.resolve()
    .then(() => readBody(ex, p.maxBody))
    .then(
      (body) => {
        ctx.body = body;
        return bodyToken(body, format, contentType);
      },
      (err: unknown) => {
        if (err instanceof GatewayError && err.code === 'BODY_TOO_LARGE') {
          throw refuse(ctx, 'CSRF_BODY_UNREADABLE', `body over ${p.maxBody} bytes`);
        }
        throw err;
      },
    )
    .then((found) => {
      switch (found.kind) {
        case 'token':
          return verify(p, ctx, found.token);
        case 'missing':
          throw refuse(ctx, 'CSRF_INVALID', 'no token (no header, no csrf_token field)');
        case 'malformed':
          throw refuse(ctx, 'CSRF_INVALID', found.reason);
        case 'unreadable':
          throw refuse(ctx, 'CSRF_BODY_UNREADABLE', found.reason);
        default: {
          const unknown: never = found;
          throw new Error(`unknown body token ${JSON.stringify(unknown)}`);
        }
      }
    });
}

/** The body's format, or a refusal: compressed, no single Content-Type, or a type without fields. */
function readableFormat(ctx: RequestContext): BodyFormat {
  const h = ctx.ex.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'content-encoding' && !IDENTITY.test(h[i + 1]!)) {
      throw refuse(ctx, 'CSRF_BODY_UNREADABLE', 'compressed body (Content-Encoding)');
    }
  }
  const contentType = singleHeader(ctx.ex, 'content-type');
  if (contentType === null) throw refuse(ctx, 'CSRF_BODY_UNREADABLE', 'several Content-Types');
  const format = contentType === undefined ? undefined : bodyFormat(contentType);
  if (format === undefined) {
    throw refuse(ctx, 'CSRF_BODY_UNREADABLE', 'body is not a form or JSON');
  }
  return format;
}

/**
 * CSRF protection of cookie-authenticated requests; compiled only where it applies
 * ({@link csrfApplies}), after the credential, user list, rate limit and head filters, before
 * the body filters (which then reuse a body it buffered).
 */
export const csrf: RouteFeature = {
  name: 'csrf',
  compile(build) {
    if (!csrfApplies(build.config, build.route)) return;
    const p = plan(build.config, build.route);
    build.step((ctx) => check(p, ctx));
  },
};

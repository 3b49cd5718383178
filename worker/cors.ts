/*
 * CORS (config `cors_origins`; Fetch standard, "CORS protocol"). With origins listed the gateway
 * owns CORS for everything it answers or proxies:
 * - a request whose `Origin` is listed gets `Access-Control-Allow-Origin: <that origin>`,
 *   `Access-Control-Allow-Credentials: true` and the exposed headers on whatever answer it
 *   gets (a 401, 404 or 429 included, so the browser app can read the error);
 * - every answer carries `Vary: Origin` (merged with an upstream's own Vary), since its headers
 *   depend on Origin; an upstream's `Access-Control-*` headers are dropped (upstream-headers.ts),
 *   so a backend's `Access-Control-Allow-Origin: *` cannot widen the list;
 * - a preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered by the
 *   gateway, never forwarded: 204 from a listed origin, 403 CORS_ORIGIN_NOT_ALLOWED otherwise.
 * Origins match on scheme, host and port (RFC 6454 section 5), host case-insensitive, a default
 * port and one trailing `/` ignored; `null` and anything that is not a serialized http(s)
 * origin never match. With no origin listed nothing here runs (Runtime.cors is undefined).
 */

import { canonicalRequestOrigin } from '../conf/value-checks.js';
import { GatewayError, refusal } from '../shared/errors.js';
import type { RequestContext } from './request-context.js';
import { type Exchange, type HeaderPair, sendNoContent } from './uws-io.js';

/** What a config generation allows, compiled once. */
export interface CorsPolicy {
  /** Listed origins (canonical, as conf/value-checks.ts canonicalOrigin writes them) to the headers their requests get. */
  readonly byOrigin: ReadonlyMap<string, readonly HeaderPair[]>;
}

/** The headers of a request whose origin is not listed (or that has none): nothing but Vary. */
export const NOT_LISTED: readonly HeaderPair[] = Object.freeze([]);

/**
 * Response headers a listed origin's script may read besides the CORS-safelisted ones: when to
 * retry (429, 503), the rate limit's state, and why a token was refused.
 */
export const EXPOSED_HEADERS = 'Retry-After, RateLimit, RateLimit-Policy, WWW-Authenticate';

/** Request headers a preflight allows: the credential, JSON bodies, the CSRF token. */
export const ALLOWED_HEADERS = 'Authorization, Content-Type, X-CSRF-Token';

/** How long (seconds) a browser may cache a preflight answer: a config change reaches it within. */
export const PREFLIGHT_MAX_AGE = 600;

/** Methods a preflight lists for a path whose route does not restrict them (`allow_methods`). */
export const STANDARD_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';

const PREFLIGHT_HEADERS: readonly HeaderPair[] = Object.freeze([
  ['access-control-allow-headers', ALLOWED_HEADERS],
  ['access-control-max-age', String(PREFLIGHT_MAX_AGE)],
] as const);

/** Undefined when no origin is listed: CORS is then off and costs nothing per request. */
export function compileCors(origins: readonly string[]): CorsPolicy | undefined {
  if (origins.length === 0) return undefined;
  const byOrigin = new Map<string, readonly HeaderPair[]>();
  for (const origin of origins) {
    // The listed (canonical) form is what is sent back, never the client's bytes.
    byOrigin.set(
      origin,
      Object.freeze([
        ['access-control-allow-origin', origin],
        ['access-control-allow-credentials', 'true'],
        ['access-control-expose-headers', EXPOSED_HEADERS],
      ] as const),
    );
  }
  return { byOrigin };
}

/**
 * The headers for a request's `Origin` value: the listed origin's, or NOT_LISTED. The exact
 * form browsers send is one Map lookup; another spelling is canonicalized first.
 */
export function corsHeadersFor(policy: CorsPolicy, origin: string): readonly HeaderPair[] {
  const exact = policy.byOrigin.get(origin);
  if (exact !== undefined) return exact;
  // The same canonical form as the config's entries and the CSRF Origin check
  // (worker/csrf-origin.ts): the URL parser's serialization, which is what browsers send.
  const canonical = canonicalRequestOrigin(origin);
  return (canonical === undefined ? undefined : policy.byOrigin.get(canonical)) ?? NOT_LISTED;
}

/** What {@link readCors} found: a plain request, a preflight, or several Origin headers. */
export type CorsRequest = 'plain' | 'preflight' | 'ambiguous';

/**
 * Reads the request's Origin and decides the CORS headers of its answer (`ex.cors`, written by
 * uws-io.ts whoever answers). Never throws: the dispatcher runs it before the request checks,
 * so that their refusals carry the headers too, and refuses 'ambiguous' after them.
 */
export function readCors(
  ex: Pick<Exchange, 'headers' | 'method' | 'cors'>,
  policy: CorsPolicy,
): CorsRequest {
  const h = ex.headers;
  let origin: string | undefined;
  let several = false;
  let requestMethod = false;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (name === 'origin') {
      several = origin !== undefined;
      if (several) break;
      origin = h[i + 1];
    } else if (name === 'access-control-request-method') requestMethod = true;
  }
  if (several) {
    ex.cors = NOT_LISTED;
    return 'ambiguous';
  }
  ex.cors = origin === undefined ? NOT_LISTED : corsHeadersFor(policy, origin);
  return origin !== undefined && requestMethod && ex.method === 'OPTIONS' ? 'preflight' : 'plain';
}

/**
 * RFC 6454 section 7.3: a user agent sends at most one Origin. With several, which one a
 * backend's own check reads is a guess: the request is refused.
 */
export const AMBIGUOUS_ORIGIN = new GatewayError('BAD_REQUEST', {
  detail: 'more than one Origin header',
});

/** Fetch never sends a body with a preflight; one that has a body is refused, not answered. */
const PREFLIGHT_BODY = new GatewayError('BAD_REQUEST', { detail: 'a CORS preflight has no body' });

/**
 * Answers a preflight itself (never forwarded): 403 CORS_ORIGIN_NOT_ALLOWED from an origin
 * not listed; else 204 with the methods of the path (a gateway endpoint's, a route's
 * `allow_methods`, else {@link STANDARD_METHODS}), {@link ALLOWED_HEADERS} and the max age.
 * The answer does not depend on which method or headers were asked for: the browser compares
 * them with the lists and names what is missing. `path` is canonical, `bare` without its
 * trailing slash.
 */
export function answerPreflight(ctx: RequestContext, path: string, bare: string): undefined {
  const ex = ctx.ex;
  if (ex.cors === NOT_LISTED) throw refusal('CORS_ORIGIN_NOT_ALLOWED');
  if (ex.hasBody) throw PREFLIGHT_BODY;
  const rt = ctx.rt;
  let methods = STANDARD_METHODS;
  const endpoint = rt.endpoints.get(bare);
  if (endpoint !== undefined) {
    ctx.logRoute = endpoint.path;
    methods = [...endpoint.methods.keys()].join(', ');
  } else {
    const route = rt.routes.match(path)?.route;
    if (route !== undefined) {
      ctx.logRoute = route.prefix;
      methods = routeMethods(route.config.allow_methods) ?? STANDARD_METHODS;
    }
  }
  sendNoContent(ex, [['access-control-allow-methods', methods], ...PREFLIGHT_HEADERS]);
  return undefined;
}

/** A route's `allow_methods` as the route answers them (GET brings HEAD, steps/allowed-methods.ts). */
function routeMethods(listed: readonly string[] | undefined): string | undefined {
  if (listed === undefined || listed.length === 0) return undefined;
  const methods = new Set(listed);
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].join(', ');
}

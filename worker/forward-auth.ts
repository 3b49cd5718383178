/*
 * `GET`/`HEAD /auth/verify`: forward-auth (README "Forward-auth"). A reverse proxy the operator
 * keeps (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`) asks, for each
 * request it receives, whether it may pass and as whom; the gateway judges the request the
 * proxy describes with the same route match and the same compiled route steps as a request it
 * proxies (credential, revocation, user list, methods, head filters, rate limit, CSRF), and
 * forwards nothing.
 *
 * Only a socket peer in `trusted_proxies` is answered (403 FORWARD_AUTH_UNTRUSTED otherwise,
 * before any forwarding header is read): anyone else could describe any request it likes. The
 * original's method, path, query and host replace the exchange's while the steps run, so the
 * steps read them where they read a proxied request's; the method is put back before any
 * answer is written (a HEAD to this endpoint gets no body).
 *
 * Answers: 200 with `x-user` and `x-user-roles` (encoded as proxied requests get them) when
 * allowed; otherwise the refusal's own status and JSON body. Every answer carries
 * `X-ProxyAuth-Status` (the status) and, when refused, `X-ProxyAuth-Error` (the code): nginx's
 * auth_request turns every status but 2xx, 401 and 403 into 500, and these let its config map
 * the real one back. A browser (Accept: text/html) refused with 401 on a secure route in
 * session-cookie mode is sent to the login page: 302 for the X-Forwarded-* family (Traefik,
 * Caddy relay it), 401 with `X-ProxyAuth-Redirect` for nginx's X-Original-* family (nginx
 * would turn a 302 into 500).
 */

import type { Config } from '../conf/config-schema.js';
import { errorBody, GatewayError, refusal } from '../shared/errors.js';
import { foldPath } from '../shared/path-fold.js';
import { canonicalizePath } from './canonical-path.js';
import { csrfTokensFor } from './csrf-token.js';
import { type OriginalRequest, readOriginalRequest } from './forward-auth-request.js';
import { acceptsHtml } from './page-answer.js';
import type { Handler } from './pipeline.js';
import { allowedRedirect, type RedirectHosts } from './redirect-target.js';
import type { RequestContext } from './request-context.js';
import { badPath, matchRoute, runRoute } from './route-dispatch.js';
import type { CompiledRoute } from './runtime.js';
import { addResponseHeader, type HeaderPair, sendBody, sendJson } from './uws-io.js';

/** The endpoint's path (reserved: no route receives it). */
export const FORWARD_AUTH_PATH = '/auth/verify';

/** What the handler needs of the config, compiled once per generation. */
interface Plan {
  /** `forward_auth.login_url`. */
  readonly loginUrl: string;
  readonly hosts: RedirectHosts;
  readonly sessionCookie: boolean;
}

/** The endpoint's handler for a config generation (GET and HEAD). */
export function forwardAuthHandler(config: Config): Handler {
  const plan: Plan = {
    loginUrl: config.forward_auth.login_url,
    hosts: redirectHosts(config),
    sessionCookie: config.session_cookie,
  };
  return (ctx) => judge(ctx, plan);
}

/** `forward_auth.redirect_hosts`, as redirect-target.ts compares them. */
export function redirectHosts(config: Config): RedirectHosts {
  return new Set(config.forward_auth.redirect_hosts);
}

function judge(ctx: RequestContext, plan: Plan): Promise<void> | undefined {
  const ex = ctx.ex;
  const own = ex.method;
  const allow: Handler = (c) => {
    ex.method = own;
    answerAllowed(c);
    return undefined;
  };
  let original: OriginalRequest | undefined;
  let work: Promise<void> | undefined;
  try {
    original = describe(ctx);
    work = decide(ctx, original, allow);
  } catch (err) {
    ex.method = own;
    return refused(ctx, err, original, plan);
  }
  if (work === undefined) return undefined;
  return work.then(
    () => {
      ex.method = own;
    },
    (err: unknown) => {
      ex.method = own;
      return refused(ctx, err, original, plan);
    },
  );
}

/**
 * The request the trusted peer describes, put in place of the exchange's method, path, query
 * and host; refuses an untrusted peer before reading any of its headers.
 */
function describe(ctx: RequestContext): OriginalRequest {
  const ex = ctx.ex;
  const trusted = ctx.rt.trustedProxies;
  if (trusted === undefined || !trusted(ex.ip)) throw refusal('FORWARD_AUTH_UNTRUSTED');
  if (ex.hasBody) {
    throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', {
      detail: 'the request has a body; forward-auth judges heads only',
    });
  }
  const original = readOriginalRequest(ex.headers);
  ex.method = original.method;
  ex.url = original.url;
  ex.query = original.query;
  if (original.host !== undefined) ex.host = original.host;
  return original;
}

/** The proxied path's checks on the original request: route, then the route's steps. */
function decide(
  ctx: RequestContext,
  original: OriginalRequest,
  allow: Handler,
): Promise<void> | undefined {
  const path = canonicalizePath(original.url);
  if (path === null) throw badPath(original.url);
  if (path !== original.url && reshaped(original.url)) {
    throw new GatewayError('BAD_PATH', { detail: RESHAPED });
  }
  if (original.query === '' && lostTail(path, ctx.rt.nonAsciiEndings)) {
    throw new GatewayError('FORWARD_AUTH_BAD_REQUEST', { detail: LOST_TAIL });
  }
  ctx.path = path;
  const bare =
    path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f ? path.slice(0, -1) : path;
  const route = matchRoute(ctx, path, bare);
  // Access log and metrics count decisions under the endpoint (the log's path is the URI).
  ctx.logRoute = FORWARD_AUTH_PATH;
  // Fail closed: a body filter cannot be evaluated, so the route cannot be judged here.
  if (readsBody(route)) throw refusal('FORWARD_AUTH_NEEDS_BODY');
  if (ctx.upgrade !== undefined && !route.config.websocket) throw refusal('WEBSOCKET_NOT_ALLOWED');
  return runRoute(ctx, route, allow);
}

const LOST_TAIL =
  'the URI may have lost bytes above 0x7f at its end (the HTTP parser strips them from header values) and would then be judged under another route: send it percent-encoded';

/**
 * Whether the URI's path, as judged, may be the start of a longer one that another route takes.
 * uWS strips bytes above 0x7f at the end of a header value (README "Known limits"): a URI the
 * proxy sent raw, `/café`, arrives as `/caf`, which a public `/` would let through while the
 * proxy serves the secure `/café` route's backend. Such a path can only have lost a run of
 * non-ASCII chars within its last segment: refused when some route prefix is the path plus
 * such a run (exactly, or as a lenient backend folds paths). Attack of 2026-12-02.
 */
function lostTail(path: string, endings: readonly string[]): boolean {
  if (endings.length === 0) return false;
  const folded = foldPath(path);
  for (const prefix of endings) {
    if (extendsByNonAscii(prefix, path) || extendsByNonAscii(foldPath(prefix), folded)) return true;
  }
  return false;
}

/** `longer` is `start` followed by one or more chars above 0x7f and nothing else. */
function extendsByNonAscii(longer: string, start: string): boolean {
  if (longer.length <= start.length || !longer.startsWith(start)) return false;
  for (let i = start.length; i < longer.length; i++) if (longer.charCodeAt(i) <= 0x7f) return false;
  return true;
}

const RESHAPED =
  'the path has a dot segment, an empty segment, a backslash or an encoded slash: the proxy passes it to the backend as it is, so it cannot be judged';
const ENCODED_SEPARATOR = /%(?:2f|5c)/i;
const ENCODED_DOT = /%2e/gi;

/**
 * Whether canonicalization changes the segments of a raw path (a backslash, `%2F`/`%5C`, an
 * empty segment or a `.`/`..` segment, raw or encoded). The proxied path forwards the canonical
 * path, but behind forward-auth the backend receives the proxy's raw URI: `/admin/..%2fpublic`
 * would be judged as `/public` and routed by many backends under `/admin`. Refusing these
 * (400 BAD_PATH) leaves only paths whose canonical form is the raw path with each segment's
 * escapes decoded, which a backend reads the same way whether it decodes or not.
 */
function reshaped(raw: string): boolean {
  if (raw.includes('\\') || ENCODED_SEPARATOR.test(raw)) return true;
  const segments = raw.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    // A trailing slash leaves one empty last segment: kept as it is by the canonicalizer.
    if (segment === '') {
      if (i === segments.length - 1) continue;
      return true;
    }
    const dots = segment.replace(ENCODED_DOT, '.');
    if (dots === '.' || dots === '..') return true;
  }
  return false;
}

const bodyReaders = new WeakMap<CompiledRoute, boolean>();

/** Whether the route has `body_raw` / `body_json` filter conditions. */
function readsBody(route: CompiledRoute): boolean {
  let known = bodyReaders.get(route);
  if (known === undefined) {
    const f = route.config.filters;
    const conditions = f === undefined ? [] : [...f.allow, ...f.deny];
    known = conditions.some((c) => c.field === 'body_raw' || c.field === 'body_json');
    bodyReaders.set(route, known);
  }
  return known;
}

/**
 * Empty identity headers on a public route: proxies that copy them then overwrite a client's
 * own copy with nothing (nginx drops an empty header; Caddy 2.6's copy_headers would otherwise
 * send its placeholder's text, `{http.reverse_proxy.header.X-User}`, measured).
 */
const ANONYMOUS: readonly HeaderPair[] = [
  ['x-proxyauth-status', '200'],
  ['x-user', ''],
  ['x-user-roles', ''],
  ['x-proxyauth-csrf-token', ''],
];

function answerAllowed(ctx: RequestContext): void {
  const identity = ctx.user?.identity;
  const headers: readonly HeaderPair[] =
    identity === undefined
      ? ANONYMOUS
      : [
          ['x-proxyauth-status', '200'],
          ['x-user', identity.user],
          ['x-user-roles', identity.roles],
          ['x-proxyauth-csrf-token', csrfTokenOf(ctx)],
        ];
  sendBody(ctx.ex, 200, 'text/plain; charset=utf-8', '', headers);
}

/**
 * A fresh CSRF token of the request's cookie session, for the proxy to pass to the backend
 * (`X-ProxyAuth-CSRF-Token`), which puts it where its pages' scripts read it and send it back in
 * `X-CSRF-Token`: behind forward-auth the gateway never sees the pages, so it cannot fill their
 * placeholders. Empty for a bearer session (exempt from CSRF) or with `csrf_token` off.
 */
function csrfTokenOf(ctx: RequestContext): string {
  const session = ctx.session;
  const { config, codec } = ctx.rt;
  if (!ctx.viaCookie || session === undefined || !config.session_cookie || !config.csrf_token) {
    return '';
  }
  const tokens = csrfTokensFor(codec, session.keyId);
  if (tokens === undefined) return '';
  return tokens.mint(session.tokenId, Math.floor(Date.now() / 1000), config.csrf_token_ttl);
}

/**
 * A refusal: the status headers on it, and for a browser that must log in, the login page's
 * address. Rethrows for dispatch.ts's one answer path, except the 302 written here.
 */
function refused(
  ctx: RequestContext,
  err: unknown,
  original: OriginalRequest | undefined,
  plan: Plan,
): undefined {
  const gateway = err instanceof GatewayError ? err : new GatewayError('INTERNAL', { cause: err });
  const ex = ctx.ex;
  addResponseHeader(ex, 'x-proxyauth-status', String(gateway.status));
  addResponseHeader(ex, 'x-proxyauth-error', gateway.code);
  if (original === undefined || !mustLogIn(ctx, gateway, original, plan)) throw gateway;
  const login = loginLocation(original, plan);
  if (original.family === 'original') {
    addResponseHeader(ex, 'x-proxyauth-redirect', login);
    throw gateway;
  }
  ctx.code = gateway.code;
  sendJson(ex, 302, errorBody(gateway.code, gateway.detail), [['location', login]]);
  return undefined;
}

/** A browser's navigation refused for want of a valid session on a session-cookie route. */
function mustLogIn(
  ctx: RequestContext,
  err: GatewayError,
  original: OriginalRequest,
  plan: Plan,
): boolean {
  return (
    plan.sessionCookie &&
    err.status === 401 &&
    ctx.route?.config.secure === true &&
    (original.method === 'GET' || original.method === 'HEAD') &&
    acceptsHtml(ctx.ex)
  );
}

/**
 * `login_url` with `rd`, the original URL: its path when the login page is on the same site
 * (a relative `login_url`), else the absolute URL, which needs `X-Forwarded-Host` and a host
 * of `redirect_hosts`. An `rd` the login would refuse is left out (the user then lands where
 * `login_redirect_url` says).
 */
function loginLocation(original: OriginalRequest, plan: Plan): string {
  const uri = original.query === '' ? original.url : `${original.url}?${original.query}`;
  let rd: string | undefined;
  if (plan.loginUrl.startsWith('/')) rd = allowedRedirect(uri, plan.hosts);
  else if (original.host !== undefined) {
    rd = allowedRedirect(`${original.proto ?? 'https'}://${original.host}${uri}`, plan.hosts);
  }
  return rd === undefined ? plan.loginUrl : `${plan.loginUrl}?rd=${encodeURIComponent(rd)}`;
}

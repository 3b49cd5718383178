/*
 * The Origin / Referer half of the CSRF check (OWASP CSRF Prevention Cheat Sheet, "Verifying
 * origin with standard headers"): a state-changing request authenticated by the session cookie
 * must come from a page of the gateway itself or of a `cors_origins` entry.
 *
 * - `Origin` present (RFC 6454 section 7; browsers send it on every request whose method is
 *   not GET or HEAD, and on every WebSocket handshake): it must be one of those origins.
 *   `null` (sandboxed frames, `file:` pages, some redirects) is refused, and so is a value that
 *   is not an http(s) origin, or two Origin headers.
 * - `Origin` absent, `Referer` present: the Referer's origin is checked the same way.
 * - both absent: nothing to check here, the CSRF token alone decides (README "CSRF").
 *
 * The gateway's own origin is `https://<Host>`, and also `http://<Host>` when the gateway
 * itself is not on TLS: behind a TLS-terminating proxy the browser's page is https while the
 * gateway sees plain HTTP, and on plain HTTP in development the page is http. A front proxy
 * that rewrites Host hides the public name: the operator lists it in `cors_origins`.
 */

import type { Config } from '../conf/config-schema.js';
import { canonicalRequestOrigin } from '../conf/value-checks.js';
import { refusal } from '../shared/errors.js';
import type { Step } from './pipeline.js';
import { type Exchange, header } from './uws-io.js';

/** What the origin check compares against, compiled once per config generation. */
export interface OriginPolicy {
  /** `cors_origins`, canonical (conf/config-schema.ts normalises them with the URL parser). */
  readonly listed: ReadonlySet<string>;
  /** The gateway is not on TLS: `http://<Host>` is its own origin too. */
  readonly plainHttp: boolean;
}

/** Why a request's origin was refused (for the log); undefined when it passes. */
export type OriginRefusal =
  | 'several Origin headers'
  | 'Origin is null'
  | 'Origin is not an http(s) origin'
  | 'foreign Origin'
  | 'several Referer headers'
  | 'Referer is not an http(s) URL'
  | 'foreign Referer';

/** Checks the request's Origin, else its Referer; undefined when it passes (or has neither). */
export function originRefusal(ex: Exchange, policy: OriginPolicy): OriginRefusal | undefined {
  let origin: string | undefined | null;
  let referer: string | undefined | null;
  const h = ex.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (name === 'origin') origin = origin === undefined ? h[i + 1]! : null;
    else if (name === 'referer') referer = referer === undefined ? h[i + 1]! : null;
  }
  if (origin === null) return 'several Origin headers';
  if (origin !== undefined) {
    const value = origin.trim();
    if (value === 'null') return 'Origin is null';
    const verdict = judge(value, ex.host!, policy);
    if (verdict === 'unparsable') return 'Origin is not an http(s) origin';
    return verdict === 'foreign' ? 'foreign Origin' : undefined;
  }
  if (referer === null) return 'several Referer headers';
  if (referer === undefined) return undefined;
  const from = refererOrigin(referer.trim());
  if (from === undefined) return 'Referer is not an http(s) URL';
  return judge(from, ex.host!, policy) === 'own' ? undefined : 'foreign Referer';
}

/**
 * Whether `origin` is the gateway's own (for this `host`) or listed. Browsers serialise origins
 * canonically (lower-case scheme and host, no default port), so an exact comparison settles
 * nearly every request; any other spelling is canonicalised first, the way the CORS lists are
 * (conf/value-checks.ts canonicalRequestOrigin).
 */
function judge(
  origin: string,
  host: string,
  policy: OriginPolicy,
): 'own' | 'foreign' | 'unparsable' {
  if (policy.listed.has(origin)) return 'own';
  if (origin === `https://${host}` || (policy.plainHttp && origin === `http://${host}`)) {
    return 'own';
  }
  const canonical = canonicalRequestOrigin(origin);
  if (canonical === undefined) return 'unparsable';
  if (policy.listed.has(canonical)) return 'own';
  if (canonical === canonicalRequestOrigin(`https://${host}`)) return 'own';
  if (policy.plainHttp && canonical === canonicalRequestOrigin(`http://${host}`)) return 'own';
  return 'foreign';
}

/** The origin of a Referer URL (RFC 9110 section 10.1.3), undefined unless http(s). */
function refererOrigin(referer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(referer);
  } catch {
    return undefined;
  }
  return url.protocol === 'https:' || url.protocol === 'http:' ? url.origin : undefined;
}

/**
 * A step of session-cookie mode's own endpoints (`POST /auth`, `/logout`): a request whose
 * Origin (or Referer) names another site is refused 403 CSRF_ORIGIN_MISMATCH, so a foreign page
 * can neither log a browser into the attacker's account (login CSRF: browsers keep a
 * `SameSite=Strict` cookie set in answer to a cross-site form post) nor log it out. Requests with
 * an `Authorization` header (API clients) and requests with neither header pass.
 */
export function sameOriginStep(config: Config): Step {
  const policy: OriginPolicy = { listed: new Set(config.cors_origins), plainHttp: !config.tls };
  return (ctx) => {
    if (header(ctx.ex, 'authorization') !== undefined) return;
    const bad = originRefusal(ctx.ex, policy);
    if (bad === undefined) return;
    ctx.services.log.warn('cross-origin request to a session endpoint refused', {
      reason: bad,
      path: ctx.logRoute,
      ip: ctx.clientIp,
    });
    throw refusal('CSRF_ORIGIN_MISMATCH');
  };
}

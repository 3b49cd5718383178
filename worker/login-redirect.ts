import type { Config } from '../conf/config-schema.js';
import { GatewayError } from '../shared/errors.js';
import { FORWARD_AUTH_PATH } from './forward-auth.js';
import { acceptsHtml } from './page-answer.js';
import { allowedRedirect, type RedirectHosts } from './redirect-target.js';
import type { RequestContext } from './request-context.js';
import { header } from './uws-io.js';

const compiled = new WeakMap<Config, RedirectHosts>();

function hostsOf(config: Config): RedirectHosts {
  let hosts = compiled.get(config);
  if (hosts === undefined) {
    hosts = new Set(config.forward_auth.redirect_hosts);
    compiled.set(config, hosts);
  }
  return hosts;
}

/**
 * Where a successful session-cookie login sends the browser: the `rd` query parameter of
 * `POST /auth` (set by forward-auth's login redirect, and kept by the login form, which posts
 * to its own URL), checked by redirect-target.ts; undefined without one. A target that is not
 * allowed, or several `rd`, refuse with 400 REDIRECT_NOT_ALLOWED before the password is looked
 * at: never an open redirect, and never a silent fallback the user would not understand.
 */
export function loginRedirect(ctx: RequestContext): string | undefined {
  const query = ctx.ex.query;
  if (!query.includes('rd=')) return undefined;
  const values = new URLSearchParams(query).getAll('rd');
  if (values.length === 0) return undefined;
  if (values.length > 1) {
    throw new GatewayError('REDIRECT_NOT_ALLOWED', { detail: 'several rd parameters' });
  }
  const target = allowedRedirect(values[0]!, hostsOf(ctx.rt.config));
  if (target === undefined) throw new GatewayError('REDIRECT_NOT_ALLOWED');
  return target;
}

/** The check as a step of `POST /auth` (session-login.ts), before any password work. */
export function checkLoginRedirect(ctx: RequestContext): void {
  loginRedirect(ctx);
}

/**
 * Where a browser is sent when its navigation to a secure route is refused for want of a valid
 * session (401) in session-cookie mode: the gateway's login page, `/auth?rd=<the URL it
 * asked for>`, so that logging in brings it back (README "Session cookie"). Undefined, and the
 * usual JSON 401 answers, for anything that is not a browser's navigation: a method other than
 * GET/HEAD, no `Accept` naming `text/html`, an `Authorization` header (an API client), a
 * WebSocket handshake, a public route, bearer mode. An `rd` redirect-target.ts would refuse is
 * left out.
 */
export function browserLoginLocation(ctx: RequestContext, status: number): string | undefined {
  if (status !== 401 || !ctx.rt.config.session_cookie) return undefined;
  const ex = ctx.ex;
  if ((ex.method !== 'GET' && ex.method !== 'HEAD') || ctx.upgrade !== undefined) return undefined;
  if (ctx.route?.config.secure !== true || header(ex, 'authorization') !== undefined) {
    return undefined;
  }
  // Forward-auth's decisions answer their proxy in their own way (worker/forward-auth.ts).
  if (ctx.logRoute === FORWARD_AUTH_PATH) return undefined;
  if (!acceptsHtml(ex)) return undefined;
  const uri = ex.query === '' ? ex.url : `${ex.url}?${ex.query}`;
  const rd = allowedRedirect(uri, hostsOf(ctx.rt.config));
  return rd === undefined ? '/auth' : `/auth?rd=${encodeURIComponent(rd)}`;
}

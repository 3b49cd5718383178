import type { Config } from '../conf/config-schema.js';
import { GatewayError } from '../shared/errors.js';
import { allowedRedirect, type RedirectHosts } from './redirect-target.js';
import type { RequestContext } from './request-context.js';

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

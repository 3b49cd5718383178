import type { Config } from './config-schema.js';
import type { RouteConfig } from './routes-schema.js';

/**
 * Session-cookie settings that are valid but will not do what the operator probably expects,
 * one `<file>: <key>: <message>` line each (printed at start, at each reload and by
 * check-config):
 * - `session_cookie` on a gateway without TLS: the cookie is always `Secure`, so browsers keep
 *   it only on https:// pages and on localhost; logins from elsewhere are refused with a clear
 *   error (worker/session-login.ts) rather than failing silently;
 * - `login_page` while `session_cookie` is off: nothing serves it;
 * - `logout_redirect_url` served by a secure route, as the source of the login page: a page
 *   behind a token cannot be shown to someone who is logging in.
 */
export function sessionWarnings(
  config: Config,
  routes: readonly RouteConfig[],
  configFile: string,
): string[] {
  const warnings: string[] = [];
  if (!config.session_cookie) {
    if (config.login_page !== undefined) {
      warnings.push(
        `${configFile}: login_page: has no effect: the login page belongs to session-cookie mode (session_cookie is false)`,
      );
    }
    return warnings;
  }
  if (!config.tls) {
    warnings.push(
      `${configFile}: session_cookie: the gateway serves plain HTTP (tls: false) and the session ` +
        'cookie is Secure: browsers keep it only on https:// pages and on http://localhost; ' +
        'logins from other hosts are refused (403 SESSION_NEEDS_HTTPS) unless a TLS proxy ' +
        'listed in trusted_proxies sends X-Forwarded-Proto: https',
    );
  }
  const url = config.logout_redirect_url;
  if (config.login_page === undefined && url !== undefined && url.startsWith('/')) {
    const route = routeOf(url, routes);
    if (route?.secure) {
      warnings.push(
        `${configFile}: logout_redirect_url: ${url} is served by the secure route ` +
          `${route.prefix}, and a login page must be public: failed browser logins get the ` +
          'built-in page (set secure: false on that route, or set login_page)',
      );
    }
  }
  return warnings;
}

/** Paths the gateway answers itself (worker/endpoints.ts): no route serves them. */
const GATEWAY_PATH = /^\/(?:(?:auth|logout)\/?$|adm(?:\/|$))/;

/** The longest-prefix route of `url`'s path, per segment, as the edge matches it. */
function routeOf(url: string, routes: readonly RouteConfig[]): RouteConfig | undefined {
  const path = url.split(/[?#]/, 1)[0]!;
  if (GATEWAY_PATH.test(path)) return undefined;
  let best: RouteConfig | undefined;
  for (const r of routes) {
    const p = r.prefix;
    const matches = p === '/' || path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`);
    if (matches && (best === undefined || p.length > best.prefix.length)) best = r;
  }
  return best;
}

/*
 * Which page session-cookie mode shows (README "Browser sessions"), in this order:
 * 1. config.json `login_page`, a file read and checked by the supervisor (conf/login-page.ts);
 * 2. else the page at `logout_redirect_url` when it is a path a public route of this gateway
 *    serves (the original's way: users land there after logout), fetched through that route
 *    (route-page.ts); only for failed logins: `GET /auth` cannot fetch on every visit, and
 *    the route serves that page itself;
 * 3. else the built-in page (builtin-pages.ts), also when the route's page cannot be had.
 */

import type { Config } from '../conf/config-schema.js';
import type { Logger } from '../shared/log.js';
import { builtinLoginPage } from './builtin-pages.js';
import { canonicalizePath } from './canonical-path.js';
import { builtinPageHeaders, operatorPageHeaders, type PageHeaders } from './page-answer.js';
import { RoutePage, type RoutePageTarget } from './route-page.js';
import type { RouteTable } from './route-table.js';
import type { CompiledRoute } from './runtime.js';

/** A page and the headers it is served with. */
export interface Page {
  readonly html: string;
  readonly headers: PageHeaders;
}

/** The login pages of one config generation. */
export class LoginPages {
  /** The page of `GET /auth`: the configured file, else the built-in one. */
  readonly form: Page;
  readonly #builtin: Page;
  readonly #route: { page: RoutePage; headers: PageHeaders } | undefined;

  /**
   * `file`: config.json's `login_page` text; `reserved`: whether a canonical path (without its
   * trailing slash) is the gateway's own (endpoints.ts), which no route serves.
   */
  constructor(
    config: Config,
    file: string | undefined,
    routes: RouteTable<CompiledRoute>,
    reserved: (path: string) => boolean,
  ) {
    this.#builtin = {
      html: builtinLoginPage({ totp: config.login_via_otp }),
      headers: builtinPageHeaders(config),
    };
    this.form =
      file === undefined ? this.#builtin : { html: file, headers: operatorPageHeaders(config) };
    const target = file === undefined ? routeTarget(config, routes, reserved) : undefined;
    this.#route =
      target === undefined
        ? undefined
        : {
            page: new RoutePage(target, config.client_timeout, config.tls ? 'https' : 'http'),
            headers: operatorPageHeaders(config),
          };
  }

  /** The page a failed browser login is shown in (its error block still commented out). */
  failurePage(log: Logger): Page | Promise<Page> {
    const route = this.#route;
    if (route === undefined) return this.form;
    const got = route.page.get(log);
    if (got === undefined || typeof got === 'string') return this.#pick(got, route.headers);
    return got.then((html) => this.#pick(html, route.headers));
  }

  #pick(html: string | undefined, headers: PageHeaders): Page {
    return html === undefined ? this.#builtin : { html, headers };
  }
}

/**
 * The public route that serves `logout_redirect_url`, when it is a path (not a URL of another
 * site, not a gateway endpoint) and the route does not need a token (a secure route cannot
 * serve a login page: conf/session-warnings.ts warns at load).
 */
function routeTarget(
  config: Config,
  routes: RouteTable<CompiledRoute>,
  reserved: (path: string) => boolean,
): RoutePageTarget | undefined {
  const url = config.logout_redirect_url;
  if (url === undefined || !url.startsWith('/')) return undefined;
  const noFragment = url.split('#', 1)[0]!;
  const q = noFragment.indexOf('?');
  const rawPath = q === -1 ? noFragment : noFragment.slice(0, q);
  const query = q === -1 ? '' : noFragment.slice(q + 1);
  const path = canonicalizePath(rawPath);
  if (path === null) return undefined;
  const bare = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (reserved(bare)) return undefined;
  const match = routes.match(path);
  if (match === null || match.route.config.secure) return undefined;
  return { route: match.route, path, rest: match.rest, query, url };
}

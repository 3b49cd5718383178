/*
 * The login page served by one of the gateway's own public routes (the page at
 * `logout_redirect_url`, where the original's users put their login form), fetched the way the
 * route forwards: a GET through the route's upstream pool (its balancer's pick, its forward
 * proxy and TLS settings), at the upstream path the route would request.
 *
 * Bounded: MAX_LOGIN_PAGE_BYTES, PAGE_FETCH_TIMEOUT_MS (or client_timeout when shorter). The
 * page, or the failure, is kept PAGE_TTL_MS, and concurrent failed logins share one fetch, so
 * a burst of failed logins costs the backend one request per PAGE_TTL_MS at most; a failure is
 * logged once per fetch and the caller falls back to the built-in page.
 */

import { MAX_LOGIN_PAGE_BYTES } from '../conf/login-page.js';
import { errorBlockProblem } from '../shared/error-block.js';
import type { Logger } from '../shared/log.js';
import type { CompiledRoute } from './runtime.js';
import { upstreamRequest } from './upstream-request.js';
import { buildUpstreamPath } from './upstream-url.js';

/** How long a fetched page (or a failure to fetch it) is reused. */
export const PAGE_TTL_MS = 10_000;
/** The longest a fetch may take, head and body. */
export const PAGE_FETCH_TIMEOUT_MS = 5_000;

/** Where the page is: the route, and the request path on it. */
export interface RoutePageTarget {
  readonly route: CompiledRoute;
  /** The canonical path of `logout_redirect_url`. */
  readonly path: string;
  /** `path` after the route's prefix. */
  readonly rest: string;
  /** The query of `logout_redirect_url`, without `?`. */
  readonly query: string;
  /** `logout_redirect_url` as configured, for logs. */
  readonly url: string;
}

/** A failure to get a usable page, with the reason for the log. */
class PageUnavailable extends Error {}

/** The page of one route target, cached; one instance per config generation. */
export class RoutePage {
  readonly #target: RoutePageTarget;
  readonly #timeoutMs: number;
  readonly #proto: string;
  #cached: { until: number; page: string | undefined } | undefined;
  #pending: Promise<string | undefined> | undefined;

  constructor(target: RoutePageTarget, clientTimeoutMs: number, proto: string) {
    this.#target = target;
    this.#timeoutMs = Math.min(clientTimeoutMs, PAGE_FETCH_TIMEOUT_MS);
    this.#proto = proto;
  }

  /** The page, or undefined when it cannot be had now (the reason logged to `log`). */
  get(log: Logger): Promise<string | undefined> | string | undefined {
    const cached = this.#cached;
    if (cached !== undefined && Date.now() < cached.until) return cached.page;
    this.#pending ??= this.#refresh(log).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #refresh(log: Logger): Promise<string | undefined> {
    let page: string | undefined;
    try {
      page = await this.#fetch();
    } catch (err) {
      const reason = err instanceof PageUnavailable ? err.message : describe(err);
      log.warn('login page unavailable: failed browser logins get the built-in page', {
        url: this.#target.url,
        route: this.#target.route.prefix,
        reason,
      });
    }
    this.#cached = { until: Date.now() + PAGE_TTL_MS, page };
    return page;
  }

  async #fetch(): Promise<string> {
    const { route, path, rest, query } = this.#target;
    const backend = route.balancer?.pick();
    if (route.balancer !== undefined && backend === undefined) {
      throw new PageUnavailable('no backend of the route is available');
    }
    const to = backend ?? route;
    const upstreamPath = buildUpstreamPath({
      targetPath: to.targetPath,
      targetQuery: to.targetQuery,
      rest,
      canonicalPath: path,
      query,
      securePath: route.config.secure_path,
      preservePrefix: route.config.preserve_prefix,
    });
    const res = await upstreamRequest(backend?.pool ?? route.pool, {
      path: upstreamPath,
      method: 'GET',
      headers: {
        accept: 'text/html',
        'accept-encoding': 'identity',
        'user-agent': 'ProxyAuth',
        'x-forwarded-proto': this.#proto,
      },
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    if (res.statusCode !== 200) {
      res.body.destroy();
      throw new PageUnavailable(`the route answered ${res.statusCode}, not 200`);
    }
    const type = res.headers['content-type'];
    if (typeof type !== 'string' || !/^\s*text\/html\s*(?:;|$)/i.test(type)) {
      res.body.destroy();
      throw new PageUnavailable(`the page is not text/html (${String(type)})`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).byteLength;
      if (size > MAX_LOGIN_PAGE_BYTES) {
        res.body.destroy();
        throw new PageUnavailable(`the page is larger than ${MAX_LOGIN_PAGE_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const page = Buffer.concat(chunks).toString('utf8');
    const problem = errorBlockProblem(page);
    if (problem !== undefined) throw new PageUnavailable(`the page ${problem}`);
    return page;
  }
}

/** undici's string code (UND_ERR_*, ECONNREFUSED), else the error's name (TimeoutError...). */
function describe(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown };
  if (typeof e.code === 'string') return e.code;
  return typeof e.name === 'string' ? e.name : String(err);
}

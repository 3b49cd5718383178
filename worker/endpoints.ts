/*
 * The gateway's own endpoints, one table of reserved paths (exact canonical paths). They are
 * looked up before the route table, so no route, not even `/`, can shadow them. A reserved path
 * asked with another method answers 405 with `Allow` instead of being forwarded.
 */

import type { Config } from '../conf/config-schema.js';
import { GatewayError } from '../shared/errors.js';
import {
  handleLiftRevocation,
  handleListRevocations,
  handleLogout,
  handleRevoke,
  handleStats,
} from './admin-endpoints.js';
import { handleLogin } from './auth-handler.js';
import type { Handler } from './pipeline.js';
import type { RequestContext } from './request-context.js';

/** One reserved path: its handlers by method. */
export interface Endpoint {
  readonly path: string;
  readonly methods: ReadonlyMap<string, Handler>;
  /** The 405 for any other method, shared: its `Allow` header never changes. */
  readonly notAllowed: GatewayError;
}

function endpoint(path: string, methods: Record<string, Handler>): Endpoint {
  const map = new Map(Object.entries(methods));
  return {
    path,
    methods: map,
    notAllowed: new GatewayError('METHOD_NOT_ALLOWED', {
      headers: [['allow', [...map.keys()].join(', ')]],
    }),
  };
}

/**
 * The whole `/adm` subtree is the gateway's (as in the original): a path under it that is not
 * an endpoint answers 404 and is never forwarded, so endpoints added later shadow no route.
 */
export const ADMIN_PREFIX = '/adm';

/** Whether `path` (canonical, without a trailing slash) is in the reserved `/adm` subtree. */
export function isAdminPath(path: string): boolean {
  return path === ADMIN_PREFIX || path.startsWith(`${ADMIN_PREFIX}/`);
}

/** The reserved paths of a config generation (later: health, by config). */
export function compileEndpoints(_config: Config): ReadonlyMap<string, Endpoint> {
  const list = [
    endpoint('/auth', { POST: handleLogin }),
    endpoint('/logout', { GET: handleLogout, POST: handleLogout }),
    endpoint('/adm/revoke', { POST: handleRevoke }),
    // Listings answer HEAD as GET (same head, no body: uws-io.ts); /logout does not, a HEAD
    // must not log anyone out.
    endpoint('/adm/revocations', {
      GET: handleListRevocations,
      HEAD: handleListRevocations,
      DELETE: handleLiftRevocation,
    }),
    endpoint('/adm/stats', { GET: handleStats, HEAD: handleStats }),
  ];
  return new Map(list.map((e) => [e.path, e]));
}

/** Runs the endpoint's handler for the request's method, or refuses with 405. */
export function handleEndpoint(ctx: RequestContext, target: Endpoint): Promise<void> | undefined {
  ctx.logRoute = target.path;
  const handler = target.methods.get(ctx.ex.method);
  if (handler === undefined) throw target.notAllowed;
  return handler(ctx);
}

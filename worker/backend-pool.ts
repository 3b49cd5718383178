import type { Pool } from 'undici';
import type { RouteConfig } from '../conf/routes-schema.js';
import type { EdgeServices } from './edge-services.js';
import type { PoolOptions } from './upstream-pools.js';

/**
 * The one place an upstream pool of a route is obtained: its target, each of its backends,
 * and the fresh-connection pool of a resend. `route` is there for per-route connection
 * settings; `fresh`: a pool whose every request opens a new connection (upstream-pools.ts).
 */
export function backendPool(
  services: Pick<EdgeServices, 'pools'>,
  _route: RouteConfig,
  origin: string,
  options: PoolOptions,
  fresh = false,
): Pool {
  return fresh ? services.pools.fresh(origin, options) : services.pools.get(origin, options);
}

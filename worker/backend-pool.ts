import type { EdgeServices } from './edge-services.js';
import type { ConnectionProfile, PoolOptions, UpstreamPool } from './upstream-pools.js';

/**
 * The one place an upstream pool of a route is obtained: its target, each of its backends,
 * and the fresh-connection pool of a resend, all with the route's connection `profile`
 * (forward proxy, TLS); `fresh`: a pool whose every request opens a new connection.
 */
export function backendPool(
  services: Pick<EdgeServices, 'pools'>,
  profile: ConnectionProfile | undefined,
  origin: string,
  options: PoolOptions,
  fresh = false,
): UpstreamPool {
  return fresh
    ? services.pools.fresh(origin, options, profile)
    : services.pools.get(origin, options, profile);
}

import { H1Pool, type H1PoolOptions } from '../../worker/h1-client.js';

/**
 * An H1Pool to `origin` as the client tests drive it: keep-alive, 8 idle connections, 5 s
 * timeouts, idle connections kept 4 s; `extra` overrides any of them.
 */
export function testPool(origin: string, extra: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool({
    origin,
    keepAlive: true,
    maxIdle: 8,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    connectTimeoutMs: 5000,
    keepAliveTimeoutMs: 4000,
    keepAliveMaxMs: 60_000,
    ...extra,
  });
}

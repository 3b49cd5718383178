import type { buildConnector, Dispatcher } from 'undici';
import { Pool } from 'undici';
import { H1Pool } from './h1-client.js';
import { interimTolerantConnector } from './upstream-connector.js';
import {
  absoluteForm,
  type ForwardProxy,
  keepTlsFailure,
  proxyConnector,
  tunnelConnector,
  type UpstreamTls,
} from './upstream-proxy.js';

export interface PoolOptions {
  /** `max_idle_per_host`; 0 disables upstream keep-alive. See the comment in `get`. */
  maxConnections: number;
  timeoutMs: number;
  /** Upper bound for idle upstream connections, whatever the upstream's Keep-Alive hint says. */
  keepAliveMaxMs: number;
}

/**
 * How a route's connections are made when not straight with Node's defaults (routes.yml
 * `proxy`/`proxy_config`, `ca`, `tls_verify`, `cert`; built by worker/connection-profile.ts).
 * Two routes to one origin with different profiles get different pools.
 */
export interface ConnectionProfile {
  /** A digest of everything below (file contents included): equal keys, same connections. */
  readonly key: string;
  readonly proxy: ForwardProxy | undefined;
  /** For `https` origins; undefined: verify against Node's default roots, no client cert. */
  readonly tls: UpstreamTls | undefined;
}

/** The key of `origin`'s pool with `profile`: the origin itself for direct default connections. */
export function poolKey(origin: string, profile?: ConnectionProfile): string {
  return profile === undefined ? origin : `${origin} ${profile.key}`;
}

/**
 * What the relay needs of a pool: undici's dispatch-handler API. Direct origins (http and
 * https) get the gateway's own client (worker/h1-client.ts); forward-proxied ones undici's Pool.
 */
export interface UpstreamPool {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

interface Entry {
  pool: UpstreamPool;
  key: string;
}

/**
 * Keep-alive pools by origin and connection profile, reused across config reloads so that a
 * reload does not drop warm upstream connections. A pool replaced or no longer referenced is
 * closed only once the runtime that used it has been swapped out (`retainOnly`); undici's
 * `close` lets its requests in flight finish first.
 */
export class UpstreamPools {
  #pools = new Map<string, Entry>();
  #fresh = new Map<string, Entry>();
  #replaced: UpstreamPool[] = [];

  get(origin: string, options: PoolOptions, profile?: ConnectionProfile): UpstreamPool {
    return this.#pool(this.#pools, origin, options, options.maxConnections > 0, profile);
  }

  /**
   * A pool for `origin` whose every request opens a new connection (undici's `pipelining: 0`
   * disables keep-alive): a request retried after a stale keep-alive connection failed must not
   * meet another stale one of the same pool.
   */
  fresh(origin: string, options: PoolOptions, profile?: ConnectionProfile): UpstreamPool {
    return this.#pool(this.#fresh, origin, options, false, profile);
  }

  #pool(
    pools: Map<string, Entry>,
    origin: string,
    options: PoolOptions,
    keepAlive: boolean,
    profile: ConnectionProfile | undefined,
  ): UpstreamPool {
    const key = `${options.maxConnections}/${options.timeoutMs}/${options.keepAliveMaxMs}`;
    const mapKey = poolKey(origin, profile);
    const known = pools.get(mapKey);
    if (known && known.key === key) return known.pool;
    const pool = createPool(origin, options, keepAlive, profile);
    if (known) this.#replaced.push(known.pool);
    pools.set(mapKey, { pool, key });
    return pool;
  }

  /** After a runtime swap: closes replaced pools and those whose {@link poolKey} is not in `keep`. */
  retainOnly(keep: ReadonlySet<string>): void {
    for (const pool of this.#replaced) void pool.close();
    this.#replaced = [];
    for (const pools of [this.#pools, this.#fresh]) {
      for (const [key, { pool }] of pools) {
        if (keep.has(key)) continue;
        pools.delete(key);
        void pool.close();
      }
    }
  }

  /** At the end of a drain: whatever is still open is cut (close() would wait for it). */
  async destroyAll(): Promise<void> {
    const pools = [...this.#pools.values(), ...this.#fresh.values()]
      .map((p) => p.pool)
      .concat(this.#replaced);
    this.#pools.clear();
    this.#fresh.clear();
    this.#replaced = [];
    await Promise.allSettled(pools.map((pool) => pool.destroy()));
  }
}

function createPool(
  origin: string,
  options: PoolOptions,
  keepAlive: boolean,
  profile: ConnectionProfile | undefined,
): UpstreamPool {
  const connectTimeout = Math.min(options.timeoutMs, 10_000);
  const proxy = profile?.proxy;
  const https = origin.startsWith('https:');
  if (proxy === undefined) {
    return new H1Pool({
      origin,
      tls: https ? profile?.tls : undefined,
      keepAlive,
      maxIdle: options.maxConnections,
      headersTimeoutMs: options.timeoutMs,
      bodyTimeoutMs: options.timeoutMs,
      connectTimeoutMs: connectTimeout,
      keepAliveTimeoutMs: Math.min(4_000, Math.max(1, options.keepAliveMaxMs)),
      keepAliveMaxMs: Math.max(1, options.keepAliveMaxMs),
    });
  }
  const tls = https ? profile?.tls : undefined;
  // Direct connections: undici's connector with the 100-Continue filter, and the route's TLS
  // settings (a prebuilt SecureContext: no PKCS#12 parsing per connection).
  const direct = (): buildConnector.connector => {
    const connect = interimTolerantConnector({
      timeout: connectTimeout,
      ...(tls && { secureContext: tls.secureContext, rejectUnauthorized: tls.rejectUnauthorized }),
    });
    if (!https) return connect;
    return (opts, callback) =>
      connect(opts, (...args) => {
        if (args[0] === null) keepTlsFailure(args[1]);
        callback(...args);
      });
  };
  // An http origin through a proxy with credentials goes through a CONNECT tunnel too (a plain
  // one): in absolute form the credentials ride on every request, and a proxy that does not
  // consume them (one without auth) hands them to the upstream. On the CONNECT they only ever
  // reach the proxy.
  const tunnel = proxy !== undefined && (https || proxy.authorization !== undefined);
  const connect =
    proxy === undefined
      ? direct()
      : tunnel
        ? tunnelConnector(proxy, tls, connectTimeout)
        : proxyConnector(proxy, interimTolerantConnector({ timeout: connectTimeout }));
  // An http origin through a proxy: connections go to the proxy, requests in absolute form,
  // one request per connection. Proxies that relay bytes after the first request (tinyproxy
  // does, while its answer claims a persistent connection) would pass a second request on the
  // same connection straight to the upstream, around the proxy's own checks.
  const absolute = proxy !== undefined && !tunnel;
  const pool = new Pool(absolute ? proxy.origin : origin, {
    // undici has no cap on idle connections alone, and a cap on all of them (`connections`)
    // would queue requests behind long responses (SSE, slow readers): a client could starve
    // a backend. So connections are not capped; idle ones close after the keep-alive time.
    connections: null,
    pipelining: keepAlive && !absolute ? 1 : 0,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connect,
    // undici's default idle time (4 s) stays below common upstream timeouts (Node's 5 s), so a
    // reused connection is rarely one the upstream is closing; the hint may raise it up to this.
    keepAliveMaxTimeout: Math.max(1, options.keepAliveMaxMs),
    keepAliveTimeout: Math.min(4_000, Math.max(1, options.keepAliveMaxMs)),
  });
  return absolute ? pool.compose(absoluteForm(origin, proxy)) : pool;
}

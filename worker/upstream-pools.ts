import { Pool } from 'undici';

export interface PoolOptions {
  /** `max_idle_per_host`: connections kept per origin; 0 disables upstream keep-alive. */
  maxConnections: number;
  timeoutMs: number;
  /** Upper bound for idle upstream connections, whatever the upstream's Keep-Alive hint says. */
  keepAliveMaxMs: number;
}

/**
 * Keep-alive pools by origin, reused across config reloads so that a reload does not drop
 * warm upstream connections. Pools no longer referenced are closed, which lets their
 * in-flight requests finish first (undici's `close` waits for them).
 */
export class UpstreamPools {
  #pools = new Map<string, { pool: Pool; key: string }>();

  get(origin: string, options: PoolOptions): Pool {
    const key = `${options.maxConnections}/${options.timeoutMs}/${options.keepAliveMaxMs}`;
    const known = this.#pools.get(origin);
    if (known && known.key === key) return known.pool;
    const pool = new Pool(origin, {
      connections: options.maxConnections === 0 ? null : options.maxConnections,
      pipelining: options.maxConnections === 0 ? 0 : 1,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: Math.min(options.timeoutMs, 10_000),
      // undici's default idle time (4 s) stays below common upstream timeouts (Node's 5 s), so a
      // reused connection is rarely one the upstream is closing; the hint may raise it up to this.
      keepAliveMaxTimeout: Math.max(1, options.keepAliveMaxMs),
      keepAliveTimeout: Math.min(4_000, Math.max(1, options.keepAliveMaxMs)),
    });
    if (known) void known.pool.close();
    this.#pools.set(origin, { pool, key });
    return pool;
  }

  /** Closes every pool whose origin is not in `keep`. */
  retainOnly(keep: ReadonlySet<string>): void {
    for (const [origin, { pool }] of this.#pools) {
      if (keep.has(origin)) continue;
      this.#pools.delete(origin);
      void pool.close();
    }
  }

  async closeAll(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map(({ pool }) => pool.close()));
  }
}

import { Pool } from 'undici';

export interface PoolOptions {
  /** `max_idle_per_host`: connections kept per origin; 0 disables upstream keep-alive. */
  maxConnections: number;
  timeoutMs: number;
}

/**
 * Keep-alive pools by origin, reused across config reloads so that a reload does not drop
 * warm upstream connections. Pools no longer referenced are closed, which lets their
 * in-flight requests finish first (undici's `close` waits for them).
 */
export class UpstreamPools {
  #pools = new Map<string, { pool: Pool; key: string }>();

  get(origin: string, options: PoolOptions): Pool {
    const key = `${options.maxConnections}/${options.timeoutMs}`;
    const known = this.#pools.get(origin);
    if (known && known.key === key) return known.pool;
    const pool = new Pool(origin, {
      connections: options.maxConnections === 0 ? null : options.maxConnections,
      pipelining: options.maxConnections === 0 ? 0 : 1,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: Math.min(options.timeoutMs, 10_000),
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

import { Pool } from 'undici';

export interface PoolOptions {
  /** `max_idle_per_host`; 0 disables upstream keep-alive. See the comment in `get`. */
  maxConnections: number;
  timeoutMs: number;
  /** Upper bound for idle upstream connections, whatever the upstream's Keep-Alive hint says. */
  keepAliveMaxMs: number;
}

/**
 * Keep-alive pools by origin, reused across config reloads so that a reload does not drop
 * warm upstream connections. A pool replaced or no longer referenced is closed only once the
 * runtime that used it has been swapped out (`retainOnly`); undici's `close` lets its requests
 * in flight finish first.
 */
export class UpstreamPools {
  #pools = new Map<string, { pool: Pool; key: string }>();
  #replaced: Pool[] = [];

  get(origin: string, options: PoolOptions): Pool {
    const key = `${options.maxConnections}/${options.timeoutMs}/${options.keepAliveMaxMs}`;
    const known = this.#pools.get(origin);
    if (known && known.key === key) return known.pool;
    const keepAlive = options.maxConnections > 0;
    const pool = new Pool(origin, {
      // undici has no cap on idle connections alone, and a cap on all of them (`connections`)
      // would queue requests behind long responses (SSE, slow readers): a client could starve
      // a backend. So connections are not capped; idle ones close after the keep-alive time.
      connections: null,
      pipelining: keepAlive ? 1 : 0,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: Math.min(options.timeoutMs, 10_000),
      // undici's default idle time (4 s) stays below common upstream timeouts (Node's 5 s), so a
      // reused connection is rarely one the upstream is closing; the hint may raise it up to this.
      keepAliveMaxTimeout: Math.max(1, options.keepAliveMaxMs),
      keepAliveTimeout: Math.min(4_000, Math.max(1, options.keepAliveMaxMs)),
    });
    if (known) this.#replaced.push(known.pool);
    this.#pools.set(origin, { pool, key });
    return pool;
  }

  /** After a runtime swap: closes replaced pools and those of origins not in `keep`. */
  retainOnly(keep: ReadonlySet<string>): void {
    for (const pool of this.#replaced) void pool.close();
    this.#replaced = [];
    for (const [origin, { pool }] of this.#pools) {
      if (keep.has(origin)) continue;
      this.#pools.delete(origin);
      void pool.close();
    }
  }

  /** At the end of a drain: whatever is still open is cut (close() would wait for it). */
  async destroyAll(): Promise<void> {
    const pools = [...this.#pools.values()].map((p) => p.pool).concat(this.#replaced);
    this.#pools.clear();
    this.#replaced = [];
    await Promise.allSettled(pools.map((pool) => pool.destroy()));
  }
}

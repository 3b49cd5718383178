import { Pool } from 'undici';
import { interimTolerantConnector } from './upstream-connector.js';

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
  #fresh = new Map<string, { pool: Pool; key: string }>();
  #replaced: Pool[] = [];

  get(origin: string, options: PoolOptions): Pool {
    return this.#pool(this.#pools, origin, options, options.maxConnections > 0);
  }

  /**
   * A pool for `origin` whose every request opens a new connection (undici's `pipelining: 0`
   * disables keep-alive): a request retried after a stale keep-alive connection failed must not
   * meet another stale one of the same pool.
   */
  fresh(origin: string, options: PoolOptions): Pool {
    return this.#pool(this.#fresh, origin, options, false);
  }

  #pool(
    pools: Map<string, { pool: Pool; key: string }>,
    origin: string,
    options: PoolOptions,
    keepAlive: boolean,
  ): Pool {
    const key = `${options.maxConnections}/${options.timeoutMs}/${options.keepAliveMaxMs}`;
    const known = pools.get(origin);
    if (known && known.key === key) return known.pool;
    const pool = new Pool(origin, {
      // undici has no cap on idle connections alone, and a cap on all of them (`connections`)
      // would queue requests behind long responses (SSE, slow readers): a client could starve
      // a backend. So connections are not capped; idle ones close after the keep-alive time.
      connections: null,
      pipelining: keepAlive ? 1 : 0,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: interimTolerantConnector({ timeout: Math.min(options.timeoutMs, 10_000) }),
      // undici's default idle time (4 s) stays below common upstream timeouts (Node's 5 s), so a
      // reused connection is rarely one the upstream is closing; the hint may raise it up to this.
      keepAliveMaxTimeout: Math.max(1, options.keepAliveMaxMs),
      keepAliveTimeout: Math.min(4_000, Math.max(1, options.keepAliveMaxMs)),
    });
    if (known) this.#replaced.push(known.pool);
    pools.set(origin, { pool, key });
    return pool;
  }

  /** After a runtime swap: closes replaced pools and those of origins not in `keep`. */
  retainOnly(keep: ReadonlySet<string>): void {
    for (const pool of this.#replaced) void pool.close();
    this.#replaced = [];
    for (const pools of [this.#pools, this.#fresh]) {
      for (const [origin, { pool }] of pools) {
        if (keep.has(origin)) continue;
        pools.delete(origin);
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

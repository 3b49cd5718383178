/*
 * Load balancing over a route's backends, with passive health (README "Load balancing").
 *
 * Selection is nginx's smooth weighted round robin: each pick adds every eligible member's
 * weight to its running score, takes the highest score and subtracts the eligible total from
 * it. Over any run of `sum(weights)` picks each member is chosen exactly `weight` times, spread
 * out (3:1 gives A A B A, not A A A B), so the proportions hold exactly rather than on average.
 * Members with `weight: -1` (backups) are picked, round robin, only when no weighted member is
 * eligible. All state is in the edge's memory: each edge balances and judges health alone.
 */

import type { Logger } from '../shared/log.js';
import type { UpstreamPool } from './upstream-pools.js';

/** Consecutive connection failures that take a backend out (passive health). */
export const PASSIVE_FAILS = 3;
/** The first cool-down, in ms; it doubles with each failure after one, up to the maximum. */
export const COOLDOWN_FIRST_MS = 1_000;
export const COOLDOWN_MAX_MS = 30_000;

/** One backend of a route as the edge uses it, with its health. */
export class Backend {
  /** `origin` + path, for logs (never the query, which may hold a secret). */
  readonly name: string;
  readonly origin: string;
  /** The backend URL's encoded path (`ParsedTarget.path`). */
  readonly targetPath: string;
  /** The backend URL's own query, without '?'. */
  readonly targetQuery: string;
  /** > 0: weighted member; -1: backup, used only while no weighted member is eligible. */
  readonly weight: number;
  /** The keep-alive pool of `origin`. */
  readonly pool: UpstreamPool;
  /** Smooth weighted round robin score. */
  current = 0;
  /** Connection failures in a row (passive). */
  fails = 0;
  /** Epoch ms until which the backend is skipped (passive cool-down); 0: not cooling down. */
  downUntil = 0;
  /** The last cool-down given, in ms; 0 while healthy. */
  cooldownMs = 0;
  /** The last active check failed. */
  checkDown = false;

  constructor(init: {
    origin: string;
    targetPath: string;
    targetQuery: string;
    weight: number;
    pool: UpstreamPool;
  }) {
    this.origin = init.origin;
    this.targetPath = init.targetPath;
    this.targetQuery = init.targetQuery;
    this.weight = init.weight;
    this.pool = init.pool;
    this.name = `${init.origin}${init.targetPath}`;
  }

  /** The URL identity (origin, path and query) that health state follows across reloads. */
  get key(): string {
    return `${this.origin}${this.targetPath}?${this.targetQuery}`;
  }

  /** May take requests at `now` (epoch ms). */
  eligible(now: number): boolean {
    return !this.checkDown && this.downUntil <= now;
  }
}

/**
 * The members of one route and the choice among them. `members` keeps config order (target
 * first unless listed in backends); weight 0 members are not members at all.
 */
export class Balancer {
  readonly members: readonly Backend[];
  readonly #weighted: readonly Backend[];
  readonly #backups: readonly Backend[];
  readonly #log: Logger;
  readonly #route: string;
  /** The active checks' period, ms, when the route has them: a backend they took out may be back then. */
  readonly #checkIntervalMs: number | undefined;

  constructor(members: readonly Backend[], log: Logger, route: string, checkIntervalMs?: number) {
    this.members = members;
    this.#weighted = members.filter((m) => m.weight > 0);
    this.#backups = members.filter((m) => m.weight < 0);
    this.#log = log;
    this.#route = route;
    this.#checkIntervalMs = checkIntervalMs;
  }

  /**
   * The backend for the next attempt, or undefined when none is eligible. `tried`: backends
   * this request already failed on, never picked again for it.
   */
  pick(tried?: readonly Backend[]): Backend | undefined {
    const now = Date.now();
    return (
      swrr(this.#weighted, now, tried, false) ?? swrr(this.#backups, now, tried, true) ?? undefined
    );
  }

  /** Whole seconds until the first member may take requests again (at least 1). */
  retryAfterSeconds(): number {
    const now = Date.now();
    let wait = Number.POSITIVE_INFINITY;
    for (const m of this.members) {
      const passive = m.downUntil > now ? m.downUntil - now : 0;
      const active = m.checkDown ? (this.#checkIntervalMs ?? COOLDOWN_FIRST_MS) : 0;
      wait = Math.min(wait, Math.max(passive, active));
    }
    return Math.max(1, Math.ceil((Number.isFinite(wait) ? wait : COOLDOWN_FIRST_MS) / 1000));
  }

  /**
   * Passive health: `m` could not be reached (refused, reset, connect timeout). After
   * PASSIVE_FAILS in a row it is skipped for a cool-down that doubles with every failure of
   * the probe that follows it. Failures while it is already cooling down (requests that were
   * in flight) change nothing: one outage is not counted twice.
   */
  failed(m: Backend, code: string): void {
    const now = Date.now();
    if (m.downUntil > now) return;
    m.fails++;
    if (m.fails < PASSIVE_FAILS) return;
    m.cooldownMs =
      m.cooldownMs === 0 ? COOLDOWN_FIRST_MS : Math.min(m.cooldownMs * 2, COOLDOWN_MAX_MS);
    m.downUntil = now + m.cooldownMs;
    this.#log.warn('backend down: skipped for a cool-down', {
      route: this.#route,
      backend: m.name,
      fails: m.fails,
      cooldown_ms: m.cooldownMs,
      code,
    });
  }

  /** `m` answered (any status): its failure streak ends. */
  succeeded(m: Backend): void {
    if (m.fails === 0) return;
    if (m.cooldownMs > 0) {
      this.#log.info('backend up again', { route: this.#route, backend: m.name });
    }
    m.fails = 0;
    m.cooldownMs = 0;
    m.downUntil = 0;
  }

  /** Active health: the result of one check of `m`; `reason` says why it failed. */
  checked(m: Backend, ok: boolean, reason: string): void {
    if (ok) {
      if (m.checkDown) {
        this.#log.info('backend passed its health check', {
          route: this.#route,
          backend: m.name,
        });
      }
      m.checkDown = false;
      this.succeeded(m);
      return;
    }
    if (!m.checkDown) {
      this.#log.warn('backend failed its health check: skipped until one passes', {
        route: this.#route,
        backend: m.name,
        reason,
      });
    }
    m.checkDown = true;
  }

  /** Takes over the health of `previous`'s members with the same URL (a reload keeps it). */
  adopt(previous: Balancer): void {
    const old = new Map(previous.members.map((m) => [m.key, m]));
    for (const m of this.members) {
      const p = old.get(m.key);
      if (p === undefined) continue;
      m.fails = p.fails;
      m.downUntil = p.downUntil;
      m.cooldownMs = p.cooldownMs;
      m.checkDown = p.checkDown;
    }
  }
}

/** Smooth weighted round robin over the eligible, untried members of `list`. */
function swrr(
  list: readonly Backend[],
  now: number,
  tried: readonly Backend[] | undefined,
  equal: boolean,
): Backend | undefined {
  let best: Backend | undefined;
  let total = 0;
  for (const m of list) {
    if (!m.eligible(now) || tried?.includes(m)) continue;
    const w = equal ? 1 : m.weight;
    m.current += w;
    total += w;
    if (best === undefined || m.current > best.current) best = m;
  }
  if (best !== undefined) best.current -= total;
  return best;
}

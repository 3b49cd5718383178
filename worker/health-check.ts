import type { HealthCheckConfig } from '../conf/routes-schema.js';
import type { Backend, Balancer } from './balancer.js';
import { discardBody, upstreamRequest } from './upstream-request.js';

/**
 * Active health checks of one route's backends (`health_check` in routes.yml), run by each
 * edge for itself: every `interval` ms, `GET path` on each backend's origin through its
 * keep-alive pool. One failure (no answer within `timeout` ms, a connection failure, or a
 * status outside `expected_status`) takes the backend out; one pass brings it back and ends
 * its passive cool-down. A round still running when the next is due is not doubled.
 *
 * `start` runs the first round at once; `stop` clears the timer and aborts checks in flight
 * (a reload or a drain must leave no timer behind). Timers are unref'd.
 */
export class HealthChecker {
  readonly #balancer: Balancer;
  readonly #spec: HealthCheckConfig;
  #timer: NodeJS.Timeout | undefined;
  #abort = new AbortController();
  #running = false;
  #stopped = false;

  constructor(balancer: Balancer, spec: HealthCheckConfig) {
    this.#balancer = balancer;
    this.#spec = spec;
  }

  /** Whether the timer is set (for tests and the drain). */
  get active(): boolean {
    return this.#timer !== undefined;
  }

  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => void this.round(), this.#spec.interval);
    this.#timer.unref();
    void this.round();
  }

  /** Idempotent; a stopped checker never starts again. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
  }

  /** One round over every member; resolves when all checks are done. */
  async round(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      await Promise.all(this.#balancer.members.map((m) => this.#check(m)));
    } finally {
      this.#running = false;
    }
  }

  async #check(m: Backend): Promise<void> {
    let ok = false;
    let reason = '';
    try {
      const res = await upstreamRequest(m.pool, {
        method: 'GET',
        path: this.#spec.path,
        headers: { 'user-agent': 'proxyauth-health-check' },
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#spec.timeout)]),
      });
      await discardBody(res.body);
      ok = this.#spec.expected_status.includes(res.statusCode);
      if (!ok) reason = `status ${res.statusCode}`;
    } catch (err) {
      const e = err as { code?: string; name?: string; message?: string };
      reason = e.code ?? (e.name === 'TimeoutError' ? 'timeout' : (e.name ?? 'error'));
    }
    if (!this.#stopped) this.#balancer.checked(m, ok, reason);
  }
}

import { refusal } from '../shared/errors.js';
import type { RequestContext } from './request-context.js';
import { sendJson } from './uws-io.js';

/** The body of both endpoints' 200: nothing about the node beyond "ok" (the port faces clients). */
const OK_BODY = '{"status":"ok"}\n';

/** How long a verdict of the supervisor is reused before it is asked again (ms). */
export const READINESS_TTL_MS = 200;
/** A supervisor that has not answered by then makes the node "not ready" (ms). */
export const READINESS_TIMEOUT_MS = 500;

/** Asks the supervisor for the node's readiness, rejecting after `timeoutMs`. */
export type ReadinessAsk = (timeoutMs: number) => Promise<boolean>;

/**
 * The edge's view of the node's readiness for `GET /readyz` on the main port: the supervisor's
 * verdict (supervisor/health.ts, the same as the metrics listener's `/readyz`), asked over IPC
 * and reused for {@link READINESS_TTL_MS}, with at most one ask in flight, so a flood of probes
 * from clients costs the supervisor at most a few messages per second per edge. A supervisor
 * that fails or does not answer within {@link READINESS_TIMEOUT_MS} counts as "not ready" (and
 * that verdict is reused too). A draining edge is not ready whatever the supervisor says.
 */
export class ReadinessProbe {
  readonly #ask: ReadinessAsk;
  readonly #now: () => number;
  /** Set when the edge drains: it answers 503 from then on, without asking. */
  draining = false;
  #verdict = false;
  #until = 0;
  #pending: Promise<boolean> | undefined;

  constructor(ask: ReadinessAsk, now: () => number = performance.now.bind(performance)) {
    this.#ask = ask;
    this.#now = now;
  }

  /** The verdict now when one is fresh, else a promise of it; never rejects. */
  ready(): boolean | Promise<boolean> {
    if (this.draining) return false;
    if (this.#now() < this.#until) return this.#verdict;
    this.#pending ??= this.#ask(READINESS_TIMEOUT_MS)
      .catch(() => false)
      .then((ready) => {
        this.#verdict = ready;
        this.#until = this.#now() + READINESS_TTL_MS;
        this.#pending = undefined;
        return this.draining ? false : ready;
      });
    return this.#pending;
  }
}

/** `GET`/`HEAD /healthz` on the main port: 200 `{"status":"ok"}` whenever this edge answers. */
export function handleHealthz(ctx: RequestContext): undefined {
  sendJson(ctx.ex, 200, OK_BODY);
  return undefined;
}

/**
 * `GET`/`HEAD /readyz` on the main port: 200 `{"status":"ok"}` when the node is ready
 * ({@link ReadinessProbe}), else 503 `NOT_READY` with no reason (that one is on the metrics
 * listener, which is not the clients' port).
 */
export function handleReadyz(ctx: RequestContext): Promise<void> | undefined {
  const verdict = ctx.services.readiness.ready();
  if (verdict === true) return handleHealthz(ctx);
  if (verdict === false) throw refusal('NOT_READY');
  return verdict.then((ready) => {
    if (!ready) throw refusal('NOT_READY');
    sendJson(ctx.ex, 200, OK_BODY);
  });
}

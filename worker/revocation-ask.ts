import { GatewayError } from '../shared/errors.js';
import type { AnswerValues, RevocationChange } from '../shared/ipc.js';
import type { RequestContext } from './request-context.js';
import { AskError } from './supervisor-link.js';

/** How long an edge waits for the supervisor to store and spread a change. */
const ASK_TIMEOUT_MS = 5_000;

/**
 * Stores a revocation change through the supervisor, the store's only writer: it commits the
 * change, sends it to every edge and waits for them, then answers, so once this resolves the
 * change is durable and in force on every edge. Resolves with what was stored (the supervisor
 * never shortens a revocation, see supervisor/store-keeper.ts); 503 STORE_UNAVAILABLE (the
 * cause logged) when it could not.
 */
export async function changeRevocations(
  ctx: RequestContext,
  c: RevocationChange,
): Promise<AnswerValues['change-revocations']> {
  try {
    return await ctx.services.supervisor.ask(
      { type: 'change-revocations', change: c },
      ASK_TIMEOUT_MS,
    );
  } catch (err) {
    if (!(err instanceof AskError)) throw err;
    ctx.services.log.error('revocation change failed', {
      op: c.op,
      code: err.code,
      reason: err.message,
    });
    throw new GatewayError('STORE_UNAVAILABLE', { cause: err });
  }
}

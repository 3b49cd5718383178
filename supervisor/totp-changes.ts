import type { AnswerValues, TotpChange } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import type { Store } from '../shared/store.js';

/**
 * Carries out an edge's TOTP change in the store (the supervisor is its writer; each change is
 * one write transaction, so a step consumed on one edge is refused on every other). Enrolments,
 * resets and removals are logged with the user, never with a secret; consumed steps are not
 * (one per login). Rejects with the store's error when the write fails.
 */
export async function applyTotpChange(
  store: Store,
  change: TotpChange,
  log: Logger,
): Promise<AnswerValues['totp-change']> {
  switch (change.op) {
    case 'consume': {
      const step = await store.consumeTotpStep(change.user, change.secretId, change.steps);
      return { done: step !== undefined };
    }
    case 'enrol':
    case 'reset': {
      const done = await store.putTotp(change.user, change.sealed, change.op);
      if (done)
        log.info(`totp secret ${change.op === 'enrol' ? 'enrolled' : 'reset'}`, {
          user: change.user,
        });
      return { done };
    }
    case 'remove': {
      const done = await store.removeTotp(change.user);
      if (done) log.info('totp secret removed', { user: change.user });
      return { done };
    }
    default: {
      const unknown: never = change;
      throw new TypeError(`unknown TOTP change ${String((unknown as { op: unknown }).op)}`);
    }
  }
}

import { MAX_USES_PER_REPORT, type TokenUseReport } from '../shared/ipc.js';
import type { Session } from './session-cache.js';

/** How often an edge hands its counts to the supervisor, in milliseconds. */
export const USE_FLUSH_MS = 1_000;

/**
 * Per-token use counts of one edge (`stats: true`). The hot path pays a Map lookup and an
 * increment; every `USE_FLUSH_MS` (or as soon as `MAX_USES_PER_REPORT` tokens are pending, so
 * memory stays bounded) the counts go to `report` (the supervisor, which adds them to the
 * store) and start again from zero. Counts are exact: nothing is sampled or dropped while the
 * supervisor is there to receive them.
 */
export class TokenUseCounter {
  readonly #report: (uses: TokenUseReport[]) => void;
  #counts = new Map<string, { session: Session; count: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(report: (uses: TokenUseReport[]) => void) {
    this.#report = report;
  }

  /** Counts one use of `session`'s token. */
  count(session: Session): void {
    const entry = this.#counts.get(session.tokenId);
    if (entry !== undefined) {
      entry.count++;
      return;
    }
    if (this.#counts.size >= MAX_USES_PER_REPORT) this.flush();
    this.#counts.set(session.tokenId, { session, count: 1 });
    this.#timer ??= setTimeout(() => this.flush(), USE_FLUSH_MS).unref();
  }

  /** Hands every pending count over now (also on drain). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#counts.size === 0) return;
    const counts = this.#counts;
    this.#counts = new Map();
    const uses: TokenUseReport[] = [];
    for (const { session, count } of counts.values()) {
      uses.push({
        tokenId: session.tokenId,
        user: session.user,
        iat: session.iat,
        exp: session.exp,
        count,
      });
    }
    this.#report(uses);
  }

  /** Tokens with counts not yet handed over. */
  get pending(): number {
    return this.#counts.size;
  }
}

import type { RevocationChange } from '../shared/ipc.js';

/** What the set needs to know of a verified token. */
export interface RevocableToken {
  readonly tokenId: string;
  readonly user: string;
  /** Issued at, unix seconds. */
  readonly iat: number;
}

/** The revocations in force, as the store lists them at an edge's start. */
export interface RevocationsInForce {
  readonly tokens: readonly { tokenId: string; until: number }[];
  readonly users: readonly { user: string; notBefore: number; until: number }[];
}

/**
 * How far ahead of this clock a user's "not before" may be and still date a login after it
 * (seconds): the clock skew between nodes that share revocations (README: within seconds).
 */
export const MAX_NOT_BEFORE_AHEAD_SECONDS = 60;

/**
 * The issue time of a token for a login at `nowSeconds` of a user whose revocation has
 * "not before" `notBefore` (undefined: none in force). A login in the revocation's own second
 * (or a few seconds after it, by another node's clock) is dated just after it so that it works.
 * A "not before" further ahead than MAX_NOT_BEFORE_AHEAD_SECONDS is never followed: the token
 * would carry an issue time (and an expiry) that far in the future, outliving every later
 * revocation of the user; it is dated now instead and stays refused while that revocation holds.
 */
export function loginIssuedAt(notBefore: number | undefined, nowSeconds: number): number {
  if (notBefore === undefined || notBefore < nowSeconds) return nowSeconds;
  if (notBefore - nowSeconds > MAX_NOT_BEFORE_AHEAD_SECONDS) return nowSeconds;
  return notBefore + 1;
}

/**
 * An edge's RAM copy of the node's revocations (the store in the data dir is the source of
 * truth; the supervisor writes it, then sends each change to every edge). Two maps: token id →
 * `until` (refused while `now < until`) and user → `notBefore` (every token of the user issued
 * at or before it is refused).
 *
 * `epoch` grows with every change, so a cached verified token remembers the epoch it was last
 * found clean at and the hot path pays one comparison until the set changes. A token refused by
 * a timed revocation is never marked clean, so it is checked again until the revocation ends.
 */
export class RevocationSet {
  readonly #tokens = new Map<string, number>();
  readonly #users = new Map<string, { notBefore: number; until: number }>();
  #epoch = 1;

  /** Changes with every revocation or lift; never 0 (0 marks a token never checked). */
  get epoch(): number {
    return this.#epoch;
  }

  get size(): number {
    return this.#tokens.size + this.#users.size;
  }

  /** Whether `token` is refused at `nowSeconds`. */
  revokes(token: RevocableToken, nowSeconds: number): boolean {
    const until = this.#tokens.get(token.tokenId);
    // Written so that a NaN clock fails closed.
    if (until !== undefined && !(nowSeconds >= until)) return true;
    const user = this.#users.get(token.user);
    return user !== undefined && token.iat <= user.notBefore;
  }

  /** The user's "not before" time (unix seconds), when a revocation of the user is in force. */
  notBeforeOf(user: string): number | undefined {
    return this.#users.get(user)?.notBefore;
  }

  /** Applies one change; returns whether anything changed. */
  apply(change: RevocationChange): boolean {
    let changed: boolean;
    switch (change.op) {
      case 'revoke-token':
        changed = this.#tokens.get(change.tokenId) !== change.until;
        this.#tokens.set(change.tokenId, change.until);
        break;
      case 'revoke-user': {
        const current = this.#users.get(change.user);
        changed = current?.notBefore !== change.notBefore || current.until !== change.until;
        this.#users.set(change.user, { notBefore: change.notBefore, until: change.until });
        break;
      }
      case 'lift-token':
        changed = this.#tokens.delete(change.tokenId);
        break;
      case 'lift-user':
        changed = this.#users.delete(change.user);
        break;
      default: {
        const unknown: never = change;
        throw new Error(`unknown revocation change ${(unknown as { op: string }).op}`);
      }
    }
    if (changed) this.#epoch++;
    return changed;
  }

  /** Adds everything the store lists (at start; changes received earlier stay). */
  load(inForce: RevocationsInForce): void {
    for (const t of inForce.tokens) this.#tokens.set(t.tokenId, t.until);
    for (const u of inForce.users)
      this.#users.set(u.user, { notBefore: u.notBefore, until: u.until });
    this.#epoch++;
  }

  /** Forgets revocations that ended (`until <= now`): they refuse nothing any more. */
  purge(nowSeconds: number): number {
    let removed = 0;
    for (const [id, until] of this.#tokens) {
      if (until <= nowSeconds) {
        this.#tokens.delete(id);
        removed++;
      }
    }
    for (const [user, r] of this.#users) {
      if (r.until <= nowSeconds) {
        this.#users.delete(user);
        removed++;
      }
    }
    return removed;
  }
}

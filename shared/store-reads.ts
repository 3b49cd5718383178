// The store's listings. Each is one pass over one range of an ordered database: no full scans
// on behalf of a single user, and the revocations in force come from the expiry indexes, whose
// keys already hold everything but `revokedAt` / `notBefore` (one cursor, no lookups).
import type { Database } from 'lmdb';
import { type CursorKey, encodeCursor } from './store-cursor.js';
import type { StoreDbs } from './store-schema.js';
import type {
  LoginBan,
  Revocation,
  RevocationPage,
  RevocationsInForce,
  StatsPage,
  TokenRevocation,
  TokenStat,
  UserRevocation,
} from './store-types.js';

/** Every revocation with `until > now`, in order of `until`. */
export function revocationsInForce(dbs: StoreDbs, now: number): RevocationsInForce {
  const tokens: TokenRevocation[] = [];
  // [now] sorts before every [now, id]: the few entries ending exactly at `now` are skipped.
  for (const { key, value } of dbs.revokedTokensByExpiry.getRange({ start: [now] })) {
    if (key[0] > now) tokens.push({ tokenId: key[1], until: key[0], revokedAt: value });
  }
  const users: UserRevocation[] = [];
  for (const { key, value } of dbs.revokedUsersByExpiry.getRange({ start: [now] })) {
    if (key[0] > now) {
      users.push({
        user: key[1],
        notBefore: value.notBefore,
        until: key[0],
        revokedAt: value.revokedAt,
      });
    }
  }
  return { tokens, users };
}

/**
 * Revocations in force, token ones (by token id) then user ones (by user), from after `after`
 * (['t', tokenId] or ['u', user]), at most `limit`.
 */
export function revocationPage(
  dbs: StoreDbs,
  after: CursorKey | undefined,
  limit: number,
  now: number,
): RevocationPage {
  const items: Revocation[] = [];
  let last: CursorKey | undefined;
  const full = (): boolean => items.length === limit;
  if (after?.[0] !== 'u') {
    const range = after ? { start: after[1]!, exclusiveStart: true } : {};
    for (const { key, value } of dbs.revokedTokens.getRange(range)) {
      if (value.until <= now) continue;
      if (full()) return { items, next: encodeCursor(last!) };
      items.push({ kind: 'token', tokenId: key, until: value.until, revokedAt: value.revokedAt });
      last = ['t', key];
    }
  }
  const range = after?.[0] === 'u' ? { start: after[1]!, exclusiveStart: true } : {};
  for (const { key, value } of dbs.revokedUsers.getRange(range)) {
    if (value.until <= now) continue;
    if (full()) return { items, next: encodeCursor(last!) };
    const { notBefore, until, revokedAt } = value;
    items.push({ kind: 'user', user: key, notBefore, until, revokedAt });
    last = ['u', key];
  }
  return { items, next: null };
}

/**
 * Unexpired tokens with their use counts, by user then issue time then id, from after `after`
 * ([user, iat, tokenId]), at most `limit` tokens; only `user`'s when given.
 */
export function statsPage(
  dbs: StoreDbs,
  options: { user: string | undefined; after: CursorKey | undefined; limit: number; now: number },
): StatsPage {
  const { user, after, limit, now } = options;
  const range = after
    ? { start: after as [string, number, string], exclusiveStart: true }
    : user === undefined
      ? {}
      : { start: [user] as unknown as [string, number, string] };
  const users: StatsPage['users'] = [];
  let group: TokenStat[] | undefined;
  let count = 0;
  let last: CursorKey | undefined;
  for (const { key, value: exp } of dbs.tokensByUser.getRange(range)) {
    const [owner, iat, tokenId] = key;
    if (user !== undefined && owner !== user) break;
    if (exp <= now) continue;
    if (count === limit) return { users, next: encodeCursor(last!) };
    if (users.at(-1)?.user !== owner) {
      group = [];
      users.push({ user: owner, tokens: group });
    }
    group!.push({ tokenId, user: owner, iat, exp, count: dbs.tokenUses.get(tokenId) ?? 0 });
    count++;
    last = key;
  }
  return { users, next: null };
}

/** Login bans in force (`until > now`), by kind ('ip' first) then subject, at most `limit`. */
export function banList(dbs: StoreDbs, now: number, limit: number): LoginBan[] {
  const bans: LoginBan[] = [];
  for (const { key, value } of dbs.loginBans.getRange({})) {
    if (value.until <= now) continue;
    const { until, bannedAt, failures } = value;
    bans.push({ kind: key[0], subject: key[1], until, bannedAt, failures });
    if (bans.length === limit) break;
  }
  return bans;
}

/** The latest expiry among `user`'s recorded tokens (expired ones included until purged). */
export function latestExpiry(dbs: StoreDbs, user: string): number | undefined {
  let latest: number | undefined;
  const start = [user] as unknown as [string, number, string];
  for (const { key, value: exp } of dbs.tokensByUser.getRange({ start })) {
    if (key[0] !== user) break;
    if (latest === undefined || exp > latest) latest = exp;
  }
  return latest;
}

/** The entries of `db`, from LMDB's own count (mdb_stat): no walk over them. */
export function entryCount(db: Database): number {
  return (db.getStats() as { entryCount: number }).entryCount;
}

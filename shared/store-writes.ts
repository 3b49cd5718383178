// The bodies of the writer's transactions. Each runs inside one LMDB write transaction (puts and
// removes apply at once and later reads in the same transaction see them), so a body is atomic
// and read-modify-write is exact. Inputs are validated before a body runs: a body never throws
// halfway for a bad argument.
import { type IpNetwork, ipNetworksOverlap, parseIpEntry } from './ip-match.js';
import type { LoginBanValue, StoreDbs } from './store-schema.js';
import type {
  LoginBan,
  LoginBanKind,
  TokenRecord,
  TokenRevocation,
  UserRevocation,
} from './store-types.js';

/** Records `record` with its index entries, replacing a different record under the same id. */
export function putToken(dbs: StoreDbs, record: TokenRecord): void {
  const { tokenId, user, iat, exp } = record;
  const old = dbs.tokens.get(tokenId);
  if (old) {
    if (old.user === user && old.iat === iat && old.exp === exp) return;
    dbs.tokensByUser.remove([old.user, old.iat, tokenId]);
    dbs.tokensByExpiry.remove([old.exp, tokenId]);
  }
  dbs.tokens.put(tokenId, { user, iat, exp });
  dbs.tokensByUser.put([user, iat, tokenId], exp);
  dbs.tokensByExpiry.put([exp, tokenId], null);
}

/** Adds `count` uses of `record`'s token, recording the token first when this node lacks it. */
export function addUse(dbs: StoreDbs, record: TokenRecord, count: number): void {
  if (!dbs.tokens.doesExist(record.tokenId)) putToken(dbs, record);
  dbs.tokenUses.put(record.tokenId, (dbs.tokenUses.get(record.tokenId) ?? 0) + count);
}

/** Sets the revocation of one token, replacing an earlier one. */
export function putTokenRevocation(dbs: StoreDbs, r: TokenRevocation): void {
  const old = dbs.revokedTokens.get(r.tokenId);
  if (old) dbs.revokedTokensByExpiry.remove([old.until, r.tokenId]);
  dbs.revokedTokens.put(r.tokenId, { until: r.until, revokedAt: r.revokedAt });
  dbs.revokedTokensByExpiry.put([r.until, r.tokenId], r.revokedAt);
}

/** Sets the revocation of a user's tokens, replacing an earlier one. */
export function putUserRevocation(dbs: StoreDbs, r: UserRevocation): void {
  const old = dbs.revokedUsers.get(r.user);
  if (old) dbs.revokedUsersByExpiry.remove([old.until, r.user]);
  dbs.revokedUsers.put(r.user, { notBefore: r.notBefore, until: r.until, revokedAt: r.revokedAt });
  dbs.revokedUsersByExpiry.put([r.until, r.user], {
    notBefore: r.notBefore,
    revokedAt: r.revokedAt,
  });
}

/** Removes the revocation of one token; true when there was one. */
export function removeTokenRevocation(dbs: StoreDbs, tokenId: string): boolean {
  const old = dbs.revokedTokens.get(tokenId);
  if (!old) return false;
  dbs.revokedTokens.remove(tokenId);
  dbs.revokedTokensByExpiry.remove([old.until, tokenId]);
  return true;
}

/** Removes the revocation of a user; true when there was one. */
export function removeUserRevocation(dbs: StoreDbs, user: string): boolean {
  const old = dbs.revokedUsers.get(user);
  if (!old) return false;
  dbs.revokedUsers.remove(user);
  dbs.revokedUsersByExpiry.remove([old.until, user]);
  return true;
}

/**
 * Records a login ban, unless one of the same subject ends as late or later: a ban is never
 * shortened (the earlier one stays whole). Returns the ban stored afterwards.
 */
export function putBan(dbs: StoreDbs, ban: LoginBan): LoginBan {
  const { kind, subject } = ban;
  const old = dbs.loginBans.get([kind, subject]);
  if (old) {
    if (old.until >= ban.until) return banOf(kind, subject, old);
    dbs.loginBansByExpiry.remove([old.until, kind, subject]);
  }
  const { until, bannedAt, failures } = ban;
  dbs.loginBans.put([kind, subject], { until, bannedAt, failures });
  dbs.loginBansByExpiry.put([until, kind, subject], { bannedAt, failures });
  return { kind, subject, until, bannedAt, failures };
}

/**
 * Removes the login ban of `kind`/`subject`; returns it when it was in force (`until > now`),
 * an ended one (removed too) is not returned.
 */
export function removeBan(
  dbs: StoreDbs,
  kind: LoginBanKind,
  subject: string,
  now: number,
): LoginBan[] {
  const old = dbs.loginBans.get([kind, subject]);
  if (!old) return [];
  dbs.loginBans.remove([kind, subject]);
  dbs.loginBansByExpiry.remove([old.until, kind, subject]);
  return old.until > now ? [banOf(kind, subject, old)] : [];
}

/**
 * Removes every ip ban whose subject shares an address with `network` (see ipNetworksOverlap),
 * or, for a subject that is not an address or CIDR, equals `text`. Returns those in force
 * (`until > now`), by subject; ended ones are removed as well.
 */
export function removeIpBans(
  dbs: StoreDbs,
  network: IpNetwork,
  text: string,
  now: number,
): LoginBan[] {
  const found: [string, LoginBanValue][] = [];
  // One pass over the ip bans (they sort before the user ones), collected before any removal.
  const start = ['ip'] as unknown as [LoginBanKind, string];
  for (const { key, value } of dbs.loginBans.getRange({ start })) {
    if (key[0] !== 'ip') break;
    if (ipSubjectMatches(key[1], network, text)) found.push([key[1], value]);
  }
  const removed: LoginBan[] = [];
  for (const [subject, value] of found) {
    dbs.loginBans.remove(['ip', subject]);
    dbs.loginBansByExpiry.remove([value.until, 'ip', subject]);
    if (value.until > now) removed.push(banOf('ip', subject, value));
  }
  return removed;
}

function ipSubjectMatches(subject: string, network: IpNetwork, text: string): boolean {
  let banned: IpNetwork;
  try {
    banned = parseIpEntry(subject);
  } catch {
    return subject === text;
  }
  return ipNetworksOverlap(banned, network);
}

function banOf(kind: LoginBanKind, subject: string, value: LoginBanValue): LoginBan {
  return { kind, subject, until: value.until, bannedAt: value.bannedAt, failures: value.failures };
}

/**
 * Records the nonce of a CSRF token spent now, kept until `exp` (the token's own expiry, after
 * which it is refused anyway). Returns false, recording nothing, when it was spent before:
 * the check and the record are one transaction, so of two requests carrying the same token,
 * from any edge, exactly one gets true.
 */
export function spendCsrfNonce(dbs: StoreDbs, nonce: string, exp: number): boolean {
  if (dbs.csrfNonces.doesExist(nonce)) return false;
  dbs.csrfNonces.put(nonce, exp);
  dbs.csrfNoncesByExpiry.put([exp, nonce], null);
  return true;
}

/** What one purge transaction removed, by kind. */
export interface PurgeCounts {
  tokens: number;
  revokedTokens: number;
  revokedUsers: number;
  bans: number;
  csrfNonces: number;
}

/**
 * Removes at most `max` entries of each kind that ended at or before `now`, walking the expiry
 * indexes from their start (never the main databases). Returns what it removed.
 */
export function purgeSome(dbs: StoreDbs, now: number, max: number): PurgeCounts {
  let tokens = 0;
  for (const [exp, tokenId] of expired(dbs.tokensByExpiry, now, max)) {
    const old = dbs.tokens.get(tokenId);
    if (old) dbs.tokensByUser.remove([old.user, old.iat, tokenId]);
    dbs.tokens.remove(tokenId);
    dbs.tokenUses.remove(tokenId);
    dbs.tokensByExpiry.remove([exp, tokenId]);
    tokens++;
  }
  let revokedTokens = 0;
  for (const [until, tokenId] of expired(dbs.revokedTokensByExpiry, now, max)) {
    dbs.revokedTokens.remove(tokenId);
    dbs.revokedTokensByExpiry.remove([until, tokenId]);
    revokedTokens++;
  }
  let revokedUsers = 0;
  for (const [until, user] of expired(dbs.revokedUsersByExpiry, now, max)) {
    dbs.revokedUsers.remove(user);
    dbs.revokedUsersByExpiry.remove([until, user]);
    revokedUsers++;
  }
  let bans = 0;
  for (const [until, kind, subject] of expired(dbs.loginBansByExpiry, now, max)) {
    dbs.loginBans.remove([kind, subject]);
    dbs.loginBansByExpiry.remove([until, kind, subject]);
    bans++;
  }
  let csrfNonces = 0;
  for (const [exp, nonce] of expired(dbs.csrfNoncesByExpiry, now, max)) {
    dbs.csrfNonces.remove(nonce);
    dbs.csrfNoncesByExpiry.remove([exp, nonce]);
    csrfNonces++;
  }
  return { tokens, revokedTokens, revokedUsers, bans, csrfNonces };
}

// The keys are collected before removing: a cursor walking entries it deletes is not portable.
function expired<K extends [number, ...string[]]>(
  index: { getKeys(options: { limit: number }): Iterable<K> },
  now: number,
  max: number,
): K[] {
  const keys: K[] = [];
  for (const key of index.getKeys({ limit: max })) {
    if (key[0] > now) break;
    keys.push(key);
  }
  return keys;
}

/**
 * The state of one revocation subject (a token or a user) as nodes exchange it over Redis and
 * keep it beside their own revocations (the `sync-marks` database). Records join: join(a, b) is
 * commutative, associative and idempotent, so nodes that saw the same changes in any order, any
 * number of times, hold the same record. The Lua merge script (supervisor/redis-merge-script.ts)
 * is the same function, run atomically inside Redis.
 *
 * Rules (the keeper's, extended across nodes):
 * - the later of the latest revoke and the latest lift decides the state; a tie is a revoke
 *   (fail closed);
 * - two revokes in force join to the later `until` (never shortened) and the later
 *   `notBefore` (it only moves forward);
 * - `expiresAt` is the latest `until` ever seen: a lift is kept (a tombstone) as long as the
 *   revocation it lifted could still be presented again by a node that was offline.
 *
 * Times: `revokedAt`, `liftedAt` in milliseconds (0: never); `until`, `notBefore`, `expiresAt`
 * in unix seconds.
 */

/** What a record is about. */
export type SyncKind = 'token' | 'user';

export interface SyncRecord {
  kind: SyncKind;
  /** The token id, or the username. */
  subject: string;
  /** Latest revoke, ms (0: never revoked). */
  revokedAt: number;
  /** Latest lift, ms (0: never lifted). */
  liftedAt: number;
  /** The revocation's end (s); meaningful while revoked. */
  until: number;
  /** User revocations: tokens issued at or before it are refused (s); 0 for tokens. */
  notBefore: number;
  /** When the record may be forgotten (s): the latest `until` it carried. */
  expiresAt: number;
  /** The node that made the latest change (informational). */
  origin: string;
}

/** True when the record's latest change is a revoke (a tie with a lift counts as a revoke). */
export function isRevoked(r: SyncRecord): boolean {
  return r.revokedAt > 0 && r.revokedAt >= r.liftedAt;
}

/** The join of two records of the same subject (`a` may be absent: `b` is then the result). */
export function joinRecords(a: SyncRecord | undefined, b: SyncRecord): SyncRecord {
  if (a === undefined) return { ...b, expiresAt: Math.max(b.expiresAt, b.until) };
  const liftedAt = Math.max(a.liftedAt, b.liftedAt);
  const aOn = a.revokedAt > 0 && a.revokedAt >= liftedAt;
  const bOn = b.revokedAt > 0 && b.revokedAt >= liftedAt;
  let revoke: Pick<SyncRecord, 'revokedAt' | 'until' | 'notBefore'>;
  // Both in force (or both lifted and equally old): join the two; else the one in force, or
  // the later one, stands whole.
  if (aOn === bOn && (aOn || a.revokedAt === b.revokedAt)) {
    revoke = {
      revokedAt: Math.max(a.revokedAt, b.revokedAt),
      until: Math.max(a.until, b.until),
      notBefore: Math.max(a.notBefore, b.notBefore),
    };
  } else if (aOn || (!bOn && a.revokedAt > b.revokedAt)) {
    revoke = { revokedAt: a.revokedAt, until: a.until, notBefore: a.notBefore };
  } else {
    revoke = { revokedAt: b.revokedAt, until: b.until, notBefore: b.notBefore };
  }
  const latestA = Math.max(a.revokedAt, a.liftedAt);
  const latestB = Math.max(b.revokedAt, b.liftedAt);
  return {
    kind: a.kind,
    subject: a.subject,
    ...revoke,
    liftedAt,
    expiresAt: Math.max(a.expiresAt, b.expiresAt, revoke.until),
    // Ties by name, so that the join stays commutative down to this field.
    origin: latestB > latestA || (latestB === latestA && b.origin > a.origin) ? b.origin : a.origin,
  };
}

/** True when the two records hold the same state (origin included). */
export function sameRecord(a: SyncRecord, b: SyncRecord): boolean {
  return (
    a.revokedAt === b.revokedAt &&
    a.liftedAt === b.liftedAt &&
    a.until === b.until &&
    a.notBefore === b.notBefore &&
    a.expiresAt === b.expiresAt &&
    a.origin === b.origin
  );
}

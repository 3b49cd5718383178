// The Redis bus's side of the store: transaction bodies (like store-writes.ts) that keep each
// subject's sync record (`sync-marks`, see shared/sync-record.ts) and the outbox of records not
// yet published. A local change writes its revocation, its mark and its outbox entry in one
// transaction; a remote record is joined into the mark and the revocation is derived from it.
import type { RevocationChange } from './ipc.js';
import type { StoreDbs, SyncOutboxValue } from './store-schema.js';
import {
  putTokenRevocation,
  putUserRevocation,
  removeTokenRevocation,
  removeUserRevocation,
} from './store-writes.js';
import {
  isRevoked,
  joinRecords,
  type SyncKind,
  type SyncRecord,
  sameRecord,
} from './sync-record.js';

/** Who made a local change and when (ms): what its sync record carries. */
export interface SyncStamp {
  origin: string;
  atMs: number;
  /** Unix seconds: marks that ended by then are treated as absent. */
  nowSeconds: number;
}

/** One outbox entry. */
export interface OutboxEntry {
  seq: number;
  record: SyncRecord;
}

/**
 * Records the sync side of a local `change` that is about to be written (call it before the
 * revocation write: a lift reads the revocation it removes). Joins it into the subject's mark
 * and queues the joined record for publishing. A revoke is dated no earlier than the subject's
 * latest lift, a lift after its latest revoke, so the local intent wins the join.
 */
export function recordLocalChange(dbs: StoreDbs, change: RevocationChange, stamp: SyncStamp): void {
  const [kind, subject] = subjectOf(change);
  const old = liveMark(dbs, kind, subject, stamp.nowSeconds);
  let event: Omit<SyncRecord, 'origin'>;
  switch (change.op) {
    case 'revoke-token':
    case 'revoke-user': {
      const notBefore = change.op === 'revoke-user' ? change.notBefore : 0;
      const revokedAt = Math.max(stamp.atMs, old?.liftedAt ?? 0);
      const { until } = change;
      event = { kind, subject, revokedAt, liftedAt: 0, until, notBefore, expiresAt: until };
      break;
    }
    case 'lift-token':
    case 'lift-user': {
      const lifted =
        kind === 'token' ? dbs.revokedTokens.get(subject) : dbs.revokedUsers.get(subject);
      const until = Math.max(lifted?.until ?? 0, old?.expiresAt ?? 0);
      if (until <= stamp.nowSeconds) return;
      const liftedAt = Math.max(stamp.atMs, (old?.revokedAt ?? 0) + 1);
      event = { kind, subject, revokedAt: 0, liftedAt, until: 0, notBefore: 0, expiresAt: until };
      break;
    }
  }
  const joined = joinRecords(old, { ...event, origin: stamp.origin });
  putMark(dbs, joined);
  const last = lastOutboxSeq(dbs);
  dbs.syncOutbox.put(last + 1, joined);
}

/**
 * Joins a record from another node into the subject's mark and brings the revocation in line:
 * returns the change the edges must apply, or undefined when nothing they hold changes (the
 * record was known, older, or ended). A revocation in force here is never shortened.
 */
export function applyRemoteRecord(
  dbs: StoreDbs,
  record: SyncRecord,
  nowSeconds: number,
): RevocationChange | undefined {
  if (record.expiresAt <= nowSeconds) return undefined;
  const { kind, subject } = record;
  const old = markWithRevocation(dbs, kind, subject, nowSeconds);
  const joined = joinRecords(old, record);
  if (old !== undefined && sameRecord(old, joined)) return undefined;
  putMark(dbs, joined);
  return kind === 'token'
    ? deriveToken(dbs, joined, nowSeconds)
    : deriveUser(dbs, joined, nowSeconds);
}

/** The first `limit` outbox entries, oldest first. */
export function outboxPage(dbs: StoreDbs, limit: number): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  for (const { key, value } of dbs.syncOutbox.getRange({ limit }))
    out.push({ seq: key, record: value });
  return out;
}

/** Removes published outbox entries. */
export function removeOutbox(dbs: StoreDbs, seqs: readonly number[]): void {
  for (const seq of seqs) dbs.syncOutbox.remove(seq);
}

/**
 * Every record a node holds that has not ended: its marks (revocations and lift tombstones),
 * and a record built from each revocation in force that has no mark (made before the bus was
 * on). What a reconnect writes back to Redis.
 */
export function recordsInForce(dbs: StoreDbs, nowSeconds: number, origin: string): SyncRecord[] {
  const out: SyncRecord[] = [];
  for (const key of dbs.syncMarksByExpiry.getKeys({ start: [nowSeconds + 1] as never })) {
    const mark = dbs.syncMarks.get([key[1], key[2]]);
    if (mark) out.push(mark);
  }
  for (const { key, value } of dbs.revokedTokens.getRange({})) {
    if (value.until <= nowSeconds || dbs.syncMarks.doesExist(['token', key])) continue;
    out.push(fromRevocation('token', key, value.until, 0, value.revokedAt, origin));
  }
  for (const { key, value } of dbs.revokedUsers.getRange({})) {
    if (value.until <= nowSeconds || dbs.syncMarks.doesExist(['user', key])) continue;
    out.push(fromRevocation('user', key, value.until, value.notBefore, value.revokedAt, origin));
  }
  return out;
}

/**
 * Removes at most `max` marks that ended by `now`, and every outbox entry whose record ended
 * (nothing left to publish). Returns how many marks it removed.
 */
export function purgeSyncMarks(dbs: StoreDbs, now: number, max: number): number {
  const keys: [number, SyncKind, string][] = [];
  for (const key of dbs.syncMarksByExpiry.getKeys({ limit: max })) {
    if (key[0] > now) break;
    keys.push(key);
  }
  for (const key of keys) {
    dbs.syncMarks.remove([key[1], key[2]]);
    dbs.syncMarksByExpiry.remove(key);
  }
  const ended: number[] = [];
  for (const { key, value } of dbs.syncOutbox.getRange({ limit: max })) {
    if (value.expiresAt <= now) ended.push(key);
  }
  removeOutbox(dbs, ended);
  return keys.length;
}

function subjectOf(change: RevocationChange): [SyncKind, string] {
  return change.op === 'revoke-token' || change.op === 'lift-token'
    ? ['token', change.tokenId]
    : ['user', change.user];
}

function lastOutboxSeq(dbs: StoreDbs): number {
  for (const key of dbs.syncOutbox.getKeys({ reverse: true, limit: 1 })) return key;
  return 0;
}

function liveMark(
  dbs: StoreDbs,
  kind: SyncKind,
  subject: string,
  nowSeconds: number,
): SyncRecord | undefined {
  const mark = dbs.syncMarks.get([kind, subject]);
  return mark !== undefined && mark.expiresAt > nowSeconds ? mark : undefined;
}

/**
 * The subject's mark joined with its revocation in force, read as a record: a revocation made
 * while the bus was off (no mark, or an older one) still counts, dated by its `revokedAt`.
 */
function markWithRevocation(
  dbs: StoreDbs,
  kind: SyncKind,
  subject: string,
  nowSeconds: number,
): SyncRecord | undefined {
  const mark = liveMark(dbs, kind, subject, nowSeconds);
  const origin = mark?.origin ?? '';
  let held: SyncRecord | undefined;
  if (kind === 'token') {
    const r = dbs.revokedTokens.get(subject);
    if (r && r.until > nowSeconds)
      held = fromRevocation(kind, subject, r.until, 0, r.revokedAt, origin);
  } else {
    const r = dbs.revokedUsers.get(subject);
    if (r && r.until > nowSeconds) {
      held = fromRevocation(kind, subject, r.until, r.notBefore, r.revokedAt, origin);
    }
  }
  if (held === undefined) return mark;
  if (mark === undefined) return held;
  // The mark was written with the revocation, at millisecond precision: it is the better date.
  return mark.revokedAt >= held.revokedAt ? mark : joinRecords(mark, held);
}

function fromRevocation(
  kind: SyncKind,
  subject: string,
  until: number,
  notBefore: number,
  revokedAtSeconds: number,
  origin: string,
): SyncRecord {
  const revokedAt = Math.max(1, revokedAtSeconds * 1000);
  return { kind, subject, revokedAt, liftedAt: 0, until, notBefore, expiresAt: until, origin };
}

/** Replaces the subject's stored mark (an ended one too: its index entry must go with it). */
function putMark(dbs: StoreDbs, mark: SyncRecord): void {
  const { kind, subject } = mark;
  const old: SyncOutboxValue | undefined = dbs.syncMarks.get([kind, subject]);
  if (old) dbs.syncMarksByExpiry.remove([old.expiresAt, kind, subject]);
  dbs.syncMarks.put([kind, subject], mark);
  dbs.syncMarksByExpiry.put([mark.expiresAt, kind, subject], null);
}

function deriveToken(dbs: StoreDbs, mark: SyncRecord, now: number): RevocationChange | undefined {
  const tokenId = mark.subject;
  const held = dbs.revokedTokens.get(tokenId);
  const inForce = held !== undefined && held.until > now;
  if (isRevoked(mark) && mark.until > now) {
    const until = Math.max(mark.until, inForce ? held.until : 0);
    if (inForce && held.until === until) return undefined;
    const change = {
      op: 'revoke-token',
      tokenId,
      until,
      revokedAt: seconds(mark.revokedAt),
    } as const;
    putTokenRevocation(dbs, change);
    return change;
  }
  if (held === undefined) return undefined;
  removeTokenRevocation(dbs, tokenId);
  return inForce ? { op: 'lift-token', tokenId } : undefined;
}

function deriveUser(dbs: StoreDbs, mark: SyncRecord, now: number): RevocationChange | undefined {
  const user = mark.subject;
  const held = dbs.revokedUsers.get(user);
  const inForce = held !== undefined && held.until > now;
  if (isRevoked(mark) && mark.until > now) {
    const until = Math.max(mark.until, inForce ? held.until : 0);
    const notBefore = Math.max(mark.notBefore, inForce ? held.notBefore : 0);
    if (inForce && held.until === until && held.notBefore === notBefore) return undefined;
    const revokedAt = seconds(mark.revokedAt);
    const change = { op: 'revoke-user', user, notBefore, until, revokedAt } as const;
    putUserRevocation(dbs, change);
    return change;
  }
  if (held === undefined) return undefined;
  removeUserRevocation(dbs, user);
  return inForce ? { op: 'lift-user', user } : undefined;
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

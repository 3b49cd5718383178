/**
 * The node's store: one LMDB environment, `<dataDir>/proxyauth.mdb` (plus LMDB's
 * `proxyauth.mdb-lock`, and `proxyauth.mdb-gate` while a process opens or closes it, see
 * store-gate.ts). The supervisor is its writer; edges open it read-only in their own
 * processes (LMDB is multi-process safe: readers never block the writer or each other).
 * `proxyauth unban` opens it as a second writer while the gateway runs, for a moment: LMDB
 * serialises write transactions across processes, and every write here is a read-modify-write
 * inside one transaction, so two writers never lose each other's changes.
 *
 * Layout, schema version 6. Keys are lmdb-js ordered-binary (arrays sort element by element,
 * numbers before strings), values msgpack; times are unix seconds.
 *
 * | database                 | key                   | value                          |
 * |--------------------------|-----------------------|--------------------------------|
 * | meta                     | 'schema'              | integer version                |
 * |                          | 'opened_at'           | last writer open (the probe)   |
 * | tokens                   | tokenId               | { user, iat, exp }             |
 * | tokens-by-user           | [user, iat, tokenId]  | exp                            |
 * | tokens-by-expiry         | [exp, tokenId]        | null                           |
 * | token-uses               | tokenId               | count                          |
 * | revoked-tokens           | tokenId               | { until, revokedAt }           |
 * | revoked-tokens-by-expiry | [until, tokenId]      | revokedAt                      |
 * | revoked-users            | user                  | { notBefore, until, revokedAt }|
 * | revoked-users-by-expiry  | [until, user]         | { notBefore, revokedAt }       |
 * | login-bans               | [kind, subject]       | { until, bannedAt, failures }  |
 * | login-bans-by-expiry     | [until, kind, subject]| { bannedAt, failures }         |
 * | csrf-nonces              | nonce                 | exp                            |
 * | csrf-nonces-by-expiry    | [exp, nonce]          | null                           |
 * | totp-secrets             | user                  | SealedTotp: { nonce, box,      |
 * |                          |                       |   algorithm, digits, period,   |
 * |                          |                       |   createdAt }                  |
 * | totp-steps               | [user, secretId]      | last accepted time step        |
 * | key-ring                 | keyId (u32)           | KeyRingValue (store-schema.ts, |
 * |                          |                       |   store-keys.ts)               |
 * | sync-outbox              | sequence number       | SyncRecord (sync-record.ts)    |
 * | sync-marks               | [kind, subject]       | SyncRecord                     |
 * | sync-marks-by-expiry     | [expiresAt, kind,     | null                           |
 * |                          |  subject]             |                                |
 *
 * Login bans (brute-force lockouts) have kind 'user' (subject: a username) or 'ip' (subject: the
 * client as the gateway keys it, see LoginBan); version 2 added them. Version 3 added the
 * nonces of spent CSRF tokens (`csrf_single_use`), each kept until its token's expiry.
 *
 * TOTP secrets (version 3) are sealed with a key derived from config.json's `secret`
 * (shared/totp-seal.ts): the store never holds one in the clear. `secretId` is the nonce of the
 * user's sealed secret, or '' for a plaintext secret in config.json (store-totp.ts).
 *
 * The by-expiry indexes serve purge (a range from the start up to now) and an edge's start
 * (revocationsInForce: a range from now on, whose entries hold the whole revocation). The
 * by-user index serves stats and latestExpiryOf. The writer keeps every index in the same
 * transaction as its record. Schema versions and their migrations are in store-schema.ts.
 */
import { join, resolve } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { parseIpEntry } from './ip-match.js';
import type { RevocationChange } from './ipc.js';
import {
  checkBan,
  checkBanKind,
  checkCount,
  checkIpText,
  checkKey,
  checkLimit,
  checkRecord,
  checkSyncRecord,
  checkTime,
} from './store-args.js';
import { type CursorKey, decodeCursor } from './store-cursor.js';
import { StoreError, storeFailure, writeError } from './store-error.js';
import { holdStoreGate } from './store-gate.js';
import {
  activateKey,
  addActiveKey,
  addKey,
  type ImportedKey,
  installKeys,
  type KeyRingEntry,
  KeyRingError,
  keyList,
  removeKey,
} from './store-keys.js';
import { openEnvironment } from './store-open.js';
import {
  banList,
  entryCount,
  latestExpiry,
  revocationPage,
  revocationsInForce,
  statsPage,
} from './store-reads.js';
import type { LoginBanValue, StoreDbs, TokenValue } from './store-schema.js';
import {
  applyRemoteRecord,
  type OutboxEntry,
  outboxPage,
  purgeSyncMarks,
  recordLocalChange,
  recordsInForce,
  removeOutbox,
  type SyncStamp,
} from './store-sync.js';
import {
  CONFIG_SECRET_ID,
  checkConsume,
  checkSealed,
  consumeTotpStep,
  putTotpSecret,
  removeTotpSecret,
  type TotpPutMode,
} from './store-totp.js';
import type {
  LoginBan,
  LoginBanKind,
  PurgeResult,
  RevocationPage,
  RevocationsInForce,
  StatsPage,
  StoreCounts,
  TokenRecord,
  TokenRevocation,
  TokenUse,
  UserRevocation,
} from './store-types.js';
import {
  addUse,
  purgeSome,
  putBan,
  putToken,
  putTokenRevocation,
  putUserRevocation,
  removeBan,
  removeIpBans,
  removeTokenRevocation,
  removeUserRevocation,
  spendCsrfNonce,
} from './store-writes.js';
import type { SyncKind, SyncRecord } from './sync-record.js';
import type { SealedTotp } from './totp-seal.js';

export { StoreError, type StoreErrorCode } from './store-error.js';
export {
  type ImportedKey,
  type KeyRingEntry,
  KeyRingError,
  type KeyState,
  keyIdHex,
  keyState,
} from './store-keys.js';
export { SCHEMA_VERSION } from './store-schema.js';
export type { OutboxEntry, SyncStamp } from './store-sync.js';
export { CONFIG_SECRET_ID, type TotpPutMode } from './store-totp.js';
export type * from './store-types.js';

/** Throws a KeyRingError that a key ring body returned; passes anything else through. */
function refused<T>(result: T | KeyRingError): T {
  if (result instanceof KeyRingError) throw result;
  return result;
}

function checkKeyId(keyId: number): void {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffff_ffff) {
    throw new RangeError(`keyId must be a u32, got ${String(keyId)}`);
  }
}

/** The store's file name inside the data dir. */
export const STORE_FILE = 'proxyauth.mdb';

// One purge transaction removes at most this many entries of each kind, so a purge of a
// million entries never holds the write lock for long; purge() loops until done.
const PURGE_BATCH = 10_000;

/** The default `nowSeconds` of the unban methods: the clock, in unix seconds. */
function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Opens (the writer: creates or migrates) the store in `dataDir`. Synchronous.
 * A writer creates `dataDir` (mode 0700) and the store when missing, unless `create` is false
 * (default true), and proves it can commit before returning; a reader (`readOnly: true`)
 * creates nothing.
 * Throws StoreError: STORE_MISSING (reader, or writer with `create: false`, and no store yet),
 * STORE_ACCESS_DENIED, STORE_READ_ONLY_FS (writer), STORE_FULL (writer), STORE_CORRUPT,
 * STORE_SCHEMA_NEWER, STORE_SCHEMA_OLDER (reader before the writer migrated), STORE_BUSY
 * (another process opened or closed it at that instant without the gate, store-gate.ts),
 * STORE_OPEN_FAILED.
 */
export function openStore(
  dataDir: string,
  options: { readOnly: boolean; create?: boolean },
): Store {
  const path = resolve(join(dataDir, STORE_FILE));
  const { root, dbs } = openEnvironment(path, options.readOnly, options.create ?? true);
  return new Store(path, options.readOnly, root, dbs);
}

/**
 * An open store. Writes (writers only) are async and resolve once committed and flushed to
 * disk; they reject with StoreError STORE_WRITE_FAILED (the message names the file and the
 * cause), STORE_READ_ONLY on a read-only handle, STORE_CLOSED after close(), and with a
 * TypeError/RangeError for a malformed argument. Reads are synchronous and throw StoreError
 * STORE_READ_FAILED, STORE_CLOSED or STORE_BAD_CURSOR. Made by openStore().
 */
export class Store {
  /** Absolute path of the store file. */
  readonly path: string;
  /** True for a reader's handle: every write rejects with STORE_READ_ONLY. */
  readonly readOnly: boolean;
  readonly #root: RootDatabase;
  readonly #dbs: StoreDbs;
  #closed = false;

  /** @internal use openStore(). */
  constructor(path: string, readOnly: boolean, root: RootDatabase, dbs: StoreDbs) {
    this.path = path;
    this.readOnly = readOnly;
    this.#root = root;
    this.#dbs = dbs;
  }

  /** Records issued tokens with their indexes; a different record under the same id is replaced. */
  async recordTokens(records: readonly TokenRecord[]): Promise<void> {
    for (const record of records) checkRecord(record);
    if (records.length === 0) return;
    await this.#write((dbs) => {
      for (const record of records) putToken(dbs, record);
    });
  }

  /**
   * Adds each `count` to its token's use count, atomically (concurrent calls all count). A token
   * this node has no record of (issued by another node) is recorded from `record` first; an
   * existing record is kept as it is.
   */
  async addUses(uses: readonly TokenUse[]): Promise<void> {
    for (const use of uses) {
      checkRecord(use.record);
      checkCount('count', use.count);
    }
    if (uses.length === 0) return;
    await this.#write((dbs) => {
      for (const use of uses) addUse(dbs, use.record, use.count);
    });
  }

  /**
   * Revokes one token until `r.until`, replacing an earlier revocation of that token. With
   * `sync` (the Redis bus is on), the change's sync record is joined into the token's mark and
   * queued in the outbox, in the same transaction (shared/store-sync.ts).
   */
  async revokeToken(r: TokenRevocation, sync?: SyncStamp): Promise<void> {
    checkKey('tokenId', r.tokenId);
    checkTime('until', r.until);
    checkTime('revokedAt', r.revokedAt);
    await this.#write((dbs) => {
      if (sync) recordLocalChange(dbs, { op: 'revoke-token', ...r }, sync);
      putTokenRevocation(dbs, r);
    });
  }

  /**
   * Revokes every token of `r.user` issued at or before `r.notBefore`, until `r.until`,
   * replacing an earlier revocation of that user. `sync`: as revokeToken.
   */
  async revokeUser(r: UserRevocation, sync?: SyncStamp): Promise<void> {
    checkKey('user', r.user);
    checkTime('notBefore', r.notBefore);
    checkTime('until', r.until);
    checkTime('revokedAt', r.revokedAt);
    await this.#write((dbs) => {
      if (sync) recordLocalChange(dbs, { op: 'revoke-user', ...r }, sync);
      putUserRevocation(dbs, r);
    });
  }

  /**
   * Lifts the revocation of one token; resolves true when there was one. `sync`: as
   * revokeToken; the lift is kept as a tombstone until the lifted revocation's end.
   */
  async liftToken(tokenId: string, sync?: SyncStamp): Promise<boolean> {
    checkKey('tokenId', tokenId);
    return this.#write((dbs) => {
      if (sync) recordLocalChange(dbs, { op: 'lift-token', tokenId }, sync);
      return removeTokenRevocation(dbs, tokenId);
    });
  }

  /** Lifts the revocation of a user; resolves true when there was one. `sync`: as liftToken. */
  async liftUser(user: string, sync?: SyncStamp): Promise<boolean> {
    checkKey('user', user);
    return this.#write((dbs) => {
      if (sync) recordLocalChange(dbs, { op: 'lift-user', user }, sync);
      return removeUserRevocation(dbs, user);
    });
  }

  /**
   * Joins a sync record from another node (the Redis bus) into its subject's mark and brings
   * the revocation in line, in one transaction. Resolves with the change the edges must apply,
   * or undefined when nothing they hold changed (known, older, or ended by `nowSeconds`).
   * Nothing is queued for publishing. TypeError for a malformed record.
   */
  async applySyncRecord(
    record: SyncRecord,
    nowSeconds: number,
  ): Promise<RevocationChange | undefined> {
    checkSyncRecord(record);
    checkTime('nowSeconds', nowSeconds);
    return this.#write((dbs) => applyRemoteRecord(dbs, record, nowSeconds));
  }

  /** The oldest `limit` records waiting to be published to Redis, with their sequence numbers. */
  syncOutbox(limit: number): OutboxEntry[] {
    checkLimit(limit);
    return this.#read((dbs) => outboxPage(dbs, limit));
  }

  /** Removes published outbox entries by sequence number. */
  async removeSyncOutbox(seqs: readonly number[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.#write((dbs) => removeOutbox(dbs, seqs));
  }

  /**
   * The sync records of every subject not ended at `nowSeconds`: marks (lift tombstones
   * included) and revocations in force without a mark, dated by their revokedAt and credited
   * to `origin`. One pass over the marks' expiry index and the two revocation databases.
   */
  syncRecordsInForce(nowSeconds: number, origin: string): SyncRecord[] {
    checkTime('nowSeconds', nowSeconds);
    return this.#read((dbs) => recordsInForce(dbs, nowSeconds, origin));
  }

  /** The sync record kept for a subject (ended or not), or undefined. */
  getSyncMark(kind: SyncKind, subject: string): SyncRecord | undefined {
    checkKey('subject', subject);
    return this.#read((dbs) => dbs.syncMarks.get([kind, subject]));
  }

  /**
   * Bans logins of `b.subject` until `b.until` (see LoginBan for the subjects). A ban is never
   * shortened: when the subject's current ban ends as late or later, it is kept whole and `b`
   * is dropped. Resolves with the ban stored afterwards. Any process may call it: the gateway's
   * supervisor and `proxyauth unban` both write (LMDB serialises writers across processes).
   * TypeError for a malformed ban (an ip subject that is not an address or CIDR included).
   */
  async ban(b: LoginBan): Promise<LoginBan> {
    checkBan(b);
    return this.#write((dbs) => putBan(dbs, b));
  }

  /**
   * Lifts the ban of user `subject` (exact name). Resolves with the ban lifted when it was in
   * force at `nowSeconds` (default: now), else []; an ended ban not yet purged is removed too.
   */
  async unban(kind: 'user', subject: string, nowSeconds = unixNow()): Promise<LoginBan[]> {
    if (kind !== 'user') throw new TypeError(`kind must be 'user' (unbanIp lifts ip bans)`);
    checkKey('subject', subject);
    checkTime('nowSeconds', nowSeconds);
    return this.#write((dbs) => removeBan(dbs, kind, subject, nowSeconds));
  }

  /**
   * Lifts every ip ban that shares an address with `address`, an IP or a CIDR in any spelling
   * (parseIpEntry's: compressed or not, IPv4-mapped, surrounding blanks): a ban of that very
   * address or network ('2001:DB8::1' lifts '2001:db8::1/128', '::ffff:203.0.113.7' lifts
   * '203.0.113.7'), of a network holding it ('2001:db8:1:2::5' lifts '2001:db8:1:2::/64'), or
   * of an address or network inside it ('203.0.113.0/24' lifts '203.0.113.7'). Resolves with
   * the bans lifted that were in force at `nowSeconds` (default: now), by subject; ended ones
   * are removed too. One pass over the ip bans. TypeError when `address` is not an IP or CIDR.
   */
  async unbanIp(address: string, nowSeconds = unixNow()): Promise<LoginBan[]> {
    checkIpText('address', address);
    checkTime('nowSeconds', nowSeconds);
    const network = parseIpEntry(address);
    return this.#write((dbs) => removeIpBans(dbs, network, address.trim(), nowSeconds));
  }

  /**
   * Spends the CSRF token whose nonce is `nonce` (base64url text, worker/csrf-token.ts) and
   * whose expiry is `exp` (unix seconds): resolves true when it was fresh (now recorded until
   * `exp`, so a restart does not make it valid again), false when it was spent before. The
   * check and the record are one write transaction: across processes and concurrent calls,
   * one spend of a nonce resolves true.
   */
  async spendCsrfNonce(nonce: string, exp: number): Promise<boolean> {
    checkKey('nonce', nonce);
    checkTime('exp', exp);
    return this.#write((dbs) => spendCsrfNonce(dbs, nonce, exp));
  }

  /**
   * Stores `sealed` as `user`'s TOTP secret. 'enrol' stores it only when the user has none and
   * resolves false otherwise; 'reset' replaces any (dropping the old secret's last step) and
   * resolves true. Any process may call it (`proxyauth totp reset` beside the supervisor).
   */
  async putTotp(user: string, sealed: SealedTotp, mode: TotpPutMode): Promise<boolean> {
    checkKey('user', user);
    checkSealed(sealed);
    if (mode !== 'enrol' && mode !== 'reset') throw new TypeError(`unknown mode ${String(mode)}`);
    return this.#write((dbs) => putTotpSecret(dbs, user, sealed, mode));
  }

  /** Removes `user`'s TOTP secret (and its last step); resolves true when there was one. */
  async removeTotp(user: string): Promise<boolean> {
    checkKey('user', user);
    return this.#write((dbs) => removeTotpSecret(dbs, user));
  }

  /**
   * Replay protection (RFC 6238 section 5.2), in one write transaction: accepts the smallest of
   * `steps` (those a code matched) greater than the last step accepted for `user`'s secret
   * `secretId` (the nonce of its sealed secret, or CONFIG_SECRET_ID for config.json's), and
   * records it. Resolves with the step, or undefined when none is greater or `secretId` is not
   * the user's secret in force any more.
   */
  async consumeTotpStep(
    user: string,
    secretId: string,
    steps: readonly number[],
  ): Promise<number | undefined> {
    checkKey('user', user);
    checkConsume(secretId, steps);
    return this.#write((dbs) => consumeTotpStep(dbs, user, secretId, steps));
  }

  /**
   * Adds key material under its key id (deriveTokenKeys(secret).keyId), verify-only until
   * activateKey. Resolves false when the ring holds this material already; rejects with
   * KeyRingError KEY_COLLISION when the id holds other material (nothing written).
   */
  async addKey(
    keyId: number,
    secret: string,
    source: KeyRingEntry['source'],
    nowSeconds: number,
  ): Promise<boolean> {
    checkKeyId(keyId);
    checkKey('secret', secret);
    checkTime('nowSeconds', nowSeconds);
    return refused(await this.#write((dbs) => addKey(dbs, keyId, secret, source, nowSeconds)));
  }

  /**
   * addKey and, when the key was added, activateKey, in one transaction (a rotation: no reader
   * sees the new key before it signs). Resolves with whether it was added and the id retired.
   * KeyRingError KEY_COLLISION (nothing written).
   */
  async addActiveKey(
    keyId: number,
    secret: string,
    source: KeyRingEntry['source'],
    nowSeconds: number,
    expirySeconds: number,
  ): Promise<{ added: boolean; retired: number | undefined }> {
    checkKeyId(keyId);
    checkKey('secret', secret);
    checkTime('nowSeconds', nowSeconds);
    checkCount('expirySeconds', expirySeconds);
    return refused(
      await this.#write((dbs) =>
        addActiveKey(dbs, keyId, secret, source, nowSeconds, expirySeconds),
      ),
    );
  }

  /**
   * Makes `keyId` the signing key; the one active before is retired at `nowSeconds` and verifies
   * until `nowSeconds + expirySeconds` (token_expiry_seconds: its last token's expiry). Resolves
   * with the retired key's id (undefined: none). KeyRingError KEY_UNKNOWN.
   */
  async activateKey(
    keyId: number,
    nowSeconds: number,
    expirySeconds: number,
  ): Promise<number | undefined> {
    checkKeyId(keyId);
    checkTime('nowSeconds', nowSeconds);
    checkCount('expirySeconds', expirySeconds);
    return refused(await this.#write((dbs) => activateKey(dbs, keyId, nowSeconds, expirySeconds)));
  }

  /**
   * Marks `keyId` removed (the record stays, see store-keys.ts): its tokens stop verifying at
   * the next snapshot. KeyRingError KEY_ACTIVE for the active key, KEY_UNKNOWN.
   */
  async removeKey(keyId: number, nowSeconds: number): Promise<void> {
    checkKeyId(keyId);
    checkTime('nowSeconds', nowSeconds);
    refused(await this.#write((dbs) => removeKey(dbs, keyId, nowSeconds)));
  }

  /**
   * Installs another node's keys in one transaction, all or nothing (store-keys.ts
   * installKeys), then makes `activeId` active when given. Resolves with the ids added.
   * KeyRingError KEY_COLLISION (nothing written).
   */
  async installKeys(
    keys: readonly ImportedKey[],
    activeId: number | undefined,
    nowSeconds: number,
    expirySeconds: number,
  ): Promise<number[]> {
    for (const key of keys) {
      checkKeyId(key.keyId);
      checkKey('secret', key.secret);
      checkCount('tokenLifetime', key.tokenLifetime);
      if (key.verifyUntil !== null) checkTime('verifyUntil', key.verifyUntil);
    }
    if (activeId !== undefined && !keys.some((k) => k.keyId === activeId)) {
      throw new RangeError('activeId must be one of the keys installed');
    }
    checkTime('nowSeconds', nowSeconds);
    checkCount('expirySeconds', expirySeconds);
    return refused(
      await this.#write((dbs) => installKeys(dbs, keys, activeId, nowSeconds, expirySeconds)),
    );
  }

  /** Every key record (removed and expired ones included), by key id. Material included. */
  keyRing(): KeyRingEntry[] {
    return this.#read(keyList);
  }

  /**
   * Removes token records (with their use counts and index entries) whose `exp <= nowSeconds`,
   * token and user revocations and login bans whose `until <= nowSeconds`, and spent CSRF
   * nonces whose token expired, walking the expiry indexes only. Resolves with how many of
   * each it removed.
   */
  async purge(nowSeconds: number): Promise<PurgeResult> {
    checkTime('nowSeconds', nowSeconds);
    const total: PurgeResult = { tokens: 0, revocations: 0, bans: 0, csrfNonces: 0 };
    for (;;) {
      const done = await this.#write((dbs) => ({
        ...purgeSome(dbs, nowSeconds, PURGE_BATCH),
        marks: purgeSyncMarks(dbs, nowSeconds, PURGE_BATCH),
      }));
      total.tokens += done.tokens;
      total.revocations += done.revokedTokens + done.revokedUsers;
      total.bans += done.bans;
      total.csrfNonces += done.csrfNonces;
      const most = Math.max(
        done.tokens,
        done.revokedTokens,
        done.revokedUsers,
        done.bans,
        done.csrfNonces,
        done.marks,
      );
      if (most < PURGE_BATCH) return total;
    }
  }

  /** The record of `tokenId`, or undefined when this store has none. */
  getToken(tokenId: string): TokenRecord | undefined {
    // Inline rather than through #read: no closure on a lookup an edge may make per request.
    if (this.#closed) throw this.#closedError();
    let value: TokenValue | undefined;
    try {
      value = this.#dbs.tokens.get(tokenId);
    } catch (err) {
      throw this.#readError(err);
    }
    return value && { tokenId, user: value.user, iat: value.iat, exp: value.exp };
  }

  /** The revocation of `tokenId` (in force or ended but not yet purged), or undefined. */
  getTokenRevocation(tokenId: string): TokenRevocation | undefined {
    return this.#read((dbs) => {
      const r = dbs.revokedTokens.get(tokenId);
      return r && { tokenId, until: r.until, revokedAt: r.revokedAt };
    });
  }

  /** The revocation of `user` (in force or ended but not yet purged), or undefined. */
  getUserRevocation(user: string): UserRevocation | undefined {
    return this.#read((dbs) => {
      const r = dbs.revokedUsers.get(user);
      return r && { user, notBefore: r.notBefore, until: r.until, revokedAt: r.revokedAt };
    });
  }

  /**
   * The login ban of `subject` in force at `nowSeconds` (`until > nowSeconds`), or undefined.
   * One lookup of the exact subject: an ip subject is looked up in the spelling it was banned
   * under (LoginBan). Sees what any process committed (a ban lifted by `proxyauth unban`)
   * from the next event-loop turn on, or at once after refresh().
   */
  getBan(kind: LoginBanKind, subject: string, nowSeconds: number): LoginBan | undefined {
    checkBanKind(kind);
    checkKey('subject', subject);
    checkTime('nowSeconds', nowSeconds);
    return this.#read((dbs) => {
      const value: LoginBanValue | undefined = dbs.loginBans.get([kind, subject]);
      if (!value || value.until <= nowSeconds) return undefined;
      return {
        kind,
        subject,
        until: value.until,
        bannedAt: value.bannedAt,
        failures: value.failures,
      };
    });
  }

  /**
   * The login bans in force (`until > nowSeconds`), ordered by kind ('ip' before 'user') then
   * subject, at most `limit` (a positive integer). Walks every ban, ended ones included until
   * purged.
   */
  listBans(nowSeconds: number, limit: number): LoginBan[] {
    checkTime('nowSeconds', nowSeconds);
    checkLimit(limit);
    return this.#read((dbs) => banList(dbs, nowSeconds, limit));
  }

  /** `user`'s sealed TOTP secret, or undefined. Call refresh() first to see other processes' writes at once. */
  getTotp(user: string): SealedTotp | undefined {
    checkKey('user', user);
    return this.#read((dbs) => dbs.totpSecrets.get(user));
  }

  /** The last time step accepted for `user`'s secret `secretId` (see consumeTotpStep), or undefined. */
  lastTotpStep(user: string, secretId: string = CONFIG_SECRET_ID): number | undefined {
    checkKey('user', user);
    return this.#read((dbs) => dbs.totpSteps.get([user, secretId]));
  }

  /** The latest `exp` among `user`'s recorded tokens (not yet purged), or undefined. */
  latestExpiryOf(user: string): number | undefined {
    return this.#read((dbs) => latestExpiry(dbs, user));
  }

  /**
   * Every token and user revocation with `until > nowSeconds`, ordered by `until`: what an edge
   * loads into its RAM set when it starts. One pass over each expiry index.
   */
  revocationsInForce(nowSeconds: number): RevocationsInForce {
    checkTime('nowSeconds', nowSeconds);
    return this.#read((dbs) => revocationsInForce(dbs, nowSeconds));
  }

  /**
   * One page of the revocations in force (`until > nowSeconds`): token revocations by token id,
   * then user revocations by user; at most `limit` (a positive integer) items. `after` is the
   * `next` of the previous page (null on the last page). A cursor this store did not issue
   * throws StoreError STORE_BAD_CURSOR.
   */
  listRevocations(options: { after?: string; limit: number; nowSeconds: number }): RevocationPage {
    checkLimit(options.limit);
    checkTime('nowSeconds', options.nowSeconds);
    const after = this.#cursor(options.after, 'ss', (key) => key[0] === 't' || key[0] === 'u');
    return this.#read((dbs) => revocationPage(dbs, after, options.limit, options.nowSeconds));
  }

  /**
   * One page of token stats: unexpired tokens (`exp > nowSeconds`) with their use counts (0 when
   * never used), grouped by user, ordered by user, then issue time, then token id; at most
   * `limit` tokens in all; only `user`'s when given. `after` is the `next` of the previous page
   * (null on the last page); a cursor of another user's listing throws STORE_BAD_CURSOR.
   */
  stats(options: { user?: string; after?: string; limit: number; nowSeconds: number }): StatsPage {
    checkLimit(options.limit);
    checkTime('nowSeconds', options.nowSeconds);
    const { user } = options;
    if (user !== undefined) checkKey('user', user);
    const after = this.#cursor(
      options.after,
      'sns',
      (key) => user === undefined || key[0] === user,
    );
    return this.#read((dbs) =>
      statsPage(dbs, { user, after, limit: options.limit, now: options.nowSeconds }),
    );
  }

  /**
   * How many token records, token revocations, user revocations and login bans the store holds
   * (ended ones included until purged). O(1).
   */
  counts(): StoreCounts {
    return this.#read((dbs) => ({
      tokens: entryCount(dbs.tokens),
      revokedTokens: entryCount(dbs.revokedTokens),
      revokedUsers: entryCount(dbs.revokedUsers),
      bans: entryCount(dbs.loginBans),
    }));
  }

  /**
   * Makes the next reads see every commit made so far, by this or another process. Reads renew
   * their snapshot on their own at the next event-loop turn; call this to see a write that an
   * IPC message just announced within the same turn.
   */
  refresh(): void {
    if (this.#closed) throw this.#closedError();
    this.#root.resetReadTxn();
  }

  /** Whether close() was called (readiness: supervisor/health.ts). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the store once pending writes are done. Closing twice is harmless. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Closing as the last process destroys LMDB's lock table mutexes: not while another
    // process opens (store-gate.ts).
    const release = holdStoreGate(this.path);
    try {
      await this.#root.close();
    } finally {
      release();
    }
  }

  async #write<T>(body: (dbs: StoreDbs) => T): Promise<T> {
    if (this.#closed) throw this.#closedError();
    if (this.readOnly) {
      throw new StoreError('STORE_READ_ONLY', `the store at ${this.path} is open read-only`);
    }
    try {
      // A child transaction: a body that throws leaves nothing behind. Bodies queued before a
      // commit starts share it; without overlapping sync (store-open.ts) the commit is on disk
      // when this resolves.
      return await this.#root.childTransaction(() => body(this.#dbs));
    } catch (err) {
      throw await writeError(this.path, err);
    }
  }

  #read<T>(query: (dbs: StoreDbs) => T): T {
    if (this.#closed) throw this.#closedError();
    try {
      return query(this.#dbs);
    } catch (err) {
      throw this.#readError(err);
    }
  }

  #readError(err: unknown): StoreError {
    const { cause } = storeFailure(err);
    return new StoreError('STORE_READ_FAILED', `cannot read the store at ${this.path}: ${cause}`, {
      cause: err,
    });
  }

  #cursor(
    cursor: string | undefined,
    kinds: string,
    fits: (key: CursorKey) => boolean,
  ): CursorKey | undefined {
    if (cursor === undefined) return undefined;
    const key = decodeCursor(cursor, kinds);
    if (key && fits(key)) return key;
    throw new StoreError('STORE_BAD_CURSOR', `not a cursor of this listing (${this.path})`);
  }

  #closedError(): StoreError {
    return new StoreError('STORE_CLOSED', `the store at ${this.path} is closed`);
  }
}

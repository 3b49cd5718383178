import type { Database, RootDatabase } from 'lmdb';
import type { LoginBanKind } from './store-types.js';
import type { SyncKind, SyncRecord } from './sync-record.js';
import type { SealedTotp } from './totp-seal.js';

/** The store's named databases, by the name LMDB keeps them under. See store.ts for the layout. */
export const DB = {
  meta: 'meta',
  tokens: 'tokens',
  tokensByUser: 'tokens-by-user',
  tokensByExpiry: 'tokens-by-expiry',
  tokenUses: 'token-uses',
  revokedTokens: 'revoked-tokens',
  revokedTokensByExpiry: 'revoked-tokens-by-expiry',
  revokedUsers: 'revoked-users',
  revokedUsersByExpiry: 'revoked-users-by-expiry',
  loginBans: 'login-bans',
  loginBansByExpiry: 'login-bans-by-expiry',
  csrfNonces: 'csrf-nonces',
  csrfNoncesByExpiry: 'csrf-nonces-by-expiry',
  totpSecrets: 'totp-secrets',
  totpSteps: 'totp-steps',
  keyRing: 'key-ring',
  syncOutbox: 'sync-outbox',
  syncMarks: 'sync-marks',
  syncMarksByExpiry: 'sync-marks-by-expiry',
} as const;

/** Room for the databases later schemas add (TOTP secrets, CSRF nonces, key ring). */
export const MAX_DBS = 32;

/**
 * One step per schema version: MIGRATIONS[v] takes a store at version v to v + 1 inside the
 * writer's open transaction. Adding a version is appending one step (and its databases to DB).
 */
const MIGRATIONS: readonly ((root: RootDatabase) => void)[] = [
  // v0 → v1: a new store; create the databases of the first layout.
  (root) => {
    for (const name of [
      DB.meta,
      DB.tokens,
      DB.tokensByUser,
      DB.tokensByExpiry,
      DB.tokenUses,
      DB.revokedTokens,
      DB.revokedTokensByExpiry,
      DB.revokedUsers,
      DB.revokedUsersByExpiry,
    ]) {
      root.openDB(name, {});
    }
  },
  // v1 → v2: login bans (brute-force lockouts), with their expiry index for purge.
  (root) => {
    for (const name of [DB.loginBans, DB.loginBansByExpiry]) root.openDB(name, {});
  },
  // v2 → v3: spent CSRF token nonces (csrf_single_use), with their expiry index for purge.
  (root) => {
    for (const name of [DB.csrfNonces, DB.csrfNoncesByExpiry]) root.openDB(name, {});
  },
  // v3 → v4: TOTP secrets (sealed, shared/totp-seal.ts) and the last accepted time step of each.
  (root) => {
    for (const name of [DB.totpSecrets, DB.totpSteps]) root.openDB(name, {});
  },
  // v4 → v5: the token key ring (shared/store-keys.ts): key id → key material and its life.
  (root) => {
    root.openDB(DB.keyRing, {});
  },
  // v5 → v6: the Redis revocation bus: records not yet published (the outbox), and the sync
  // record of every subject (revoke and lift times, lift tombstones) with its expiry index.
  (root) => {
    for (const name of [DB.syncOutbox, DB.syncMarks, DB.syncMarksByExpiry]) root.openDB(name, {});
  },
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Key of the schema version (an integer) in the meta database. */
export const SCHEMA_KEY = 'schema';
/** Key of the last writer open (unix seconds) in the meta database: the open probe writes it. */
export const OPENED_AT_KEY = 'opened_at';

/** Runs the steps from `from` up to SCHEMA_VERSION and records the new version, atomically. */
export function migrate(root: RootDatabase, from: number): void {
  root.transactionSync(() => {
    for (let v = from; v < SCHEMA_VERSION; v++) MIGRATIONS[v]!(root);
    root.openDB(DB.meta, {}).put(SCHEMA_KEY, SCHEMA_VERSION);
  });
}

/** Token fields kept under the token id. */
export interface TokenValue {
  user: string;
  iat: number;
  exp: number;
}

/** Login ban fields kept under [kind, subject]. */
export interface LoginBanValue {
  until: number;
  bannedAt: number;
  failures: number;
}

/** The databases of schema SCHEMA_VERSION, with their key and value types. */
export interface StoreDbs {
  readonly meta: Database<number, string>;
  readonly tokens: Database<TokenValue, string>;
  /** [user, iat, tokenId] → exp */
  readonly tokensByUser: Database<number, [string, number, string]>;
  /** [exp, tokenId] → null */
  readonly tokensByExpiry: Database<null, [number, string]>;
  readonly tokenUses: Database<number, string>;
  readonly revokedTokens: Database<{ until: number; revokedAt: number }, string>;
  /** [until, tokenId] → revokedAt */
  readonly revokedTokensByExpiry: Database<number, [number, string]>;
  readonly revokedUsers: Database<{ notBefore: number; until: number; revokedAt: number }, string>;
  /** [until, user] → { notBefore, revokedAt } */
  readonly revokedUsersByExpiry: Database<
    { notBefore: number; revokedAt: number },
    [number, string]
  >;
  /** [kind, subject] → { until, bannedAt, failures } */
  readonly loginBans: Database<LoginBanValue, [LoginBanKind, string]>;
  /** [until, kind, subject] → { bannedAt, failures } */
  readonly loginBansByExpiry: Database<
    { bannedAt: number; failures: number },
    [number, LoginBanKind, string]
  >;
  /** nonce → exp of the CSRF token it was spent with */
  readonly csrfNonces: Database<number, string>;
  /** [exp, nonce] → null */
  readonly csrfNoncesByExpiry: Database<null, [number, string]>;
  /** user → the sealed secret */
  readonly totpSecrets: Database<SealedTotp, string>;
  /** [user, nonce of the secret, or '' for config.json's] → last accepted time step */
  readonly totpSteps: Database<number, [string, string]>;
  /** key id (u32) → the key's material and life */
  readonly keyRing: Database<KeyRingValue, number>;
  /** sequence number → a sync record waiting to be published to Redis */
  readonly syncOutbox: Database<SyncOutboxValue, number>;
  /** [kind, subject] → the subject's sync record (shared/sync-record.ts) */
  readonly syncMarks: Database<SyncOutboxValue, [SyncKind, string]>;
  /** [expiresAt, kind, subject] → null */
  readonly syncMarksByExpiry: Database<null, [number, SyncKind, string]>;
}

/** One key of the ring (shared/store-keys.ts). Times are unix seconds. */
export interface KeyRingValue {
  /** The key material, as config.json's `secret` is (its UTF-8 bytes). */
  secret: string;
  /** Where it came from: config.json's `secret`, `proxyauth keys rotate`, or an import. */
  source: 'config' | 'generated' | 'imported';
  addedAt: number;
  /** When it started signing new tokens (null: never active here, verify-only). */
  activatedAt: number | null;
  /** When another key replaced it as the signer (null: still active, or never active). */
  retiredAt: number | null;
  /** Its tokens verify until then (null: no end while active, or an exporter's active key). */
  verifyUntil: number | null;
  /** When `proxyauth keys remove` took it out (null: not removed). Records are never deleted. */
  removedAt: number | null;
  /** Longest token lifetime (s) known to be issued under it elsewhere (an import); 0: none. */
  tokenLifetime: number;
}

/** A subject's sync record, queued for the Redis bus or kept as the subject's mark. */
export type SyncOutboxValue = SyncRecord;

/**
 * Opens a database that must exist, without creating it (readers cannot, and the writer only
 * creates through a migration). lmdb-js would return undefined for a missing one.
 */
export function openExisting<V, K extends string | number | (string | number)[]>(
  root: RootDatabase,
  name: string,
): Database<V, K> | undefined {
  if (!hasDatabase(root, name)) return undefined;
  return root.openDB<V, K>(name, { create: false } as object) as Database<V, K> | undefined;
}

// Named databases are keys of the root database, but LMDB refuses a plain get of such a key
// (MDB_INCOMPATIBLE, which lmdb-js reads as "absent"): look for the key with a cursor.
function hasDatabase(root: RootDatabase, name: string): boolean {
  for (const key of root.getKeys({ start: name, limit: 1 })) return key === name;
  return false;
}

/**
 * Opens every database of the current schema, or returns the name of one that is missing (a
 * damaged store: its schema version promises it).
 */
export function openDatabases(root: RootDatabase): StoreDbs | string {
  const dbs: Record<string, Database> = {};
  for (const [field, name] of Object.entries(DB)) {
    const db = openExisting(root, name);
    if (!db) return name;
    dbs[field] = db;
  }
  return dbs as unknown as StoreDbs;
}

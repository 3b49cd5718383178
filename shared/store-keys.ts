// The store's token key ring (docs/token-format.md, Rotation): key id → key material and its
// life. Each body runs inside one write transaction (store.ts) and checks everything before it
// writes anything, so a refusal (a collision, the active key) leaves the ring as it was.
//
// Records are never deleted: a retired key whose tokens have all expired, and a removed key,
// stay as records that no snapshot carries. Their ids are what keeps config.json's `secret` from
// being added again as the active key at the next reload after `proxyauth keys rotate` or
// `keys remove` (key-ring lifecycle, supervisor/key-ring.ts).
import { CodedError } from './coded-error.js';
import type { KeyRingValue, StoreDbs } from './store-schema.js';

/** One key of the ring as the store API hands it out; times in unix seconds. */
export interface KeyRingEntry extends KeyRingValue {
  /** deriveTokenKeys(secret).keyId: a u32. */
  keyId: number;
}

/** Where a key's life stands at a given time. */
export type KeyState = 'active' | 'verify-only' | 'expired' | 'removed';

/** A key to install from another node (an import), with its life there. */
export interface ImportedKey {
  keyId: number;
  secret: string;
  /** The longest token lifetime (s) the exporter issues with: retirement math uses it. */
  tokenLifetime: number;
  /** On the exporter: null while it signs there. */
  verifyUntil: number | null;
}

export type KeyRingErrorCode = 'KEY_COLLISION' | 'KEY_UNKNOWN' | 'KEY_ACTIVE';

/** A key ring change refused; nothing was written. Messages name key ids, never material. */
export class KeyRingError extends CodedError<KeyRingErrorCode> {}

/** A key id as the CLI and logs show it: 8 lowercase hex digits. */
export function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/** The state of `key` at `now`. */
export function keyState(key: KeyRingValue, now: number): KeyState {
  if (key.removedAt !== null) return 'removed';
  if (key.activatedAt !== null && key.retiredAt === null) return 'active';
  if (key.verifyUntil === null || key.verifyUntil > now) return 'verify-only';
  return 'expired';
}

/** Every record, by key id. */
export function keyList(dbs: StoreDbs): KeyRingEntry[] {
  const out: KeyRingEntry[] = [];
  for (const { key, value } of dbs.keyRing.getRange()) out.push({ keyId: key, ...value });
  return out;
}

/** The active key's id, or undefined (a ring not yet seeded). */
export function activeKeyId(dbs: StoreDbs): number | undefined {
  for (const { key, value } of dbs.keyRing.getRange()) {
    if (value.removedAt === null && value.activatedAt !== null && value.retiredAt === null) {
      return key;
    }
  }
  return undefined;
}

/**
 * Adds `secret` under `keyId` (verify-only until activated; no end while nothing retires it).
 * Returns false when that id holds this very material already, an error when it holds another.
 */
export function addKey(
  dbs: StoreDbs,
  keyId: number,
  secret: string,
  source: KeyRingValue['source'],
  now: number,
): boolean | KeyRingError {
  const old = dbs.keyRing.get(keyId);
  if (old !== undefined) return old.secret === secret ? false : collision(keyId);
  dbs.keyRing.put(keyId, newRecord(secret, source, now, 0));
  return true;
}

/**
 * addKey, then, when it added the key, activateKey, in the caller's one transaction: a reader
 * never sees the new key before it signs. `retired`: the key active before, if any.
 */
export function addActiveKey(
  dbs: StoreDbs,
  keyId: number,
  secret: string,
  source: KeyRingValue['source'],
  now: number,
  expirySeconds: number,
): { added: boolean; retired: number | undefined } | KeyRingError {
  const added = addKey(dbs, keyId, secret, source, now);
  if (added instanceof KeyRingError) return added;
  if (!added) return { added, retired: undefined };
  // The key is there now: activateKey cannot answer KEY_UNKNOWN.
  return { added, retired: activateKey(dbs, keyId, now, expirySeconds) as number | undefined };
}

/**
 * Makes `keyId` the key that signs; the key active before is retired now and verifies until
 * `now + max(expirySeconds, its tokenLifetime)`, when every token it signed has expired. A
 * removed key comes back. Returns the id retired (undefined: none, or `keyId` was active).
 */
export function activateKey(
  dbs: StoreDbs,
  keyId: number,
  now: number,
  expirySeconds: number,
): number | undefined | KeyRingError {
  const target = dbs.keyRing.get(keyId);
  if (target === undefined) return unknown(keyId);
  const previous = activeKeyId(dbs);
  if (previous === keyId) return undefined;
  if (previous !== undefined) retire(dbs, previous, now, expirySeconds);
  dbs.keyRing.put(keyId, {
    ...target,
    activatedAt: now,
    retiredAt: null,
    verifyUntil: null,
    removedAt: null,
  });
  return previous;
}

/** Marks `keyId` removed: its tokens stop verifying. The active key cannot be removed. */
export function removeKey(dbs: StoreDbs, keyId: number, now: number): true | KeyRingError {
  const old = dbs.keyRing.get(keyId);
  if (old === undefined || old.removedAt !== null) return unknown(keyId);
  if (keyState(old, now) === 'active') {
    return new KeyRingError(
      'KEY_ACTIVE',
      `key ${keyIdHex(keyId)} is the active key: rotate first, then remove it`,
    );
  }
  dbs.keyRing.put(keyId, { ...old, removedAt: now });
  return true;
}

/**
 * Installs `keys` (an import) all or nothing: a key id present with other material refuses the
 * whole set. New ids are added as 'imported'; present ones keep their record, come back when
 * removed, and verify at least as long as the exporter says. Then `activeId` (when given)
 * becomes the active key. Returns the ids added.
 */
export function installKeys(
  dbs: StoreDbs,
  keys: readonly ImportedKey[],
  activeId: number | undefined,
  now: number,
  expirySeconds: number,
): number[] | KeyRingError {
  for (const key of keys) {
    const old = dbs.keyRing.get(key.keyId);
    if (old !== undefined && old.secret !== key.secret) return collision(key.keyId);
  }
  const added: number[] = [];
  for (const key of keys) {
    const old = dbs.keyRing.get(key.keyId);
    if (old === undefined) {
      const record = newRecord(key.secret, 'imported', now, key.tokenLifetime);
      dbs.keyRing.put(key.keyId, { ...record, verifyUntil: key.verifyUntil });
      added.push(key.keyId);
    } else if (keyState(old, now) !== 'active') {
      dbs.keyRing.put(key.keyId, {
        ...old,
        removedAt: null,
        tokenLifetime: Math.max(old.tokenLifetime, key.tokenLifetime),
        verifyUntil: later(old.removedAt === null ? old.verifyUntil : now, key.verifyUntil),
      });
    }
  }
  if (activeId !== undefined) activateKey(dbs, activeId, now, expirySeconds);
  return added;
}

function retire(dbs: StoreDbs, keyId: number, now: number, expirySeconds: number): void {
  const old = dbs.keyRing.get(keyId)!;
  const lifetime = Math.max(expirySeconds, old.tokenLifetime);
  dbs.keyRing.put(keyId, { ...old, retiredAt: now, verifyUntil: now + lifetime });
}

function newRecord(
  secret: string,
  source: KeyRingValue['source'],
  now: number,
  tokenLifetime: number,
): KeyRingValue {
  return {
    secret,
    source,
    addedAt: now,
    activatedAt: null,
    retiredAt: null,
    verifyUntil: null,
    removedAt: null,
    tokenLifetime,
  };
}

/** The later of two ends, null being "no end". */
function later(a: number | null, b: number | null): number | null {
  if (a === null || b === null) return null;
  return Math.max(a, b);
}

function collision(keyId: number): KeyRingError {
  return new KeyRingError(
    'KEY_COLLISION',
    `key id ${keyIdHex(keyId)} is already in the ring with other key material ` +
      '(1 chance in 2^32): choose another secret',
  );
}

function unknown(keyId: number): KeyRingError {
  return new KeyRingError('KEY_UNKNOWN', `no key ${keyIdHex(keyId)} in the ring`);
}

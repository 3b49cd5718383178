import { z } from 'zod';
import { CodedError } from '../shared/coded-error.js';
import { type KeyRingEntry, keyIdHex, keyState } from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';

/** The bundle format this code writes and reads; another version is refused. */
export const BUNDLE_VERSION = 1;
const FORMAT = 'proxyauth-keys';

/**
 * What `proxyauth sync export` encrypts: the key ring in force and the one token setting
 * another node needs for these keys' tokens. Never users, passwords, token_admin, TOTP
 * secrets, or a key that no longer verifies (config.json's old secret included). Times are
 * unix seconds; ids are 8 hex digits.
 */
export interface KeyBundle {
  format: typeof FORMAT;
  version: number;
  /** The exporting node (its host name) and when it exported. */
  node: string;
  exportedAt: number;
  /** token_expiry_seconds there: the longest life of a token signed with these keys. */
  tokenExpirySeconds: number;
  /** The key that signs there. */
  active: string;
  keys: {
    id: string;
    secret: string;
    activatedAt: number | null;
    retiredAt: number | null;
    verifyUntil: number | null;
  }[];
}

export type SyncErrorCode =
  | 'SYNC_BUNDLE_INVALID'
  | 'SYNC_BUNDLE_VERSION'
  | 'SYNC_DECRYPT_FAILED'
  | 'SYNC_TAMPERED'
  | 'SYNC_WRONG_RECIPIENT'
  | 'SYNC_NOT_OPENPGP'
  | 'SYNC_UNTRUSTED_SIGNER'
  | 'SYNC_NO_NODE_KEY'
  | 'SYNC_KEY_FILE'
  | 'SYNC_PASSPHRASE'
  | 'SYNC_OUT_EXISTS'
  | 'SYNC_EMPTY_RING';

/** A sync export, import or keygen that cannot go on; its message names no secret. */
export class SyncError extends CodedError<SyncErrorCode> {}

const time = z.int().nonnegative();
const bundleSchema = z.strictObject({
  format: z.literal(FORMAT),
  version: z.literal(BUNDLE_VERSION),
  node: z.string().max(255),
  exportedAt: time,
  tokenExpirySeconds: z
    .int()
    .min(1)
    .max(10 * 365 * 86_400),
  active: z.string().regex(/^[0-9a-f]{8}$/),
  keys: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[0-9a-f]{8}$/),
        secret: z.string().min(32).max(1024),
        activatedAt: time.nullable(),
        retiredAt: time.nullable(),
        verifyUntil: time.nullable(),
      }),
    )
    .min(1)
    .max(64),
});

/** The bundle of the keys in force at `now` (keyState active or verify-only). */
export function buildBundle(
  ring: readonly KeyRingEntry[],
  node: string,
  now: number,
  tokenExpirySeconds: number,
): KeyBundle {
  const inForce = ring.filter((k) => ['active', 'verify-only'].includes(keyState(k, now)));
  const active = inForce.find((k) => keyState(k, now) === 'active');
  if (active === undefined) {
    throw new SyncError(
      'SYNC_EMPTY_RING',
      'the key ring has no active key yet: start the gateway once',
    );
  }
  return {
    format: FORMAT,
    version: BUNDLE_VERSION,
    node,
    exportedAt: now,
    tokenExpirySeconds,
    active: keyIdHex(active.keyId),
    keys: inForce.map((k) => ({
      id: keyIdHex(k.keyId),
      secret: k.secret,
      activatedAt: k.activatedAt,
      retiredAt: k.retiredAt,
      verifyUntil: k.verifyUntil,
    })),
  };
}

/**
 * Parses decrypted bundle text. SyncError SYNC_BUNDLE_VERSION for another format version,
 * SYNC_BUNDLE_INVALID for anything else that is not a bundle of this version: bad JSON, a field
 * out of shape, an id that is not its material's key id, an active id not among the keys.
 */
export function parseBundle(text: string): KeyBundle {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SyncError(
      'SYNC_BUNDLE_INVALID',
      'the decrypted content is not a key bundle (not JSON)',
    );
  }
  const { format, version } = (value ?? {}) as { format?: unknown; version?: unknown };
  if (format === FORMAT && version !== BUNDLE_VERSION) {
    throw new SyncError(
      'SYNC_BUNDLE_VERSION',
      `the bundle has format version ${JSON.stringify(version)}; this proxyauth reads version ${BUNDLE_VERSION}`,
    );
  }
  const parsed = bundleSchema.safeParse(value);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.join('.') || '(root)';
    throw new SyncError('SYNC_BUNDLE_INVALID', `the key bundle is malformed at ${where}`);
  }
  const bundle = parsed.data;
  const ids = new Set<string>();
  for (const key of bundle.keys) {
    if (keyIdHex(deriveTokenKeys(key.secret).keyId) !== key.id || ids.has(key.id)) {
      throw new SyncError('SYNC_BUNDLE_INVALID', `key ${key.id} does not match its material`);
    }
    ids.add(key.id);
  }
  if (!ids.has(bundle.active)) {
    throw new SyncError(
      'SYNC_BUNDLE_INVALID',
      `the active key ${bundle.active} is not in the bundle`,
    );
  }
  return bundle;
}

// The key ring of the token codec (docs/token-format.md, Rotation): the key material it is built
// from, and the key sets derived from it, indexed by key id.
import { TokenCodecError } from './token-codec-error.js';
import { deriveTokenKeys, type TokenKeys } from './token-keys.js';

/**
 * Key material of a ring, as config.json's `secret` is (UTF-8 strings). `active` signs new
 * tokens; every key, the active one included, verifies the tokens that carry its key id.
 */
export interface TokenKeyRing {
  readonly active: string;
  readonly verifyOnly: readonly string[];
}

/** The key sets of a ring: the active one, and the verify-only ones by key id. */
export interface RingKeys {
  readonly active: TokenKeys;
  /** Never holds the active key id. */
  readonly verifyOnly: ReadonlyMap<number, TokenKeys>;
  /** The material they come from: verify-only deduplicated, without the active material. */
  readonly activeMaterial: string;
  readonly verifyOnlyMaterial: ReadonlySet<string>;
}

/** A key id as tokens carry it and the test vectors write it: 8 lowercase hex digits. */
export function formatKeyId(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/**
 * Derives every key set of `ring`. Material listed twice (or the active material listed again
 * as verify-only) counts once. Throws TokenCodecError TOKEN_SECRET_EMPTY for an empty entry and
 * TOKEN_KEY_ID_COLLISION when two different materials derive the same key id (1 chance in 2^32
 * per pair): a token could not say which one signed it. The message names the entries and the
 * key id, never the material.
 */
export function deriveRingKeys(ring: TokenKeyRing): RingKeys {
  checkMaterial(ring.active, 'active');
  const active = deriveTokenKeys(ring.active);
  const byId = new Map<number, { keys: TokenKeys; entry: string }>();
  byId.set(active.keyId, { keys: active, entry: 'active' });
  const material = new Set<string>();
  ring.verifyOnly.forEach((secret, i) => {
    const entry = `verifyOnly[${i}]`;
    checkMaterial(secret, entry);
    if (secret === ring.active || material.has(secret)) return;
    const keys = deriveTokenKeys(secret);
    const holder = byId.get(keys.keyId);
    if (holder !== undefined) {
      throw new TokenCodecError(
        'TOKEN_KEY_ID_COLLISION',
        `key ring entries ${holder.entry} and ${entry} are different keys with the same key id ` +
          `${formatKeyId(keys.keyId)}; replace one of them`,
      );
    }
    byId.set(keys.keyId, { keys, entry });
    material.add(secret);
  });
  byId.delete(active.keyId);
  return {
    active,
    verifyOnly: new Map([...byId].map(([id, { keys }]) => [id, keys])),
    activeMaterial: ring.active,
    verifyOnlyMaterial: material,
  };
}

/** True when `ring` holds exactly the keys `keys` was derived from (order and repeats aside). */
export function ringHolds(keys: RingKeys, ring: TokenKeyRing): boolean {
  if (ring.active !== keys.activeMaterial) return false;
  const other = new Set(ring.verifyOnly);
  other.delete(ring.active);
  if (other.size !== keys.verifyOnlyMaterial.size) return false;
  for (const secret of other) if (!keys.verifyOnlyMaterial.has(secret)) return false;
  return true;
}

function checkMaterial(secret: unknown, entry: string): void {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TokenCodecError(
      'TOKEN_SECRET_EMPTY',
      `key ring entry ${entry}: the token secret must be a non-empty string`,
    );
  }
}

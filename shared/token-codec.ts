// Bearer tokens: XChaCha20 encryption then a keyed-BLAKE3 MAC over everything before the tag.
// The byte layout, the key contexts and the reasons for the verification order are in
// docs/token-format.md; keep that page and this file in step.
import { randomFillSync, timingSafeEqual } from 'node:crypto';
import { xchacha20 } from '@noble/ciphers/chacha.js';
import { decodeBase64UrlInto, decodedLength, encodeBase64Url } from './base64url.js';
import { TokenCodecError } from './token-codec-error.js';
import {
  deriveRingKeys,
  formatKeyId,
  type RingKeys,
  ringHolds,
  type TokenKeyRing,
} from './token-key-ring.js';
import { deriveKey, keyedHashInto, type TokenKeys } from './token-keys.js';
import { usernameProblem } from './username.js';

/** The format version written in the first byte of every token. */
export const TOKEN_VERSION = 1;
/** Longest username a token can carry, in UTF-8 bytes (shared/username.ts). */
export { MAX_USERNAME_BYTES } from './username.js';
/** Longest token string `verify` looks at; anything longer is rejected before decoding. */
export const MAX_TOKEN_LENGTH = 512;

const KEY_ID_OFFSET = 1;
const NONCE_OFFSET = 5;
const NONCE_BYTES = 24;
const CIPHERTEXT_OFFSET = NONCE_OFFSET + NONCE_BYTES;
const JTI_BYTES = 16;
// 128-bit tag: a forger must guess it online, one request per guess, so 2^-128 per try is far
// beyond reach, and 16 bytes fewer keep tokens shorter in every header and cookie.
const TAG_BYTES = 16;
// Claims: iat u64 | exp u64 | jti 16 | username length u8 | username.
const CLAIMS_FIXED_BYTES = 8 + 8 + JTI_BYTES + 1;
const ENVELOPE_BYTES = CIPHERTEXT_OFFSET + TAG_BYTES;
const MIN_TOKEN_BYTES = ENVELOPE_BYTES + CLAIMS_FIXED_BYTES + 1;
const MAX_TOKEN_BYTES = decodedLength(MAX_TOKEN_LENGTH);
/** Shortest well-formed token string (one-byte username). */
export const MIN_TOKEN_LENGTH = Math.ceil((MIN_TOKEN_BYTES * 4) / 3);

/** What a token asserts. `jti` is 16 random bytes, unique per token. */
export interface TokenClaims {
  sub: string;
  iat: number;
  exp: number;
  jti: Uint8Array;
  /** The id of the key that issued the token (from its header): its token id is keyed by it. */
  keyId: number;
}

/** Why a token was refused; `expired` is only ever reported for an authentic token. */
export type VerifyFailure = 'malformed' | 'bad_version' | 'unknown_key' | 'bad_mac' | 'expired';

/** The outcome of `TokenCodec.verify`. */
export type VerifyResult = { ok: true; claims: TokenClaims } | { ok: false; reason: VerifyFailure };

export { TokenCodecError, type TokenCodecErrorCode } from './token-codec-error.js';
export { formatKeyId, type TokenKeyRing } from './token-key-ring.js';

// Failures are shared frozen objects so that rejecting garbage allocates nothing.
const failure = (reason: VerifyFailure): VerifyResult => Object.freeze({ ok: false, reason });
const MALFORMED = failure('malformed');
const BAD_VERSION = failure('bad_version');
const UNKNOWN_KEY = failure('unknown_key');
const BAD_MAC = failure('bad_mac');
const EXPIRED = failure('expired');

// Views into the verify scratch buffer for one token size.
interface Sections {
  readonly authenticated: Uint8Array;
  readonly body: Uint8Array;
  readonly tagOffset: number;
}

/**
 * Issues tokens under the active key of a key ring and verifies them under whichever key of the
 * ring their key id names (docs/token-format.md, Rotation). Build one per thread that needs it:
 * verify works in per-instance scratch buffers (safe because it is synchronous).
 */
export class TokenCodec {
  /** The active key's id: first 4 bytes of its key-id derivation, big-endian; in every token. */
  readonly keyId: number;
  readonly #ring: RingKeys;
  // The active key set, looked at first: a ring of one costs one comparison, as before rings.
  readonly #keys: TokenKeys;
  readonly #verifyOnly: ReadonlyMap<number, TokenKeys>;
  // Scratch for verify. Typed-array views cost more to create than the bytes they frame (they
  // showed up at 10% of a verify profile), so every view is made once: fixed ones here, and
  // those whose length follows the token size once per size, in #sections.
  readonly #raw = new Uint8Array(MAX_TOKEN_BYTES);
  readonly #rawView = new DataView(this.#raw.buffer);
  readonly #rawBuffer = Buffer.from(this.#raw.buffer);
  readonly #nonce = new Uint8Array(NONCE_BYTES);
  readonly #tag = new Uint8Array(TAG_BYTES);
  readonly #expectedTag = new Uint8Array(TAG_BYTES);
  readonly #sections: (Sections | undefined)[] = [];
  readonly #id = new Uint8Array(16);
  readonly #random = new Uint8Array(NONCE_BYTES + JTI_BYTES);
  // derivedKey's results, by key id and context: a handful (the ring times the purposes).
  readonly #derived = new Map<string, Uint8Array>();

  /**
   * A codec over `ring`, or over a single secret (a ring of one). Throws TokenCodecError
   * TOKEN_SECRET_EMPTY or TOKEN_KEY_ID_COLLISION (shared/token-key-ring.ts); repeated material
   * counts once.
   */
  constructor(ring: TokenKeyRing | string) {
    this.#ring = deriveRingKeys(typeof ring === 'string' ? { active: ring, verifyOnly: [] } : ring);
    this.#keys = this.#ring.active;
    this.#verifyOnly = this.#ring.verifyOnly;
    this.keyId = this.#keys.keyId;
  }

  /**
   * A 32-byte key for another purpose (BLAKE3 derive_key under `context`) bound to the ring key
   * `keyId`, derived once per codec; undefined when the ring does not hold `keyId`. Every node
   * holding that key derives the same one, so what it protects (the CSRF tokens of a session,
   * worker/csrf-token.ts) holds across nodes and rotations, like the token ids.
   */
  derivedKey(keyId: number, context: string): Uint8Array | undefined {
    const cacheKey = `${keyId}:${context}`;
    const known = this.#derived.get(cacheKey);
    if (known !== undefined) return known;
    const keys = keyId === this.keyId ? this.#keys : this.#verifyOnly.get(keyId);
    if (keys === undefined) return undefined;
    const key = deriveKey(context, keys.material, 32);
    this.#derived.set(cacheKey, key);
    return key;
  }

  /** Every key id this codec verifies, the active one first. */
  get keyIds(): number[] {
    return [this.keyId, ...this.#verifyOnly.keys()];
  }

  /** True when `ring` holds the same key material as this codec's (order and repeats aside). */
  holds(ring: TokenKeyRing): boolean {
    return ringHolds(this.#ring, ring);
  }

  /** Issues a token for `username`, valid from `nowSeconds` until `nowSeconds + ttlSeconds`. */
  issue(
    username: string,
    ttlSeconds: number,
    nowSeconds: number,
  ): { token: string; claims: TokenClaims } {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
      throw new TokenCodecError('TOKEN_TIME_INVALID', 'ttlSeconds must be a positive integer');
    }
    const random = randomFillSync(this.#random);
    return this.#seal(
      username,
      nowSeconds,
      nowSeconds + ttlSeconds,
      random.slice(NONCE_BYTES),
      random.subarray(0, NONCE_BYTES),
    );
  }

  /**
   * Issues a token from caller-chosen randomness. For test vectors only: reusing a nonce under
   * the same secret reveals the XOR of two plaintexts, so production code calls `issue`.
   */
  issueDeterministic(
    username: string,
    iat: number,
    exp: number,
    jti: Uint8Array,
    nonce: Uint8Array,
  ): { token: string; claims: TokenClaims } {
    if (jti.length !== JTI_BYTES || nonce.length !== NONCE_BYTES) {
      throw new TokenCodecError('TOKEN_RANDOM_INVALID', 'jti must be 16 bytes and nonce 24 bytes');
    }
    return this.#seal(username, iat, exp, Uint8Array.from(jti), nonce);
  }

  /**
   * Checks a token in a fixed order: size, base64url, header, MAC (constant time), then decrypt,
   * parse and expiry. A token is valid while `nowSeconds < exp`. Never throws.
   */
  verify(token: string, nowSeconds: number): VerifyResult {
    if (
      typeof token !== 'string' ||
      token.length < MIN_TOKEN_LENGTH ||
      token.length > MAX_TOKEN_LENGTH
    ) {
      return MALFORMED;
    }
    const raw = this.#raw;
    const size = decodeBase64UrlInto(token, raw);
    if (size < 0) return MALFORMED;
    if (raw[0] !== TOKEN_VERSION) return BAD_VERSION;
    const keyId = this.#rawView.getUint32(KEY_ID_OFFSET);
    const keys = keyId === this.keyId ? this.#keys : this.#verifyOnly.get(keyId);
    if (keys === undefined) return UNKNOWN_KEY;
    const sections = this.#sectionsFor(size);
    keyedHashInto(keys.macKey, sections.authenticated, this.#expectedTag);
    const tag = this.#tag;
    for (let i = 0; i < TAG_BYTES; i++) tag[i] = raw[sections.tagOffset + i]!;
    if (!timingSafeEqual(this.#expectedTag, tag)) return BAD_MAC;
    const nonce = this.#nonce;
    for (let i = 0; i < NONCE_BYTES; i++) nonce[i] = raw[NONCE_OFFSET + i]!;
    xchacha20(keys.encryptionKey, nonce, sections.body, sections.body);
    const claims = this.#parseClaims(size, keyId);
    if (claims === null) return MALFORMED;
    // Written so that a NaN clock fails closed.
    if (!(nowSeconds < claims.exp)) return EXPIRED;
    return { ok: true, claims };
  }

  /**
   * A public handle for a token (stats, revocation): keyed BLAKE3 of its jti under the token id
   * key of the key that issued it (`claims.keyId`), 16 bytes, base64url (22 characters). So it
   * is the same on every node and after every rotation that still holds that key, and
   * unlinkable to the token without the key. Throws TokenCodecError TOKEN_KEY_UNKNOWN when the
   * ring does not hold `claims.keyId`.
   */
  tokenId(claims: TokenClaims): string {
    const keys = claims.keyId === this.keyId ? this.#keys : this.#verifyOnly.get(claims.keyId);
    if (keys === undefined) {
      throw new TokenCodecError(
        'TOKEN_KEY_UNKNOWN',
        `key id ${formatKeyId(claims.keyId)} is not in the key ring`,
      );
    }
    keyedHashInto(keys.tokenIdKey, claims.jti, this.#id);
    return encodeBase64Url(this.#id);
  }

  #seal(
    username: string,
    iat: number,
    exp: number,
    jti: Uint8Array,
    nonce: Uint8Array,
  ): { token: string; claims: TokenClaims } {
    const name = encodeUsername(username);
    checkTimes(iat, exp);
    const size = ENVELOPE_BYTES + CLAIMS_FIXED_BYTES + name.length;
    const raw = new Uint8Array(size);
    const view = new DataView(raw.buffer);
    raw[0] = TOKEN_VERSION;
    view.setUint32(KEY_ID_OFFSET, this.keyId);
    raw.set(nonce, NONCE_OFFSET);
    writeUint64(view, CIPHERTEXT_OFFSET, iat);
    writeUint64(view, CIPHERTEXT_OFFSET + 8, exp);
    raw.set(jti, CIPHERTEXT_OFFSET + 16);
    raw[CIPHERTEXT_OFFSET + 32] = name.length;
    raw.set(name, CIPHERTEXT_OFFSET + CLAIMS_FIXED_BYTES);
    const macEnd = size - TAG_BYTES;
    const body = raw.subarray(CIPHERTEXT_OFFSET, macEnd);
    xchacha20(this.#keys.encryptionKey, nonce, body, body);
    keyedHashInto(this.#keys.macKey, raw.subarray(0, macEnd), raw.subarray(macEnd));
    return {
      token: encodeBase64Url(raw),
      claims: { sub: username, iat, exp, jti, keyId: this.keyId },
    };
  }

  #sectionsFor(size: number): Sections {
    let sections = this.#sections[size];
    if (sections === undefined) {
      const tagOffset = size - TAG_BYTES;
      sections = {
        authenticated: this.#raw.subarray(0, tagOffset),
        body: this.#raw.subarray(CIPHERTEXT_OFFSET, tagOffset),
        tagOffset,
      };
      this.#sections[size] = sections;
    }
    return sections;
  }

  // Runs only on MAC-authenticated, decrypted bytes, so a failure here means a bug or a leaked
  // key; still strict, so that no layout ambiguity can ever be relied on.
  #parseClaims(size: number, keyId: number): TokenClaims | null {
    const view = this.#rawView;
    const iat = readUint64(view, CIPHERTEXT_OFFSET);
    const exp = readUint64(view, CIPHERTEXT_OFFSET + 8);
    const nameOffset = CIPHERTEXT_OFFSET + CLAIMS_FIXED_BYTES;
    const nameLength = this.#raw[nameOffset - 1]!;
    if (iat < 0 || exp <= iat || nameLength === 0 || size !== nameOffset + nameLength + TAG_BYTES) {
      return null;
    }
    const sub = this.#rawBuffer.toString('utf8', nameOffset, nameOffset + nameLength);
    const jtiOffset = CIPHERTEXT_OFFSET + 16;
    return { sub, iat, exp, jti: this.#raw.slice(jtiOffset, jtiOffset + JTI_BYTES), keyId };
  }
}

function encodeUsername(username: string): Uint8Array {
  const problem = usernameProblem(username);
  if (problem !== undefined) {
    throw new TokenCodecError('TOKEN_USERNAME_INVALID', `username ${problem}`);
  }
  return Buffer.from(username, 'utf8');
}

function checkTimes(iat: number, exp: number): void {
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp) || iat < 0 || exp <= iat) {
    throw new TokenCodecError(
      'TOKEN_TIME_INVALID',
      'iat and exp must be safe integers with 0 <= iat < exp',
    );
  }
}

function writeUint64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

// -1 for values past Number.MAX_SAFE_INTEGER (2^53 - 1), which issue never writes.
function readUint64(view: DataView, offset: number): number {
  const high = view.getUint32(offset);
  if (high > 0x1f_ffff) return -1;
  return high * 0x1_0000_0000 + view.getUint32(offset + 4);
}

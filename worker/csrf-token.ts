/*
 * CSRF tokens of session-cookie mode (README "CSRF"): synchronizer tokens in the sense of the
 * OWASP CSRF Prevention Cheat Sheet, made stateless. A token is bound to one session (the id of
 * the gateway token it was minted for), carries its expiry and a random nonce, and is
 * authenticated with a keyed BLAKE3 MAC under a key derived from the ring key that issued the
 * session's token, so every edge of a node (and every node sharing that key) verifies it
 * without shared state. Single use, when configured, is the supervisor's record of spent nonces (the CSRF step asks it).
 *
 * Wire form: base64url of 33 bytes, 44 characters:
 *   version (1 byte, 1) | exp (4 bytes, unix seconds, big-endian) | nonce (12 random bytes) |
 *   mac (16 bytes) = BLAKE3-keyed(key, tokenId || version | exp | nonce), truncated.
 */

import { randomFillSync, timingSafeEqual } from 'node:crypto';
import type { TokenCodec } from '../shared/token-codec.js';
import { deriveKey, keyedHashInto } from '../shared/token-keys.js';

const VERSION = 1;
const HEAD = 1 + 4 + 12;
const MAC = 16;
const SIZE = HEAD + MAC;
/** Length of a token's text form. */
export const CSRF_TOKEN_LENGTH = Math.ceil((SIZE * 4) / 3);
const TEXT = /^[A-Za-z0-9_-]{44}$/;
/** BLAKE3 derive_key context of the CSRF MAC key: changing it invalidates every CSRF token. */
export const CSRF_KEY_CONTEXT = 'ProxyAuth 2026 csrf token v1';

/** Why a token was refused (for the log; clients only see CSRF_INVALID). */
export type CsrfRefusal = 'malformed' | 'forged' | 'expired';

export type CsrfCheck =
  | { readonly ok: true; readonly nonce: string; readonly exp: number }
  | { readonly ok: false; readonly reason: CsrfRefusal };

/*
 * Nonces come from a block of random bytes fetched at once: one randomFillSync call has a fixed
 * cost of about 25 µs on the development VM whatever its size (12 bytes: 21-33 µs; 4 KiB: under
 * 1 µs per 12 bytes, measured), and every page with a placeholder mints a token. The bytes are
 * the same CSPRNG output; each is used once.
 */
const NONCE = 12;
const NONCE_BLOCK = NONCE * 341;
let nonces = Buffer.alloc(0);
let nonceAt = 0;

function takeNonce(into: Buffer, at: number): void {
  if (nonceAt + NONCE > nonces.length) {
    nonces = randomFillSync(Buffer.allocUnsafe(NONCE_BLOCK));
    nonceAt = 0;
  }
  nonces.copy(into, at, nonceAt, nonceAt + NONCE);
  nonceAt += NONCE;
}

/** Mints and verifies the CSRF tokens of one key (32 bytes, see csrfTokensFor). */
export class CsrfTokens {
  readonly #key: Uint8Array;

  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /**
   * The CsrfTokens of the sessions issued under the ring key of material `secret` (a node on
   * config.json's `secret` alone): what csrfTokensFor gives for that key. For tools and tests
   * that mint tokens as a node would.
   */
  static ofSecret(secret: string): CsrfTokens {
    return new CsrfTokens(deriveKey(CSRF_KEY_CONTEXT, Buffer.from(secret, 'utf8'), 32));
  }

  /** A new token for the session `tokenId`, valid `ttlSeconds` from `nowSeconds`. */
  mint(tokenId: string, nowSeconds: number, ttlSeconds: number): string {
    const bytes = Buffer.allocUnsafe(SIZE);
    bytes[0] = VERSION;
    bytes.writeUInt32BE(nowSeconds + ttlSeconds, 1);
    takeNonce(bytes, 5);
    this.#mac(tokenId, bytes.subarray(0, HEAD), bytes.subarray(HEAD));
    return bytes.toString('base64url');
  }

  /**
   * Checks `text` for the session `tokenId` at `nowSeconds`: its MAC (compared in constant
   * time; a token minted for another session, or under another secret, fails as `forged`) and
   * its expiry. The nonce identifies the token for single use.
   */
  verify(text: string, tokenId: string, nowSeconds: number): CsrfCheck {
    if (!TEXT.test(text)) return { ok: false, reason: 'malformed' };
    const bytes = Buffer.from(text, 'base64url');
    if (bytes.length !== SIZE || bytes[0] !== VERSION) return { ok: false, reason: 'malformed' };
    const expected = Buffer.allocUnsafe(MAC);
    this.#mac(tokenId, bytes.subarray(0, HEAD), expected);
    if (!timingSafeEqual(expected, bytes.subarray(HEAD))) {
      return { ok: false, reason: 'forged' };
    }
    const exp = bytes.readUInt32BE(1);
    if (!(nowSeconds < exp)) return { ok: false, reason: 'expired' };
    return { ok: true, nonce: bytes.subarray(5, HEAD).toString('base64url'), exp };
  }

  #mac(tokenId: string, head: Uint8Array, out: Uint8Array): void {
    const id = Buffer.from(tokenId, 'utf8');
    const data = Buffer.allocUnsafe(2 + id.length + head.length);
    data.writeUInt16BE(id.length, 0);
    id.copy(data, 2);
    data.set(head, 2 + id.length);
    keyedHashInto(this.#key, data, out);
  }
}

const byCodec = new WeakMap<TokenCodec, Map<number, CsrfTokens>>();

/**
 * The CsrfTokens of the sessions issued under ring key `keyId`: keyed by a key derived from that
 * key's material (CSRF_KEY_CONTEXT), so every edge and every node holding the key mints and
 * accepts the same tokens, across rotations too; for a ring of config.json's `secret` alone the
 * key is the one derived from `secret`. Undefined when the ring does not hold `keyId` (then no
 * session of it verifies either). Made once per codec and key.
 */
export function csrfTokensFor(codec: TokenCodec, keyId: number): CsrfTokens | undefined {
  let perKey = byCodec.get(codec);
  if (perKey === undefined) {
    perKey = new Map();
    byCodec.set(codec, perKey);
  }
  let tokens = perKey.get(keyId);
  if (tokens === undefined) {
    const key = codec.derivedKey(keyId, CSRF_KEY_CONTEXT);
    if (key === undefined) return undefined;
    tokens = new CsrfTokens(key);
    perKey.set(keyId, tokens);
  }
  return tokens;
}

// The BLAKE3 layer under the token codec: subkey derivation and the keyed hash used as the MAC.
//
// blake3-wasm 2.1.5 in Node loads its WebAssembly build (dist/wasm/nodejs); the package ships no
// native addon. Its convenience functions are unfit here: `keyedHash` and `deriveKey` never free
// the hasher they allocate inside the WebAssembly heap (measured: 200k calls grew it by 385 MB,
// and the heap cannot shrink), and `createKeyed` builds a stream.Transform per call. So this file
// talks to the wasm-bindgen layer directly and frees every hasher it creates.
import { create_derive, create_keyed } from 'blake3-wasm/dist/wasm/nodejs/blake3_js.js';

/**
 * BLAKE3 derive_key contexts, one per purpose. Changing any of them changes every token and
 * token id: they are part of the format (docs/token-format.md).
 */
export const KEY_CONTEXTS = {
  encryption: 'ProxyAuth 2026 token encryption v1',
  mac: 'ProxyAuth 2026 token mac v1',
  tokenId: 'ProxyAuth 2026 token id v1',
  keyId: 'ProxyAuth 2026 token key id v1',
} as const;

/** The keys one secret yields. */
export interface TokenKeys {
  /** Names the secret inside tokens, so a key ring can pick the right keys after a rotation. */
  readonly keyId: number;
  readonly encryptionKey: Uint8Array;
  readonly macKey: Uint8Array;
  readonly tokenIdKey: Uint8Array;
  /**
   * The key material itself, for keys of other purposes bound to this key (the CSRF token key,
   * TokenCodec.derivedKey): whoever can verify this key's tokens can derive them too.
   */
  readonly material: Uint8Array;
}

/** Derives the token keys from a configuration secret (its UTF-8 bytes are the key material). */
export function deriveTokenKeys(secret: string): TokenKeys {
  const material = Buffer.from(secret, 'utf8');
  const keyIdBytes = deriveKey(KEY_CONTEXTS.keyId, material, 4);
  return {
    keyId: Buffer.from(keyIdBytes).readUInt32BE(0),
    encryptionKey: deriveKey(KEY_CONTEXTS.encryption, material, 32),
    macKey: deriveKey(KEY_CONTEXTS.mac, material, 32),
    tokenIdKey: deriveKey(KEY_CONTEXTS.tokenId, material, 32),
    material,
  };
}

/** BLAKE3 derive_key(context, material), `length` bytes of output. */
export function deriveKey(context: string, material: Uint8Array, length: number): Uint8Array {
  const hasher = create_derive(context);
  try {
    hasher.update(material);
    const out = new Uint8Array(length);
    hasher.digest(out);
    return out;
  } finally {
    hasher.free();
  }
}

/**
 * Keyed BLAKE3 of `data` under a 32-byte `key`, written to `out`. BLAKE3 is an XOF: a 16-byte
 * `out` receives the first 16 bytes of the full output, which is how the MAC is truncated.
 */
export function keyedHashInto(key: Uint8Array, data: Uint8Array, out: Uint8Array): void {
  const hasher = create_keyed(key);
  try {
    hasher.update(data);
    hasher.digest(out);
  } finally {
    hasher.free();
  }
}

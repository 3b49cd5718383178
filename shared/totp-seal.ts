// TOTP secrets at rest: XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha, RFC 8439's AEAD with a
// 24-byte nonce) under a key derived from config.json's `secret`. A random 24-byte nonce per
// record is safe at any number of records (192 bits: no birthday bound in reach). The
// associated data binds the record to its user and its parameters: a record copied to another
// user, or whose algorithm, digits, period or date were edited, fails to open.
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { CodedError } from './coded-error.js';
import { deriveKey } from './token-keys.js';
import type { TotpAlgorithm, TotpSecret } from './totp.js';

/** BLAKE3 derive_key context of the TOTP key: part of the store's format, never change it. */
export const TOTP_KEY_CONTEXT = 'ProxyAuth 2026 totp secret v1';

const NONCE_BYTES = 24;
/** Poly1305 tag. */
const TAG_BYTES = 16;
/** Largest TOTP key sealed: 640 bits, the longest base32 secret config.json accepts. */
const MAX_SECRET_BYTES = 80;

/**
 * A sealed secret as the store keeps it and IPC carries it. `nonce` (24 bytes) and `box`
 * (ciphertext then tag) are base64url; `createdAt` is unix seconds. The nonce also names the
 * record: the last accepted time step is kept per (user, nonce), see shared/store-totp.ts.
 */
export interface SealedTotp {
  nonce: string;
  box: string;
  algorithm: TotpAlgorithm;
  digits: number;
  period: number;
  createdAt: number;
}

/** A sealed secret that does not open: wrong key (config `secret` changed), moved or edited. */
export class TotpSealError extends CodedError<'TOTP_SEAL_INVALID'> {}

/** The 32-byte sealing key of a config `secret` (its UTF-8 bytes are the key material). */
export function deriveTotpKey(secret: string): Uint8Array {
  return deriveKey(TOTP_KEY_CONTEXT, Buffer.from(secret, 'utf8'), 32);
}

/** Encrypts `secret` for `user` under `key`, with a fresh random nonce. */
export function sealTotp(
  key: Uint8Array,
  user: string,
  secret: TotpSecret,
  createdAt: number,
): SealedTotp {
  if (secret.bytes.length === 0 || secret.bytes.length > MAX_SECRET_BYTES) {
    throw new RangeError(`a TOTP secret has 1 to ${MAX_SECRET_BYTES} bytes`);
  }
  const { algorithm, digits, period } = secret;
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  const aad = associatedData(user, { algorithm, digits, period, createdAt });
  const box = xchacha20poly1305(key, nonce, aad).encrypt(secret.bytes);
  return { nonce: b64(nonce), box: b64(box), algorithm, digits, period, createdAt };
}

/** Decrypts a sealed secret of `user`; TotpSealError when it does not open. */
export function openTotp(key: Uint8Array, user: string, sealed: SealedTotp): TotpSecret {
  const nonce = Buffer.from(sealed.nonce, 'base64url');
  const box = Buffer.from(sealed.box, 'base64url');
  if (nonce.length !== NONCE_BYTES || box.length <= TAG_BYTES) {
    throw new TotpSealError('TOTP_SEAL_INVALID', `the TOTP secret of ${user} is malformed`);
  }
  const { algorithm, digits, period, createdAt } = sealed;
  const aad = associatedData(user, { algorithm, digits, period, createdAt });
  let bytes: Uint8Array;
  try {
    bytes = xchacha20poly1305(key, nonce, aad).decrypt(box);
  } catch (err) {
    throw new TotpSealError(
      'TOTP_SEAL_INVALID',
      `the TOTP secret of ${user} does not open: config.json's secret changed since it was stored, or the record was altered`,
      { cause: err },
    );
  }
  return { bytes, algorithm, digits, period };
}

// One unambiguous encoding (JSON of an array: strings quoted and escaped), with a version label.
function associatedData(user: string, p: Omit<SealedTotp, 'nonce' | 'box'>): Uint8Array {
  const text = JSON.stringify(['totp v1', user, p.algorithm, p.digits, p.period, p.createdAt]);
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

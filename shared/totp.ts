// TOTP (RFC 6238) over otpauth's HOTP (RFC 4226): code generation, the skew window with
// constant-time comparison, base32 secrets (RFC 4648) and the otpauth:// URI that
// authenticator apps scan (Google's Key Uri Format, which the original also wrote).
//
// otpauth's own TOTP.validate is not used: it compares with crypto.timingSafeEqual but throws
// on a code whose UTF-8 length differs from its character count, stops at the first match (its
// timing says which step matched) and returns one delta where replay protection wants every
// step the code matches. matchingSteps() generates the window's codes and compares each.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';

/** The HMAC of a TOTP secret; RFC 6238 allows SHA1, SHA256 and SHA512. */
export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

/** A TOTP secret and its parameters. */
export interface TotpSecret {
  /** The raw shared key (RFC 4226 "K"). */
  readonly bytes: Uint8Array;
  readonly algorithm: TotpAlgorithm;
  /** Code length, 6 to 8. */
  readonly digits: number;
  /** Time step in seconds (RFC 6238 "X"). */
  readonly period: number;
}

/**
 * New enrolments: SHA1, 6 digits, 30 s, 20 random bytes (160 bits, RFC 4226's recommended key
 * length). SHA1 because every authenticator app computes it, while several ignore
 * `algorithm=SHA512` in the URI and silently show SHA1 codes, which would never match. HMAC-SHA1
 * is not weakened by SHA1's collisions (RFC 6238 section 5.1 rests on HMAC's strength).
 */
export const NEW_SECRET = { algorithm: 'SHA1', digits: 6, period: 30, bytes: 20 } as const;

/** The original's parameters, used for a plaintext `users[].totp` secret in config.json. */
export const ORIGINAL_PARAMS = { algorithm: 'SHA512', digits: 6, period: 30 } as const;

/** Steps accepted on each side of the current one (RFC 6238 section 5.2 recommends one). */
export const SKEW_STEPS = 1;

/** The issuer shown by authenticator apps, in the label and in `issuer=`. */
export const TOTP_ISSUER = 'ProxyAuth';

/** Base32 secrets in config.json: at least 80 bits (what Google Authenticator accepts), at most 640. */
export const BASE32_MIN_CHARS = 16;
export const BASE32_MAX_CHARS = 128;

/** A fresh secret with the NEW_SECRET parameters. */
export function newTotpSecret(): TotpSecret {
  const { algorithm, digits, period, bytes } = NEW_SECRET;
  return { bytes: new Uint8Array(randomBytes(bytes)), algorithm, digits, period };
}

/** The RFC 6238 time step of `nowMs` (unix milliseconds) for a `period` in seconds. */
export function totpStep(nowMs: number, period: number): number {
  return Math.floor(nowMs / 1000 / period);
}

/** The code of `secret` at time step `step`. */
export function totpCodeAt(secret: TotpSecret, step: number): string {
  return HOTP.generate({
    secret: new Secret({ buffer: copyBuffer(secret.bytes) }),
    algorithm: secret.algorithm,
    digits: secret.digits,
    counter: step,
  });
}

/**
 * The time steps within ±`skew` of `nowMs` whose code equals `code`, ascending (usually none or
 * one; two only when the secret's codes collide). A `code` that is not exactly `digits` ASCII
 * digits matches nothing. Every code of the window is generated and compared in constant time
 * (crypto.timingSafeEqual over equal-length buffers), with no early exit.
 */
export function matchingSteps(
  secret: TotpSecret,
  code: string,
  nowMs: number,
  skew = SKEW_STEPS,
): number[] {
  if (code.length !== secret.digits || !/^[0-9]+$/.test(code)) return [];
  const given = Buffer.from(code, 'latin1');
  const now = totpStep(nowMs, secret.period);
  const steps: number[] = [];
  for (let step = now - skew; step <= now + skew; step++) {
    if (step < 0) continue;
    const expected = Buffer.from(totpCodeAt(secret, step), 'latin1');
    if (timingSafeEqual(given, expected)) steps.push(step);
  }
  return steps;
}

/** `otpauth://totp/ProxyAuth:<user>?issuer=ProxyAuth&secret=...&algorithm=...&digits=...&period=...` */
export function otpauthUri(user: string, secret: TotpSecret): string {
  return new TOTP({
    issuer: TOTP_ISSUER,
    label: user,
    secret: new Secret({ buffer: copyBuffer(secret.bytes) }),
    algorithm: secret.algorithm,
    digits: secret.digits,
    period: secret.period,
  }).toString();
}

/** The secret's key in base32 (RFC 4648, upper case, no padding): what apps let users type. */
export function base32Of(secret: TotpSecret): string {
  return new Secret({ buffer: copyBuffer(secret.bytes) }).base32;
}

/**
 * Why `text` is not a usable base32 secret (RFC 4648 alphabet, either case, optional `=`
 * padding, BASE32_MIN_CHARS to BASE32_MAX_CHARS characters of data), or undefined when it is.
 */
export function base32Problem(text: string): string | undefined {
  const match = /^([A-Za-z2-7]*)(=*)$/.exec(text);
  if (match === null) return 'a base32 secret holds only the letters A-Z and the digits 2-7';
  const data = match[1]!.length;
  const padding = match[2]!.length;
  if (data < BASE32_MIN_CHARS || data > BASE32_MAX_CHARS) {
    return `a base32 secret must have ${BASE32_MIN_CHARS} to ${BASE32_MAX_CHARS} characters (80 to 640 bits), this one has ${data}`;
  }
  // Lengths that no whole number of bytes encodes to (RFC 4648 section 6).
  if ([1, 3, 6].includes(data % 8) || (padding > 0 && (data + padding) % 8 !== 0)) {
    return 'the length of this base32 secret is not one that whole bytes encode to';
  }
  return undefined;
}

/** A base32 secret (checked with base32Problem first) with the given parameters. */
export function secretFromBase32(
  text: string,
  params: Omit<TotpSecret, 'bytes'> = ORIGINAL_PARAMS,
): TotpSecret {
  return { bytes: Secret.fromBase32(text).bytes, ...params };
}

// otpauth's Secret takes an ArrayBuffer and keeps it: hand it a copy of exactly the key's bytes.
function copyBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}

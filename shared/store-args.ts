// Argument checks of the store's public methods. A bad argument is the caller's bug: it throws
// a TypeError/RangeError (a rejection for the async writes) before any transaction starts.
import { parseIpEntry } from './ip-match.js';
import type { LoginBan, LoginBanKind, TokenRecord } from './store-types.js';
import type { SyncRecord } from './sync-record.js';

// Keys are ordered-binary encoded, where NUL separates the elements of an array key; the bound
// keeps [user, iat, tokenId] well under LMDB's 1978-byte key limit even in 3-byte characters.
const MAX_KEY_CHARS = 256;

/** Throws unless `value` is a non-empty string of at most 256 characters without NUL. */
export function checkKey(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_CHARS) {
    throw new TypeError(`${name} must be a string of 1 to ${MAX_KEY_CHARS} characters`);
  }
  if (value.includes('\0')) throw new TypeError(`${name} must not contain NUL`);
}

/** Throws unless `r` is a well-formed sync record (shared/sync-record.ts). */
export function checkSyncRecord(r: SyncRecord): void {
  if (r.kind !== 'token' && r.kind !== 'user') throw new TypeError('kind must be token or user');
  checkKey('subject', r.subject);
  for (const field of ['revokedAt', 'liftedAt', 'until', 'notBefore', 'expiresAt'] as const) {
    checkCount(field, r[field]);
  }
  if (typeof r.origin !== 'string') throw new TypeError('origin must be a string');
}

/** Throws unless `value` is a finite number (a unix time in seconds). */
export function checkTime(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a finite number of seconds, got ${String(value)}`);
  }
}

/** Throws unless `value` is a non-negative safe integer. */
export function checkCount(name: string, value: unknown): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(value)}`);
  }
}

/** Throws unless `value` is a positive safe integer (a page size). */
export function checkLimit(value: unknown): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new RangeError(`limit must be a positive integer, got ${String(value)}`);
  }
}

/** Throws unless `record` is a well-formed token record. */
export function checkRecord(record: TokenRecord): void {
  checkKey('tokenId', record.tokenId);
  checkKey('user', record.user);
  checkTime('iat', record.iat);
  checkTime('exp', record.exp);
}

/** Throws unless `kind` is a login ban kind ('user' or 'ip'). */
export function checkBanKind(kind: unknown): asserts kind is LoginBanKind {
  if (kind !== 'user' && kind !== 'ip') {
    throw new TypeError(`kind must be 'user' or 'ip', got ${String(kind)}`);
  }
}

/** Throws unless `ban` is a well-formed login ban; an ip subject must be an address or CIDR. */
export function checkBan(ban: LoginBan): void {
  checkBanKind(ban.kind);
  checkKey('subject', ban.subject);
  if (ban.kind === 'ip') checkIpText('subject', ban.subject);
  checkTime('until', ban.until);
  checkTime('bannedAt', ban.bannedAt);
  checkCount('failures', ban.failures);
}

/** Throws unless `value` is an IP address or CIDR (parseIpEntry's syntax). */
export function checkIpText(name: string, value: string): void {
  try {
    parseIpEntry(value);
  } catch (err) {
    throw new TypeError(`${name} must be an IP address or CIDR: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

// The store's layout as the tests expect it, written out by hand (not read from the code), so
// that a schema change that forgets a database or a version bump fails the store tests.

/** Databases of schema version 1. */
export const V1_DATABASES = [
  'meta',
  'tokens',
  'tokens-by-user',
  'tokens-by-expiry',
  'token-uses',
  'revoked-tokens',
  'revoked-tokens-by-expiry',
  'revoked-users',
  'revoked-users-by-expiry',
] as const;

/** The schema version the code writes. */
export const CURRENT_SCHEMA = 6;

/** Every database of the current schema, sorted. */
export const CURRENT_DATABASES = [
  ...V1_DATABASES,
  'login-bans',
  'login-bans-by-expiry',
  'csrf-nonces',
  'csrf-nonces-by-expiry',
  'totp-secrets',
  'totp-steps',
  'key-ring',
  'sync-outbox',
  'sync-marks',
  'sync-marks-by-expiry',
].sort();

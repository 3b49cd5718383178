import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';

/** Lifetime of the runner's JWT: longer than any bench run. */
export const BENCH_JWT_LIFETIME_SEC = 3600;

/**
 * A fresh HS256 secret for one run, shared by the runner and the JWT peers: 32 random bytes as
 * base64url (43 characters, none that needs quoting in haproxy.cfg). RFC 7518 §3.2 asks for a
 * key at least as long as the hash output (32 bytes for SHA-256); the peers use its UTF-8 bytes.
 */
export function newJwtSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Claims of a minted token; `expiresAt` is in Unix seconds. */
export interface JwtClaims {
  readonly subject: string;
  readonly expiresAt: number;
}

/** An HS256 JWT (RFC 7519) over `claims`, signed with the UTF-8 bytes of `secret`. */
export function mintJwt(secret: string, claims: JwtClaims): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.subject)
    .setIssuedAt()
    .setExpirationTime(claims.expiresAt)
    .sign(new TextEncoder().encode(secret));
}

/** The runner's token for `subject`: HS256, expiring in {@link BENCH_JWT_LIFETIME_SEC}. */
export function mintBenchJwt(secret: string, subject: string): Promise<string> {
  const expiresAt = Math.floor(Date.now() / 1000) + BENCH_JWT_LIFETIME_SEC;
  return mintJwt(secret, { subject, expiresAt });
}

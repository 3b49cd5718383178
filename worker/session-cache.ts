import { LruCache } from '../shared/lru-cache.js';
import type { TokenCodec } from '../shared/token-codec.js';

/** A verified token, as cached: the expiry is still checked on every hit. */
export interface Session {
  readonly user: string;
  /** Issued at and expiry, unix seconds. */
  readonly iat: number;
  readonly exp: number;
  /** The token's public id (TokenCodec.tokenId): revocations and stats name it. */
  readonly tokenId: string;
  /** Id of the ring key that issued the token (its CSRF tokens are keyed under it). */
  readonly keyId: number;
  /**
   * The revocation set's epoch at which this token was last found not revoked (0: never).
   * Written by the credential step only.
   */
  cleanAt: number;
}

interface Entry extends Session {
  /** The codec that verified it: an entry verified under another key ring is never used. */
  readonly codec: TokenCodec;
}

/** Verified tokens kept per edge; bounded because keys come from clients. */
const DEFAULT_ENTRIES = 50_000;

/**
 * The edge's cache of verified tokens, a long-lived service that outlives config reloads (a
 * reload that keeps the key ring keeps the codec, worker/runtime.ts, and so every cached
 * session). Entries remember the codec that verified them, so after a change of the key ring a
 * token is verified again under the new ring before it is used: a token whose key left the ring
 * is refused from the first request on the new runtime, cached or not. Revocation is not its business: the
 * credential step asks the revocation set, which every cached entry meets on every request.
 */
export class SessionCache {
  readonly #entries: LruCache<string, Entry>;
  /** Running totals since start, read by the edge's metrics (worker/edge-metrics.ts). */
  readonly lookups = { hits: 0, misses: 0 };

  constructor(maxEntries = DEFAULT_ENTRIES) {
    this.#entries = new LruCache(maxEntries);
  }

  /**
   * The session a bearer token opens under `codec` at `nowSeconds`, or undefined: malformed,
   * bad MAC, another key, or expired. A miss costs one full verification and the token id
   * (~15 µs), a hit a map lookup.
   */
  authenticate(codec: TokenCodec, token: string, nowSeconds: number): Session | undefined {
    let entry = this.#entries.get(token);
    if (entry === undefined || entry.codec !== codec) {
      this.lookups.misses++;
      const result = codec.verify(token, nowSeconds);
      if (!result.ok) {
        // A stale entry of another ring that no longer verifies is of no use to anyone.
        if (entry !== undefined) this.#entries.delete(token);
        return undefined;
      }
      const { claims } = result;
      entry = {
        user: claims.sub,
        iat: claims.iat,
        exp: claims.exp,
        tokenId: codec.tokenId(claims),
        keyId: claims.keyId,
        cleanAt: 0,
        codec,
      };
      this.#entries.set(token, entry);
    } else this.lookups.hits++;
    // Written so that a NaN clock fails closed.
    if (!(nowSeconds < entry.exp)) {
      this.#entries.delete(token);
      return undefined;
    }
    return entry;
  }
}

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

/**
 * A cached entry and the whole token it was verified from: it serves only a request that presents
 * exactly that token. Kept beside the session, not in it: a session travels (logs, stats, tunnels).
 */
interface Cached {
  readonly token: string;
  readonly entry: Entry;
}

/** Verified tokens kept per edge; bounded because keys come from clients. */
const DEFAULT_ENTRIES = 50_000;

/**
 * Characters at the end of a token that key the cache: inside its 128-bit MAC tag
 * (docs/token-format.md), so 92 to 96 bits no one can choose without the key (the last
 * character holds 2, 4 or 6 bits of the tag, as the token's byte length is 1, 2 or 0 modulo 3:
 * a 5-letter username gives 83 bytes, 94 bits). Keying by the whole
 * token made V8 hash every request's fresh ~150-character string, ~600 instructions (callgrind);
 * 16 characters cost a sixth of that, and the entry's token is then compared whole.
 */
const KEY_CHARS = 16;

/** The cache key of `token`: its last KEY_CHARS characters (all of a shorter one). */
function keyOf(token: string): string {
  return token.length > KEY_CHARS ? token.slice(token.length - KEY_CHARS) : token;
}

/**
 * The edge's cache of verified tokens, a long-lived service that outlives config reloads (a
 * reload that keeps the key ring keeps the codec, worker/runtime.ts, and so every cached
 * session). Entries remember the codec that verified them, so after a change of the key ring a
 * token is verified again under the new ring before it is used: a token whose key left the ring
 * is refused from the first request on the new runtime, cached or not. Revocation is not its business: the
 * credential step asks the revocation set, which every cached entry meets on every request.
 */
export class SessionCache {
  readonly #entries: LruCache<string, Cached>;
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
    const key = keyOf(token);
    const cached = this.#entries.get(key);
    // Another token with the same last characters (forged, or astronomically unlikely) is a
    // miss that leaves the entry alone: it belongs to whoever presented that token.
    const mine = cached !== undefined && cached.token === token;
    let entry = mine ? cached.entry : undefined;
    if (entry === undefined || entry.codec !== codec) {
      this.lookups.misses++;
      const result = codec.verify(token, nowSeconds);
      if (!result.ok) {
        // A stale entry of another ring that no longer verifies is of no use to anyone.
        if (mine) this.#entries.delete(key);
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
      this.#entries.set(key, { token, entry });
    } else this.lookups.hits++;
    // Written so that a NaN clock fails closed.
    if (!(nowSeconds < entry.exp)) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }
}

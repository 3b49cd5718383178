import type { CryptoPool } from '../crypto-pool/pool.js';
import type { AccessLog } from '../shared/access-log.js';
import type { Logger } from '../shared/log.js';
import type { SessionCache } from './session-cache.js';
import type { UpstreamPools } from './upstream-pools.js';

/**
 * The long-lived services of one edge process. They outlive config reloads: a new config
 * generation (runtime.ts) is compiled against them and swapped in, they stay. Revocations,
 * limiter state and metrics join them in later work.
 */
export interface EdgeServices {
  /** Argon2 threads with a bounded queue. */
  readonly crypto: CryptoPool;
  /** The batched per-request access log. */
  readonly accessLog: AccessLog;
  /** Operational log of this edge. */
  readonly log: Logger;
  /** Verified bearer tokens. */
  readonly sessions: SessionCache;
  /** Upstream keep-alive pools by origin, reused across reloads. */
  readonly pools: UpstreamPools;
}

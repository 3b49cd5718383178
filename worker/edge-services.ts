import type { CryptoPool } from '../crypto-pool/pool.js';
import type { AccessLog } from '../shared/access-log.js';
import type { Logger } from '../shared/log.js';
import type { Store } from '../shared/store.js';
import type { EdgeMetrics } from './edge-metrics.js';
import type { ReadinessProbe } from './health-endpoints.js';
import type { RateLimiter } from './rate-limiter.js';
import type { RevocationSet } from './revocation-set.js';
import type { SessionCache } from './session-cache.js';
import type { SupervisorLink } from './supervisor-link.js';
import type { TokenUseCounter } from './token-use-counter.js';
import type { UpstreamPools } from './upstream-pools.js';

/**
 * The long-lived services of one edge process. They outlive config reloads: a new config
 * generation (runtime.ts) is compiled against them and swapped in, they stay.
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
  /** The node's revocations in RAM, kept in step with the store by the supervisor. */
  readonly revocations: RevocationSet;
  /** Per-token use counts (`stats: true`), flushed to the supervisor. */
  readonly uses: TokenUseCounter;
  /** Events and asks to the supervisor. */
  readonly supervisor: SupervisorLink;
  /** Rate-limit leases granted by the supervisor. */
  readonly limiter: RateLimiter;
  /** The node's store, opened read-only (the supervisor writes it). */
  readonly store: Store;
  /**
   * Request counts for the node's metrics, set at start when the supervisor listens for them
   * (config `metrics` at the supervisor's start); undefined: nothing is counted.
   */
  metrics: EdgeMetrics | undefined;
  /** The node's readiness as the supervisor sees it, for `/readyz` on the main port. */
  readonly readiness: ReadinessProbe;
}

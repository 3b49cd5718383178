/*
 * The long-lived services `proxyauth explain` compiles its runtime against: the edge's own
 * classes (token cache, revocation set loaded from the store, crypto pool), except where a
 * live request would change the node's state. The rate limiter admits without spending and
 * records what it was asked; the supervisor link answers a single-use CSRF spend as fresh
 * without spending it; the log keeps its lines for the report. Nothing is sent anywhere.
 */

import type { Config } from '../conf/config-schema.js';
import { CryptoPool } from '../crypto-pool/pool.js';
import { AccessLog } from '../shared/access-log.js';
import type { KeyRingSnapshot } from '../shared/ipc.js';
import type { LogFields, Logger } from '../shared/log.js';
import { keyState, type Store } from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';
import type { EdgeServices } from './edge-services.js';
import { ReadinessProbe } from './health-endpoints.js';
import { type ClientKind, type LimitPolicy, RateLimiter } from './rate-limiter.js';
import { RevocationSet } from './revocation-set.js';
import { SessionCache } from './session-cache.js';
import { SupervisorLink } from './supervisor-link.js';
import { TokenUseCounter } from './token-use-counter.js';
import { UpstreamPools } from './upstream-pools.js';
import type { Exchange } from './uws-io.js';

/** A line the edge's code logged while explaining. */
export interface LoggedLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly fields: LogFields | undefined;
}

/** A Logger that keeps its lines. */
export class RecordingLogger implements Logger {
  readonly lines: LoggedLine[] = [];

  debug(msg: string, fields?: LogFields): void {
    this.lines.push({ level: 'debug', msg, fields });
  }
  info(msg: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', msg, fields });
  }
  warn(msg: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', msg, fields });
  }
  error(msg: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', msg, fields });
  }
}

/** A limiter that admits every request without spending, and records what it was asked. */
export class NonSpendingLimiter extends RateLimiter {
  readonly asked: { policy: LimitPolicy; client: string }[] = [];

  override admit(policy: LimitPolicy, kind: ClientKind, name: string, _ex: Exchange): undefined {
    this.asked.push({ policy, client: `${kind}:${name}` });
    return undefined;
  }
}

/** The services, and what explain reads back from them. */
export interface ExplainServices {
  readonly services: EdgeServices;
  readonly log: RecordingLogger;
  readonly limiter: NonSpendingLimiter;
  /** Single-use CSRF spends the link answered (as fresh, without spending). */
  readonly csrfSpends: { count: number };
  /** Stops the crypto threads. */
  close(): Promise<void>;
}

/**
 * Builds the services over `store` (opened read-only). `nowSeconds`: the revocations in force
 * at that time are loaded, as an edge loads them at its start.
 */
export function explainServices(store: Store, nowSeconds: number): ExplainServices {
  const log = new RecordingLogger();
  const csrfSpends = { count: 0 };
  const link: SupervisorLink = new SupervisorLink((message) => {
    if (message.type !== 'csrf-spend') return false;
    csrfSpends.count++;
    queueMicrotask(() => link.settle({ type: 'answer', id: message.id, value: { fresh: true } }));
    return true;
  });
  const revocations = new RevocationSet();
  revocations.load(store.revocationsInForce(nowSeconds));
  const limiter = new NonSpendingLimiter(link, log);
  const crypto = new CryptoPool({ threads: 1, maxQueue: 64 });
  const services: EdgeServices = {
    crypto,
    accessLog: new AccessLog(1, process.pid, false),
    log,
    sessions: new SessionCache(),
    pools: new UpstreamPools(),
    revocations,
    uses: new TokenUseCounter(() => {}),
    // Gateway endpoints are recorded, never run, by explain: the probe is never asked.
    readiness: new ReadinessProbe(async () => false),
    supervisor: link,
    limiter,
    store,
    metrics: undefined,
  };
  return {
    services,
    log,
    limiter,
    csrfSpends,
    close: async () => {
      await crypto.close();
      await services.pools.destroyAll();
    },
  };
}

/**
 * The key ring the node's edges use, read without writing: the store's active and verify-only
 * keys, with config.json's `secret` as the active key when the ring does not hold its key id
 * yet (the next start or reload makes it so: supervisor/key-ring.ts), the previous active key
 * then verifying.
 */
export function keyRingInForce(store: Store, config: Config, nowSeconds: number): KeyRingSnapshot {
  const entries = store.keyRing();
  const configKeyId = deriveTokenKeys(config.secret).keyId;
  const known = entries.some((k) => k.keyId === configKeyId);
  let active: string | undefined;
  const verifyOnly: string[] = [];
  for (const key of entries) {
    const state = keyState(key, nowSeconds);
    if (state === 'active') active = key.secret;
    if (state === 'verify-only') verifyOnly.push(key.secret);
  }
  if (!known || active === undefined) {
    if (active !== undefined) verifyOnly.push(active);
    return { active: config.secret, verifyOnly };
  }
  return { active, verifyOnly };
}

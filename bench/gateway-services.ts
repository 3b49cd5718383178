// The gateway services with features on: what each turns on, and its number of edges.

import { BENCH_BODY_FILTERS, BENCH_HEAD_FILTERS, type GatewayFeatures } from './gateway.js';
import {
  BENCH_CORS_ORIGIN,
  BENCH_HIGH_LIMIT,
  BENCH_REFUSING_LIMIT,
  BENCH_REVOCATIONS,
  ONE_EDGE_INSTANCES,
  type ServiceName,
} from './scenarios.js';

/** A gateway service the runner starts from this table. */
export interface FeaturedGateway {
  readonly service: ServiceName &
    (
      | 'gateway-stats'
      | 'gateway-ratelimit'
      | 'gateway-refusing'
      | 'gateway-filters'
      | 'gateway-filters-body'
      | 'gateway-cors'
      | 'gateway-csrf'
      | 'gateway-metrics'
      | 'gateway-features-on'
      | 'gateway-one-edge'
      | 'gateway-login'
      | 'gateway-forward-auth'
    );
  readonly features: GatewayFeatures;
  /** `num_instances`; default the runner's processes per proxy (2). */
  readonly instances?: number;
}

/**
 * The gateway services besides the plain one, the baseline and the balanced one (which needs a
 * second upstream), in start order.
 */
export const FEATURED_GATEWAYS: readonly FeaturedGateway[] = Object.freeze([
  { service: 'gateway-stats', features: { stats: true, revocations: BENCH_REVOCATIONS } },
  { service: 'gateway-ratelimit', features: { ratelimitProxy: BENCH_HIGH_LIMIT } },
  {
    service: 'gateway-refusing',
    features: { ratelimitProxy: BENCH_REFUSING_LIMIT, spendFirst: true },
  },
  { service: 'gateway-filters', features: { filters: BENCH_HEAD_FILTERS } },
  { service: 'gateway-filters-body', features: { filters: BENCH_BODY_FILTERS } },
  { service: 'gateway-cors', features: { corsOrigins: [BENCH_CORS_ORIGIN] } },
  { service: 'gateway-csrf', features: { sessionCookie: true } },
  { service: 'gateway-metrics', features: { metrics: true } },
  // Issue 13: "with rate limiting, stats and metrics all on: within 10% of the plain scenario".
  {
    service: 'gateway-features-on',
    features: { ratelimitProxy: BENCH_HIGH_LIMIT, stats: true, metrics: true },
  },
  // The one exception to the processes per proxy, on purpose: 1 edge against 2.
  { service: 'gateway-one-edge', features: {}, instances: ONE_EDGE_INSTANCES },
  { service: 'gateway-login', features: { ratelimitAuth: BENCH_HIGH_LIMIT } },
  // The load tool runs on loopback: it is the trusted proxy asking.
  { service: 'gateway-forward-auth', features: { trustedProxies: ['127.0.0.1'] } },
] satisfies FeaturedGateway[]);

import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { argon2Cost } from '../conf/argon2-hash.js';
import type { Config } from '../conf/config-schema.js';
import { isArgon2Hash } from '../conf/is-argon2-hash.js';
import { parseConfig } from '../conf/parse.js';
import type { RouteConfig } from '../conf/routes-schema.js';
import type { HashParams } from '../crypto-pool/task-types.js';
import { compileIpMatcher } from '../shared/ip-match.js';
import type { ConfigSnapshot } from '../shared/ipc.js';
import { parseTarget } from '../shared/target-url.js';
import { TokenCodec } from '../shared/token-codec.js';
import { type AdminAccess, adminAccess } from './admin-endpoints.js';
import { routeProfile } from './connection-profile.js';
import type { EdgeServices } from './edge-services.js';
import { compileEndpoints, type Endpoint } from './endpoints.js';
import type { ResponseBodyTransform } from './pipeline.js';
import { compileRoutePipeline, type Handler, type RouteFeature, type Step } from './pipeline.js';
import { forward } from './proxy-handler.js';
import { ROUTE_FEATURES } from './route-features.js';
import { compileRouteTable, type RouteTable } from './route-table.js';
import {
  compileDropList,
  type DropList,
  encodeIdentity,
  type UpstreamIdentity,
} from './upstream-headers.js';
import { type ConnectionProfile, type PoolOptions, poolKey } from './upstream-pools.js';

export interface UserEntry {
  readonly name: string;
  readonly hash: string;
  readonly identity: UpstreamIdentity;
  readonly allows: ((ip: string) => boolean) | undefined;
  /** The user's rate-limit client key (`u:<name>`), built once. */
  readonly limitKey: string;
}

export interface CompiledRoute {
  readonly prefix: string;
  readonly config: RouteConfig;
  readonly origin: string;
  readonly targetPath: string;
  readonly targetQuery: string;
  readonly pool: Dispatcher;
  readonly poolOptions: PoolOptions;
  /** Proxy and TLS settings of the route's connections; undefined: direct, Node's defaults. */
  readonly profile: ConnectionProfile | undefined;
  /** The route's pipeline (pipeline.ts), then its handler. */
  readonly steps: readonly Step[];
  readonly transform: (() => ResponseBodyTransform) | undefined;
  readonly handler: Handler;
}

/** How a config generation is compiled; tests may add features. */
export interface RuntimeOptions {
  readonly features?: readonly RouteFeature[];
}

/**
 * Everything an edge derives from one config generation. Requests capture the runtime they
 * started with, so a reload never changes the rules under a request in flight. Long-lived
 * state (token cache, pools, crypto threads) belongs to the edge's services, not here.
 */
export class Runtime {
  readonly config: Config;
  readonly routes: RouteTable<CompiledRoute>;
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  readonly users: ReadonlyMap<string, UserEntry>;
  readonly codec: TokenCodec;
  /** The {@link poolKey}s of the routes' pools (the origin for direct default connections). */
  readonly origins: ReadonlySet<string>;
  readonly dropHeaders: DropList;
  readonly proto: 'http' | 'https';
  readonly dummyHash: string;
  /** The admin API's token digest and address list; undefined when token_admin is empty. */
  readonly admin: AdminAccess | undefined;
  /** `trusted_proxies`, compiled; undefined when empty (the client is then always the peer). */
  readonly trustedProxies: ((ip: string) => boolean) | undefined;
  /** `m,t,p` of the dummy hash, so a reload with the same parameters reuses it. */
  readonly dummyParams: string | undefined;

  private constructor(init: {
    config: Config;
    routes: CompiledRoute[];
    users: Map<string, UserEntry>;
    codec: TokenCodec;
    dummyHash: string;
    dummyParams: string | undefined;
  }) {
    this.config = init.config;
    this.routes = compileRouteTable(init.routes);
    this.endpoints = compileEndpoints(init.config);
    this.users = init.users;
    this.codec = init.codec;
    this.origins = new Set(init.routes.map((r) => poolKey(r.origin, r.profile)));
    this.dropHeaders = compileDropList(init.config.drop_request_headers);
    this.proto = init.config.tls ? 'https' : 'http';
    this.dummyHash = init.dummyHash;
    this.dummyParams = init.dummyParams;
    const trusted = init.config.trusted_proxies;
    this.trustedProxies = trusted.length > 0 ? compileIpMatcher(trusted) : undefined;
    const allow = init.config.admin_allow;
    this.admin = adminAccess(
      init.config.token_admin,
      allow.length > 0 ? compileIpMatcher(allow) : undefined,
    );
  }

  /** Validates a snapshot with the same parser as the supervisor and compiles it. */
  static async build(
    snapshot: ConfigSnapshot,
    services: EdgeServices,
    previous?: Runtime,
    options: RuntimeOptions = {},
  ): Promise<Runtime> {
    const { config, routes } = parseConfig(
      snapshot.raw.config,
      snapshot.raw.routes,
      snapshot.files,
    );
    const users = compileUsers(config);
    const dummyParams = dominantParams(users);
    const dummyHash =
      previous && previous.dummyParams === dummyParams
        ? previous.dummyHash
        : await services.crypto.hashPassword(
            randomBytes(18).toString('base64url'),
            toHashParams(dummyParams),
          );
    // The same secret keeps the same codec, so the session cache's entries stay valid.
    const codec =
      previous && previous.config.secret === config.secret
        ? previous.codec
        : new TokenCodec(config.secret);
    const poolOptions: PoolOptions = {
      maxConnections: config.max_idle_per_host,
      timeoutMs: config.client_timeout,
      keepAliveMaxMs: config.keep_alive * 1000,
    };
    const features = options.features ?? ROUTE_FEATURES;
    const compiled = routes.map((route) =>
      compileRoute(route, config, services, poolOptions, features, snapshot.routeFiles),
    );
    return new Runtime({ config, routes: compiled, users, codec, dummyHash, dummyParams });
  }
}

function compileUsers(config: Config): Map<string, UserEntry> {
  const users = new Map<string, UserEntry>();
  for (const u of config.users) {
    users.set(u.username, {
      name: u.username,
      hash: u.password,
      identity: { user: encodeIdentity(u.username), roles: u.roles.map(encodeIdentity).join(',') },
      allows: u.allow && u.allow.length > 0 ? compileIpMatcher(u.allow) : undefined,
      limitKey: `u:${u.username}`,
    });
  }
  return users;
}

function compileRoute(
  route: RouteConfig,
  config: Config,
  services: EdgeServices,
  poolOptions: PoolOptions,
  features: readonly RouteFeature[],
  files: ConfigSnapshot['routeFiles'],
): CompiledRoute {
  const target = parseTarget(route.target);
  const { steps, transform } = compileRoutePipeline(route, config, features);
  const profile = routeProfile(route, files);
  return {
    prefix: route.prefix,
    config: route,
    origin: target.origin,
    targetPath: target.path,
    targetQuery: target.query,
    pool: services.pools.get(target.origin, poolOptions, profile),
    poolOptions,
    profile,
    steps,
    transform,
    handler: forward,
  };
}

/*
 * The dummy hash that unknown usernames are verified against must cost what a real user's
 * verification costs, or timing tells which usernames exist: take the most common parameters,
 * read by the same parser that validated the hashes (conf/argon2-hash.ts).
 */
function dominantParams(users: ReadonlyMap<string, UserEntry>): string | undefined {
  const counts = new Map<string, number>();
  for (const { hash } of users.values()) {
    if (!isArgon2Hash(hash)) continue;
    const { memoryCost, timeCost, parallelism } = argon2Cost(hash);
    const key = `${memoryCost},${timeCost},${parallelism}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let best: string | undefined;
  for (const [k, n] of counts) if (best === undefined || n > (counts.get(best) ?? 0)) best = k;
  return best;
}

function toHashParams(key: string | undefined): HashParams | undefined {
  if (key === undefined) return undefined;
  const [memoryCost, timeCost, parallelism] = key.split(',').map(Number) as [
    number,
    number,
    number,
  ];
  return { memoryCost, timeCost, parallelism };
}

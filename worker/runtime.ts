import { randomBytes } from 'node:crypto';
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
import { secretFromBase32, type TotpSecret } from '../shared/totp.js';
import { deriveTotpKey } from '../shared/totp-seal.js';
import { type AdminAccess, adminAccess } from './admin-endpoints.js';
import { backendPool } from './backend-pool.js';
import { Backend, Balancer } from './balancer.js';
import { routeProfile } from './connection-profile.js';
import { type CorsPolicy, compileCors } from './cors.js';
import type { EdgeServices } from './edge-services.js';
import { compileEndpoints, type Endpoint } from './endpoints.js';
import { HealthChecker } from './health-check.js';
import {
  compileRoutePipeline,
  type Handler,
  type HeadEdit,
  type RouteFeature,
  type Step,
  type TransformFactory,
} from './pipeline.js';
import { forward } from './proxy-handler.js';
import { ROUTE_FEATURES } from './route-features.js';
import { compileRouteTable, normalizePrefix, type RouteTable } from './route-table.js';
import {
  compileDropList,
  type DropList,
  encodeIdentity,
  type UpstreamIdentity,
} from './upstream-headers.js';
import type { UpstreamPool } from './upstream-pools.js';
import { type ConnectionProfile, type PoolOptions, poolKey } from './upstream-pools.js';
import { proxyWebSocket, refuseWebSocket } from './websocket-proxy.js';

export interface UserEntry {
  readonly name: string;
  readonly hash: string;
  readonly identity: UpstreamIdentity;
  readonly allows: ((ip: string) => boolean) | undefined;
  /** The user's rate-limit client key (`u:<name>`), built once. */
  readonly limitKey: string;
  /**
   * `users[].totp`: `required` when not false (true, or a secret); `configSecret` is the
   * original's plaintext secret, used while the store holds none (worker/totp-login.ts).
   */
  readonly totp: { readonly required: boolean; readonly configSecret: TotpSecret | undefined };
}

export interface CompiledRoute {
  readonly prefix: string;
  readonly config: RouteConfig;
  readonly origin: string;
  readonly targetPath: string;
  readonly targetQuery: string;
  readonly pool: UpstreamPool;
  readonly poolOptions: PoolOptions;
  /** Proxy and TLS settings of the route's connections; undefined: direct, Node's defaults. */
  readonly profile: ConnectionProfile | undefined;
  /** Set when the route has `backends` or `health_check`: requests go where it picks. */
  readonly balancer: Balancer | undefined;
  /** The route's active health checks (`health_check`), started with the runtime. */
  readonly checker: HealthChecker | undefined;
  /** The route's pipeline (pipeline.ts), then its handler. */
  readonly steps: readonly Step[];
  readonly transform: TransformFactory | undefined;
  /** Edits of the route's upstream response heads (`cache: false`); undefined: none. */
  readonly headEdit?: HeadEdit | undefined;
  readonly handler: Handler;
  /** What ends a WebSocket handshake that passed the steps: proxied, or refused (`websocket: false`). */
  readonly upgrade: Handler;
}

/**
 * How a config generation is compiled; tests may add features. The edge passes none: the
 * options below exist for `proxyauth explain` (worker/explain.ts), which runs the same steps
 * and records where a request would go instead of sending it.
 */
export interface RuntimeOptions {
  readonly features?: readonly RouteFeature[];
  /** What ends a request that passed its route's steps; default `forward` (proxy-handler.ts). */
  readonly handler?: Handler;
  /** What ends a handshake on a route with `websocket: true`; default `proxyWebSocket`. */
  readonly upgrade?: Handler;
  /** Rewrites each compiled gateway endpoint (its handlers); default: as compiled. */
  readonly endpoint?: (endpoint: Endpoint) => Endpoint;
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
  /** Issues under `snapshot.keyRing`'s active key, verifies under any key of the ring. */
  readonly codec: TokenCodec;
  /** Seals and opens TOTP secrets in the store (shared/totp-seal.ts), derived from `secret`. */
  readonly totpKey: Uint8Array;
  /** The {@link poolKey}s of the routes' pools (the origin for direct default connections). */
  readonly origins: ReadonlySet<string>;
  readonly dropHeaders: DropList;
  readonly proto: 'http' | 'https';
  readonly dummyHash: string;
  /** The admin API's token digest and address list; undefined when token_admin is empty. */
  readonly admin: AdminAccess | undefined;
  /** `cors_origins`, compiled (cors.ts); undefined when empty (CORS off: nothing is added). */
  readonly cors: CorsPolicy | undefined;
  /** `trusted_proxies`, compiled; undefined when empty (the client is then always the peer). */
  readonly trustedProxies: ((ip: string) => boolean) | undefined;
  /** `m,t,p` of the dummy hash, so a reload with the same parameters reuses it. */
  readonly dummyParams: string | undefined;
  /**
   * Route prefixes (normalized) that end in a char above 0x7f: forward-auth refuses a URI that
   * may have lost such a tail (forward-auth.ts lostTail). Empty for most configs.
   */
  readonly nonAsciiEndings: readonly string[];
  readonly #compiled: readonly CompiledRoute[];

  private constructor(init: {
    config: Config;
    routes: CompiledRoute[];
    users: Map<string, UserEntry>;
    codec: TokenCodec;
    totpKey: Uint8Array;
    dummyHash: string;
    dummyParams: string | undefined;
    loginPage: string | undefined;
    endpoint: ((endpoint: Endpoint) => Endpoint) | undefined;
  }) {
    this.config = init.config;
    this.routes = compileRouteTable(init.routes);
    this.#compiled = init.routes;
    this.nonAsciiEndings = init.routes
      .map((r) => normalizePrefix(r.prefix) ?? '')
      .filter((p) => p.charCodeAt(p.length - 1) > 0x7f);
    const endpoints = compileEndpoints(init.config, init.loginPage, this.routes);
    const wrap = init.endpoint;
    this.endpoints =
      wrap === undefined
        ? endpoints
        : new Map([...endpoints].map(([path, e]) => [path, wrap(e)] as const));
    this.users = init.users;
    this.codec = init.codec;
    this.totpKey = init.totpKey;
    this.origins = new Set(
      init.routes.flatMap((r) =>
        [r.origin, ...(r.balancer?.members.map((m) => m.origin) ?? [])].map((origin) =>
          poolKey(origin, r.profile),
        ),
      ),
    );
    this.dropHeaders = compileDropList(init.config.drop_request_headers);
    this.proto = init.config.tls ? 'https' : 'http';
    this.dummyHash = init.dummyHash;
    this.dummyParams = init.dummyParams;
    this.cors = compileCors(init.config.cors_origins);
    const trusted = init.config.trusted_proxies;
    this.trustedProxies = trusted.length > 0 ? compileIpMatcher(trusted) : undefined;
    const allow = init.config.admin_allow;
    this.admin = adminAccess(
      init.config.token_admin,
      allow.length > 0 ? compileIpMatcher(allow) : undefined,
    );
  }

  /**
   * Starts the active health checks of the routes that have them: once this runtime serves
   * (never from `build`, so a config an edge rejects leaves no timer behind).
   */
  startHealthChecks(): void {
    for (const r of this.#compiled) r.checker?.start();
  }

  /** Stops them: when the runtime is swapped out or the edge drains. Idempotent. */
  stopHealthChecks(): void {
    for (const r of this.#compiled) r.checker?.stop();
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
    // The same key ring keeps the same codec, so the session cache's entries stay valid; a new
    // codec makes the cache verify each token again (session-cache.ts), so a key that left the
    // ring refuses its tokens from the first request on this runtime.
    const codec =
      previous?.codec.holds(snapshot.keyRing) === true
        ? previous.codec
        : new TokenCodec(snapshot.keyRing);
    const users = compileUsers(config);
    const dummyParams = dominantParams(users);
    const dummyHash =
      previous && previous.dummyParams === dummyParams
        ? previous.dummyHash
        : await services.crypto.hashPassword(
            randomBytes(18).toString('base64url'),
            toHashParams(dummyParams),
          );
    const totpKey =
      previous && previous.config.secret === config.secret
        ? previous.totpKey
        : deriveTotpKey(config.secret);
    const poolOptions: PoolOptions = {
      maxConnections: config.max_idle_per_host,
      timeoutMs: config.client_timeout,
      keepAliveMaxMs: config.keep_alive * 1000,
    };
    const compiled = routes.map((route) =>
      compileRoute(route, config, services, poolOptions, options, snapshot.routeFiles),
    );
    // Backend health follows the route and URL across reloads.
    if (previous) {
      const before = new Map(previous.#compiled.map((r) => [r.prefix, r.balancer]));
      for (const r of compiled) {
        const old = before.get(r.prefix);
        if (r.balancer && old) r.balancer.adopt(old);
      }
    }
    return new Runtime({
      config,
      routes: compiled,
      users,
      codec,
      totpKey,
      dummyHash,
      dummyParams,
      loginPage: snapshot.loginPage,
      endpoint: options.endpoint,
    });
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
      totp: {
        required: u.totp !== false,
        configSecret: typeof u.totp === 'string' ? secretFromBase32(u.totp) : undefined,
      },
    });
  }
  return users;
}

function compileRoute(
  route: RouteConfig,
  config: Config,
  services: EdgeServices,
  poolOptions: PoolOptions,
  options: RuntimeOptions,
  files: ConfigSnapshot['routeFiles'],
): CompiledRoute {
  const target = parseTarget(route.target);
  const features = options.features ?? ROUTE_FEATURES;
  const { steps, transform, headEdit } = compileRoutePipeline(route, config, features);
  const profile = routeProfile(route, files);
  const balancer = compileBalancer(route, services, poolOptions, profile);
  return {
    prefix: route.prefix,
    config: route,
    origin: target.origin,
    targetPath: target.path,
    targetQuery: target.query,
    pool: backendPool(services, profile, target.origin, poolOptions),
    poolOptions,
    profile,
    balancer,
    checker:
      balancer && route.health_check ? new HealthChecker(balancer, route.health_check) : undefined,
    steps,
    transform,
    headEdit,
    handler: options.handler ?? forward,
    upgrade: route.websocket ? (options.upgrade ?? proxyWebSocket) : refuseWebSocket,
  };
}

/**
 * The route's balancer, or undefined for a route with neither `backends` nor `health_check`
 * (its requests then go to `target` with nothing added on their path). Members: `target` with
 * weight 1 unless its URL is listed in `backends` (that entry's weight wins), then `backends`
 * in order; weight 0 leaves a backend out.
 */
function compileBalancer(
  route: RouteConfig,
  services: EdgeServices,
  poolOptions: PoolOptions,
  profile: ConnectionProfile | undefined,
): Balancer | undefined {
  if (route.backends.length === 0 && route.health_check === undefined) return undefined;
  const urlKey = (url: string) => {
    const t = parseTarget(url);
    return `${t.origin}${t.path}?${t.query}`;
  };
  const listed = new Set(route.backends.map((b) => urlKey(b.url)));
  const entries = listed.has(urlKey(route.target))
    ? route.backends
    : [{ url: route.target, weight: 1 }, ...route.backends];
  const members = entries
    .filter((b) => b.weight !== 0)
    .map((b) => {
      const t = parseTarget(b.url);
      return new Backend({
        origin: t.origin,
        targetPath: t.path,
        targetQuery: t.query,
        weight: b.weight,
        pool: backendPool(services, profile, t.origin, poolOptions),
      });
    });
  return new Balancer(members, services.log, route.prefix, route.health_check?.interval);
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

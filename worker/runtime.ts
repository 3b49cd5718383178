import { randomBytes } from 'node:crypto';
import type { Pool } from 'undici';
import type { Config } from '../conf/config-schema.js';
import { parseConfig } from '../conf/parse.js';
import type { RouteConfig } from '../conf/routes-schema.js';
import type { CryptoPool } from '../crypto-pool/pool.js';
import type { HashParams } from '../crypto-pool/task-types.js';
import { compileIpMatcher } from '../shared/ip-match.js';
import type { ConfigSnapshot } from '../shared/ipc.js';
import { LruCache } from '../shared/lru-cache.js';
import { parseTarget } from '../shared/target-url.js';
import { TokenCodec } from '../shared/token-codec.js';
import { compileRouteTable, type RouteTable } from './route-table.js';
import type { UpstreamIdentity } from './upstream-headers.js';
import type { PoolOptions, UpstreamPools } from './upstream-pools.js';

export interface UserEntry {
  readonly hash: string;
  readonly identity: UpstreamIdentity;
  readonly allows: ((ip: string) => boolean) | undefined;
}

export interface CompiledRoute {
  readonly prefix: string;
  readonly config: RouteConfig;
  readonly origin: string;
  readonly targetPath: string;
  readonly targetQuery: string;
  readonly pool: Pool;
  readonly usernames: ReadonlySet<string> | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly allowHeader: string;
}

/** A verified token, as cached: the expiry is still checked on every hit. */
export interface Session {
  readonly user: string;
  readonly exp: number;
}

/** Verified tokens kept per edge; bounded because keys come from clients. */
const TOKEN_CACHE_ENTRIES = 50_000;

/**
 * Everything an edge derives from one config generation. Requests capture the runtime they
 * started with, so a reload never changes the rules under a request in flight.
 */
export class Runtime {
  readonly config: Config;
  readonly routes: RouteTable<CompiledRoute>;
  readonly users: ReadonlyMap<string, UserEntry>;
  readonly codec: TokenCodec;
  readonly origins: ReadonlySet<string>;
  readonly dummyHash: string;
  /** `m,t,p` of the dummy hash, so a reload with the same parameters reuses it. */
  readonly dummyParams: string | undefined;
  readonly #sessions = new LruCache<string, Session>(TOKEN_CACHE_ENTRIES);

  private constructor(init: {
    config: Config;
    routes: CompiledRoute[];
    users: Map<string, UserEntry>;
    dummyHash: string;
    dummyParams: string | undefined;
  }) {
    this.config = init.config;
    this.routes = compileRouteTable(init.routes);
    this.users = init.users;
    this.codec = new TokenCodec(init.config.secret);
    this.origins = new Set(init.routes.map((r) => r.origin));
    this.dummyHash = init.dummyHash;
    this.dummyParams = init.dummyParams;
  }

  /** Validates a snapshot with the same parser as the supervisor and compiles it. */
  static async build(
    snapshot: ConfigSnapshot,
    pools: UpstreamPools,
    crypto: CryptoPool,
    previous?: Runtime,
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
        : await crypto.hashPassword(
            randomBytes(18).toString('base64url'),
            toHashParams(dummyParams),
          );
    const poolOptions: PoolOptions = {
      maxConnections: config.max_idle_per_host,
      timeoutMs: config.client_timeout,
      keepAliveMaxMs: config.keep_alive * 1000,
    };
    const compiled = routes.map((route) => compileRoute(route, pools, poolOptions));
    return new Runtime({
      config,
      routes: compiled,
      users,
      dummyHash,
      dummyParams,
    });
  }

  /** The session a bearer token opens, or undefined: bad MAC, expired, or unknown user. */
  authenticate(token: string, nowSeconds: number): Session | undefined {
    let session = this.#sessions.get(token);
    if (session === undefined) {
      const result = this.codec.verify(token, nowSeconds);
      if (!result.ok) return undefined;
      session = { user: result.claims.sub, exp: result.claims.exp };
      this.#sessions.set(token, session);
    }
    if (nowSeconds >= session.exp) {
      this.#sessions.delete(token);
      return undefined;
    }
    return session;
  }
}

function compileUsers(config: Config): Map<string, UserEntry> {
  const users = new Map<string, UserEntry>();
  for (const u of config.users) {
    users.set(u.username, {
      hash: u.password,
      identity: { user: u.username, rolesHeader: u.roles.join(',') },
      allows: u.allow && u.allow.length > 0 ? compileIpMatcher(u.allow) : undefined,
    });
  }
  return users;
}

function compileRoute(
  route: RouteConfig,
  pools: UpstreamPools,
  options: PoolOptions,
): CompiledRoute {
  const target = parseTarget(route.target);
  const methods =
    route.allow_methods && route.allow_methods.length > 0
      ? new Set(route.allow_methods)
      : undefined;
  return {
    prefix: route.prefix,
    config: route,
    origin: target.origin,
    targetPath: target.path,
    targetQuery: target.query,
    pool: pools.get(target.origin, options),
    usernames: route.username && route.username.length > 0 ? new Set(route.username) : undefined,
    methods,
    allowHeader: methods ? [...methods].join(', ') : '',
  };
}

/** `$argon2id$v=19$m=19456,t=2,p=1$...`: the parameter order varies between implementations. */
const PARAMS = /^\$argon2(?:id|i|d)\$v=\d+\$([^$]+)\$/;

function hashParamsKey(hash: string): string | undefined {
  const list = PARAMS.exec(hash)?.[1];
  if (!list) return undefined;
  const params = Object.fromEntries(list.split(',').map((kv) => kv.split('=')));
  const { m, t, p } = params as Record<string, string | undefined>;
  return m && t && p ? `${m},${t},${p}` : undefined;
}

/*
 * The dummy hash that unknown usernames are verified against must cost what a real user's
 * verification costs, or timing tells which usernames exist: take the most common parameters.
 */
function dominantParams(users: ReadonlyMap<string, UserEntry>): string | undefined {
  const counts = new Map<string, number>();
  for (const { hash } of users.values()) {
    const key = hashParamsKey(hash);
    if (key) counts.set(key, (counts.get(key) ?? 0) + 1);
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

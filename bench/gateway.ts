import { type StdioOptions, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { hashPassword } from '../crypto-pool/password.js';
import { openStore } from '../shared/store.js';
import { readReadiness } from '../supervisor/ready-signal.js';
import { CsrfTokens } from '../worker/csrf-token.js';
import { BenchError } from './bench-error.js';
import type { CleanupStack } from './cleanup-stack.js';
import { freePort } from './free-port.js';
import {
  describeExit,
  type ExitInfo,
  type ManagedProcess,
  spawnManaged,
} from './managed-process.js';
import { GATEWAY_PREFIX } from './scenarios.js';
import type { Service } from './service.js';
import { waitForHttp } from './wait-for-http.js';

/** The user every gateway scenario logs in as; its role is the only one the route allows. */
export const BENCH_USER = 'bench';

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 10_000;

/** Settings of the generated config.json. */
export interface GatewayConfigParams {
  readonly port: number;
  readonly passwordHash: string;
  readonly instances: number;
  /** `stats: true` in config.json. */
  readonly stats?: boolean;
  /** `ratelimit_proxy` in config.json. */
  readonly ratelimitProxy?: RateLimitBlock;
  /** `ratelimit_auth` in config.json. */
  readonly ratelimitAuth?: RateLimitBlock | undefined;
  /** `cors_origins` in config.json. */
  readonly corsOrigins?: readonly string[];
  /** `session_cookie: true` (csrf_token keeps its default, true). */
  readonly sessionCookie?: boolean;
  /** `trusted_proxies`. */
  readonly trustedProxies?: readonly string[] | undefined;
  /** The config's `secret`; random when not given. */
  readonly secret?: string;
  /** `metrics: {"listen": "127.0.0.1:<port>"}` in config.json. */
  readonly metricsPort?: number | undefined;
}

/** A config.json rate-limit block. */
export interface RateLimitBlock {
  readonly requests_per_second: number;
  readonly burst: number;
  readonly block_delay: number;
}

/** What a feature service turns on (the plain `gateway` service turns on nothing). */
export interface GatewayFeatures {
  stats?: boolean;
  revocations?: number;
  ratelimitProxy?: RateLimitBlock;
  /** `ratelimit_auth` in config.json (the login service: no login refused). */
  ratelimitAuth?: RateLimitBlock;
  /** Send one request through the route after login (spends a rate limit's only token). */
  spendFirst?: boolean;
  /** The route balanced over these upstreams (`target` is the first, listed with its weight). */
  backends?: readonly { port: number; weight: number }[];
  /** `filters` lines of the route (routes.yml, indented under it). */
  filters?: readonly string[];
  /** `cors_origins` in config.json. */
  corsOrigins?: readonly string[];
  /** Session-cookie mode with CSRF checks; the service also carries cookie + CSRF headers. */
  sessionCookie?: boolean;
  /** The metrics listener on (config `metrics`, a free loopback port). */
  metrics?: boolean;
  /** `trusted_proxies` in config.json (forward-auth answers only them). */
  trustedProxies?: readonly string[];
  /**
   * Node flags put before the CLI path (`--profile`: `--cpu-prof ...`); the supervisor forks
   * its edges with its own execArgv, so they get them too.
   */
  nodeArgs?: readonly string[];
  /**
   * A command and its arguments the gateway's node runs under: the spawn becomes
   * `launcher[0] ...launcher[1..] <node> ...nodeArgs <cli> ...` (`--instructions`: valgrind
   * with its options). The tool sees the supervisor's exec of node; what it does to the edges
   * the supervisor forks is its own business (valgrind follows them with --trace-children).
   */
  launcher?: readonly string[];
  /** How long the start (readiness, first answer) may take, ms; default 20 s. */
  readyTimeoutMs?: number;
  /** SIGTERM to SIGKILL of the group when the gateway is stopped, ms; default 10 s. */
  stopGraceMs?: number;
}

/** The route's filters of the `gateway-filters` service: method and header, both pass. */
export const BENCH_HEAD_FILTERS: readonly string[] = [
  '    filters:',
  '      allow:',
  '        - field: method',
  '          pattern: ^(?:GET|HEAD)$',
  '        - field: header',
  '          name: ^X-Client$',
  '          pattern: ^bench-[0-9]+$',
];

/** The route's filters of the `gateway-filters-body` service: one body_json condition. */
export const BENCH_BODY_FILTERS: readonly string[] = [
  '    filters:',
  '      allow:',
  '        - field: body_json',
  '          key: status',
  '          pattern: ^active$',
];

/**
 * The config.json settings of a gateway service: `base` (port, hash, instances, secret, the
 * metrics port when `features.metrics`) with the config keys `features` turns on.
 */
export function gatewayConfigParams(
  features: GatewayFeatures,
  base: Pick<GatewayConfigParams, 'port' | 'passwordHash' | 'instances' | 'secret' | 'metricsPort'>,
): GatewayConfigParams {
  return {
    ...base,
    stats: features.stats,
    ratelimitProxy: features.ratelimitProxy,
    ratelimitAuth: features.ratelimitAuth,
    corsOrigins: features.corsOrigins,
    sessionCookie: features.sessionCookie,
    trustedProxies: features.trustedProxies,
  };
}

/**
 * config.json written before start, so the gateway skips first-run generation. One worker
 * thread per instance: on a small machine more threads only add contention with the load tool.
 */
export function renderGatewayConfig(p: GatewayConfigParams): string {
  const config = {
    secret: p.secret ?? randomBytes(72).toString('base64url'),
    token_admin: randomBytes(32).toString('hex'),
    host: '127.0.0.1',
    port: p.port,
    tls: false,
    worker: 1,
    num_instances: p.instances,
    timezone: 'UTC',
    ...(p.stats ? { stats: true } : {}),
    ...(p.ratelimitProxy ? { ratelimit_proxy: p.ratelimitProxy } : {}),
    ...(p.ratelimitAuth ? { ratelimit_auth: p.ratelimitAuth } : {}),
    ...(p.corsOrigins ? { cors_origins: p.corsOrigins } : {}),
    ...(p.sessionCookie ? { session_cookie: true } : {}),
    ...(p.trustedProxies ? { trusted_proxies: p.trustedProxies } : {}),
    ...(p.metricsPort === undefined ? {} : { metrics: { listen: `127.0.0.1:${p.metricsPort}` } }),
    users: [{ username: BENCH_USER, password: p.passwordHash, roles: [BENCH_USER] }],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * routes.yml with one secured route in front of the upstream; with `backends`, the route is
 * balanced over them (target's URL listed among them, so its weight is the one given);
 * `filters`: its `filters` lines.
 */
export function renderRoutesYml(
  upstreamPort: number,
  backends?: readonly { port: number; weight: number }[],
  filters: readonly string[] = [],
): string {
  const balanced =
    backends === undefined || backends.length === 0
      ? []
      : [
          '    backends:',
          ...backends.map(
            (b) => `      - { url: "http://127.0.0.1:${b.port}", weight: ${b.weight} }`,
          ),
        ];
  return [
    'routes:',
    `  - prefix: ${GATEWAY_PREFIX}`,
    `    target: http://127.0.0.1:${upstreamPort}`,
    '    secure: true',
    `    username: [${BENCH_USER}]`,
    ...balanced,
    ...filters,
    '',
  ].join('\n');
}

/**
 * Writes a config under `dir`, starts the gateway CLI, waits until it is ready and logs in.
 * A CLI that has `--ready-fd` starts on port 0 and reports its port and readiness on a pipe; an
 * older build (a `--baseline` checkout) gets a free port and is polled until `/auth` answers.
 * The returned service carries the bearer header. Output goes to `<dir>/gateway.log`, whose
 * tail is included in any start error.
 */
export async function startGateway(
  name:
    | 'gateway'
    | 'baseline'
    | 'gateway-stats'
    | 'gateway-ratelimit'
    | 'gateway-refusing'
    | 'gateway-balanced'
    | 'gateway-filters'
    | 'gateway-filters-body'
    | 'gateway-cors'
    | 'gateway-csrf'
    | 'gateway-metrics'
    | 'gateway-login'
    | 'gateway-forward-auth'
    | 'gateway-features-on'
    | 'gateway-one-edge',
  cliPath: string,
  dir: string,
  upstreamPort: number,
  instances: number,
  cleanup: CleanupStack,
  features: GatewayFeatures = {},
): Promise<Service> {
  const configDir = join(dir, 'config');
  const dataDir = join(dir, 'data');
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (features.revocations) await seedRevocations(dataDir, features.revocations);
  const password = randomBytes(18).toString('base64url');
  const readyFd = hasReadyFd(cliPath);
  const configuredPort = readyFd ? 0 : await freePort();
  const secret = randomBytes(72).toString('base64url');
  const passwordHash = await hashPassword(password);
  await writeGatewayFiles(
    configDir,
    gatewayConfigParams(features, {
      port: configuredPort,
      passwordHash,
      instances,
      secret,
      metricsPort: features.metrics ? await freePort() : undefined,
    }),
    upstreamPort,
    features.backends,
    features.filters,
  );

  const logPath = join(dir, 'gateway.log');
  const logFd = openSync(logPath, 'a');
  const args = [
    ...(features.nodeArgs ?? []),
    cliPath,
    '--config-dir',
    configDir,
    '--data-dir',
    dataDir,
  ];
  const [command, ...launcherArgs] = features.launcher ?? [];
  const spawn = (more: readonly string[], stdio: StdioOptions): ManagedProcess =>
    command === undefined
      ? spawnManaged(name, process.execPath, [...args, ...more], { stdio })
      : spawnManaged(name, command, [...launcherArgs, process.execPath, ...args, ...more], {
          stdio,
        });
  const readyTimeoutMs = features.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const proc = readyFd
    ? spawn(['--ready-fd', String(READY_FD)], ['ignore', logFd, logFd, 'pipe'])
    : spawn([], ['ignore', logFd, logFd]);
  closeSync(logFd);
  const stop = async (): Promise<ExitInfo> => {
    const wasRunning = proc.running;
    const info = await proc.stop(features.stopGraceMs ?? STOP_GRACE_MS);
    if (wasRunning && info.code !== 0)
      console.error(`notice: gateway did not exit cleanly on SIGTERM (${describeExit(info)})`);
    return info;
  };
  cleanup.add('stop gateway', async () => {
    await stop();
  });

  try {
    const login = { username: BENCH_USER, password };
    const port = readyFd
      ? await readyPort(proc.child.stdio[READY_FD] as Readable, readyTimeoutMs)
      : configuredPort;
    const baseUrl = `http://127.0.0.1:${port}`;
    if (!readyFd)
      await waitForHttp(`${baseUrl}/auth`, {
        ...jsonPost(login),
        timeoutMs: readyTimeoutMs,
        process: proc,
      });
    const { token, tokenId } = await logIn(baseUrl, login);
    if (features.spendFirst) {
      const res = await fetch(`${baseUrl}${GATEWAY_PREFIX}/`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await res.arrayBuffer();
    }
    return {
      name,
      baseUrl,
      authHeaders: { authorization: `Bearer ${token}` },
      ...(features.sessionCookie
        ? { cookieHeaders: cookieHeaders(baseUrl, token, tokenId, secret) }
        : {}),
      pid: proc.child.pid,
      logPath,
      login: { ...login, passwordHash },
      stop,
    };
  } catch (err) {
    const log = await tail(logPath, 20);
    throw new BenchError(
      'BENCH_GATEWAY_START',
      `${(err as Error).message}\n--- gateway.log (tail) ---\n${log}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * Writes `count` token revocations (random ids, in force for a day) into a new store in
 * `dataDir`, as many as a busy node might hold; none of them names the bench's own token.
 */
async function seedRevocations(dataDir: string, count: number): Promise<void> {
  const store = openStore(dataDir, { readOnly: false });
  const now = Math.floor(Date.now() / 1000);
  try {
    const writes: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      writes.push(
        store.revokeToken({
          tokenId: randomBytes(16).toString('base64url'),
          until: now + 86_400,
          revokedAt: now,
        }),
      );
    }
    await Promise.all(writes);
  } finally {
    await store.close();
  }
}

/** The fd the gateway's readiness line arrives on (index in the spawn's stdio). */
const READY_FD = 3;

/** Whether the CLI at `cliPath` knows `--ready-fd` (builds before it do not). */
function hasReadyFd(cliPath: string): boolean {
  const help = spawnSync(process.execPath, [cliPath, '--help'], {
    encoding: 'utf8',
    timeout: READY_TIMEOUT_MS,
  });
  return help.stdout?.includes('--ready-fd') ?? false;
}

/** The port from the readiness line; throws with the gateway's own reason when it failed. */
async function readyPort(stream: Readable, timeoutMs: number): Promise<number> {
  const readiness = await readReadiness(stream, timeoutMs);
  if (!readiness.ready)
    throw new BenchError(
      'BENCH_NOT_READY',
      `gateway not ready: ${readiness.code}: ${readiness.error}`,
    );
  return readiness.port;
}

async function writeGatewayFiles(
  configDir: string,
  params: GatewayConfigParams,
  upstreamPort: number,
  backends?: readonly { port: number; weight: number }[],
  filters?: readonly string[],
): Promise<void> {
  await writeFile(join(configDir, 'config.json'), renderGatewayConfig(params), { mode: 0o600 });
  await writeFile(join(configDir, 'routes.yml'), renderRoutesYml(upstreamPort, backends, filters), {
    mode: 0o600,
  });
}

function jsonPost(body: unknown): {
  method: string;
  headers: Record<string, string>;
  body: string;
} {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

/**
 * What a browser page of the gateway sends: the session cookie, a CSRF token minted for the
 * session with the gateway's secret (valid a day: longer than any bench), and its Origin.
 */
function cookieHeaders(
  baseUrl: string,
  token: string,
  tokenId: string,
  secret: string,
): Record<string, string> {
  const now = Math.floor(Date.now() / 1000);
  return {
    cookie: `session_token=${token}`,
    'x-csrf-token': CsrfTokens.ofSecret(secret).mint(tokenId, now, 86_400),
    origin: baseUrl,
  };
}

async function logIn(
  baseUrl: string,
  login: { username: string; password: string },
): Promise<{ token: string; tokenId: string }> {
  const res = await fetch(`${baseUrl}/auth`, jsonPost(login));
  const text = await res.text();
  if (res.status !== 200) {
    throw new BenchError('BENCH_LOGIN', `POST /auth answered ${res.status}: ${text.slice(0, 200)}`);
  }
  const { token, token_id: tokenId } = JSON.parse(text) as { token?: unknown; token_id?: unknown };
  if (typeof token !== 'string' || token.length === 0) {
    throw new BenchError(
      'BENCH_LOGIN',
      `POST /auth answered 200 without a token: ${text.slice(0, 200)}`,
    );
  }
  // Builds before token_id was answered leave it out: only the CSRF scenarios need it.
  return { token, tokenId: typeof tokenId === 'string' ? tokenId : '' };
}

async function tail(path: string, lines: number): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(unreadable: ${(err as Error).message})`;
  }
}

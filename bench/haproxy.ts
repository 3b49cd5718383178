import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError } from './bench-error.js';
import { captureOutput } from './capture-output.js';
import type { CleanupStack } from './cleanup-stack.js';
import { findExecutable } from './find-executable.js';
import { freePort } from './free-port.js';
import type { RateLimitBlock } from './gateway.js';
import { spawnManaged } from './managed-process.js';
import type { Service } from './service.js';
import { waitForHttp } from './wait-for-http.js';

/** The haproxy binary found on this machine. */
export interface HaproxyInstall {
  readonly path: string;
  /** e.g. `2.6.12-1+deb12u4` */
  readonly version: string;
  /** Whether this version has the JWT converters (`jwt_verify` and the rest came in 2.5). */
  readonly hasJwt: boolean;
}

/** Settings of the generated haproxy.cfg. */
export interface HaproxyConfParams {
  readonly port: number;
  readonly upstreamPort: number;
  readonly threads: number;
  /** The HS256 secret; written into the file, which is created 0600. */
  readonly jwtSecret: string;
  /** Requests per second and per source address past which HAProxy answers 429. */
  readonly requestsPerSecond: number;
}

/** Locates haproxy (PATH, then the usual sbin directories); undefined when not installed. */
export async function findHaproxy(): Promise<HaproxyInstall | undefined> {
  const path = findExecutable('haproxy', ['/usr/sbin', '/usr/local/sbin']);
  if (!path) return undefined;
  const { stdout, stderr } = await captureOutput(path, ['-v']);
  const version = /HA-?Proxy version (\S+)/i.exec(`${stdout}${stderr}`)?.[1] ?? 'unknown';
  return { path, version, hasJwt: versionAtLeast(version, 2, 5) };
}

/** Whether a version string such as `2.6.12-1+deb12u4` is at least `major.minor`. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/**
 * The per-source rate of the `haproxy-jwt` peer's stick table, from the gateway's high limit
 * (`gateway-ratelimit-high`): counted on every request, never reached during a run.
 */
export function haproxyRateFor(limit: RateLimitBlock): number {
  return limit.requests_per_second + limit.burst;
}

/**
 * haproxy.cfg for the JWT peer: HAProxy 2.5+ checks an HS256 JWT from `Authorization: Bearer`
 * (RFC 6750 §2.1) the way its documentation shows (`http_auth_bearer`, `jwt_header_query`,
 * `jwt_verify`, `jwt_payload_query`): the header's `alg` must be exactly HS256 (so `none` and
 * any other algorithm are refused before the signature is looked at, RFC 8725 §3.1), the
 * signature must verify with the secret, and `exp` (RFC 7519 §4.1.4) must be an integer after
 * `date()`. Anything else, a missing token included, is answered 401. A stick table keyed by
 * source address counts the request rate (`track-sc0 src`) and answers 429 past the limit,
 * before the token is checked, as the gateway's rate limit does. Keep-alive on both sides with
 * `http-reuse always`, so that upstream connections are pooled as nginx's `keepalive` does.
 * No stats, no chroot, no user switch, no log: it runs unprivileged and writes nothing.
 */
export function renderHaproxyCfg(p: HaproxyConfParams): string {
  return [
    'global',
    `  nbthread ${p.threads}`,
    // About two descriptors per connection: more than a non-root RLIMIT_NOFILE may allow.
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 5s',
    '  timeout client 120s',
    '  timeout server 120s',
    '  timeout http-keep-alive 120s',
    '  timeout http-request 10s',
    'frontend bench',
    `  bind 127.0.0.1:${p.port}`,
    '  stick-table type ip size 100k expire 60s store http_req_rate(1s)',
    '  http-request track-sc0 src',
    `  http-request deny deny_status 429 if { sc_http_req_rate(0) gt ${p.requestsPerSecond} }`,
    '  http-request set-var(txn.bearer) http_auth_bearer',
    "  http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('$.alg')",
    '  http-request deny deny_status 401 unless { var(txn.jwt_alg) -m str HS256 }',
    `  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify("HS256","${p.jwtSecret}") -m int 1 }`,
    "  http-request set-var(txn.jwt_exp) var(txn.bearer),jwt_payload_query('$.exp','int')",
    '  http-request set-var(txn.now) date',
    '  http-request deny deny_status 401 unless { var(txn.jwt_exp),sub(txn.now) gt 0 }',
    '  default_backend upstream',
    'backend upstream',
    '  http-reuse always',
    `  server up 127.0.0.1:${p.upstreamPort}`,
    '',
  ].join('\n');
}

/** Characters a secret may have to be written between double quotes in haproxy.cfg. */
const SAFE_SECRET = /^[A-Za-z0-9_-]{32,}$/;

/**
 * Writes haproxy.cfg (0600: it holds the secret) under `dir`, checks it with `haproxy -c`, then
 * starts haproxy in the foreground (`-db`) as a child. Throws `BENCH_HAPROXY` when the version
 * has no JWT converters, the secret cannot be quoted, or the config is refused.
 */
export async function startHaproxy(
  install: HaproxyInstall,
  dir: string,
  params: Omit<HaproxyConfParams, 'port'>,
  cleanup: CleanupStack,
): Promise<Service & { readonly port: number }> {
  if (!install.hasJwt) {
    throw new BenchError(
      'BENCH_HAPROXY',
      `HAProxy ${install.version} has no JWT converters (2.5+)`,
    );
  }
  if (!SAFE_SECRET.test(params.jwtSecret)) {
    throw new BenchError('BENCH_HAPROXY', 'the JWT secret must be 32+ base64url characters');
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(cfg, renderHaproxyCfg({ ...params, port }), { mode: 0o600 });
  const check = await captureOutput(install.path, ['-c', '-q', '-f', cfg]);
  if (check.code !== 0) {
    throw new BenchError(
      'BENCH_HAPROXY',
      `haproxy -c refused ${cfg}: ${check.stderr || check.stdout}`,
    );
  }
  const logPath = join(dir, 'haproxy.log');
  const logFd = openSync(logPath, 'a');
  const proc = spawnManaged('haproxy', install.path, ['-db', '-f', cfg], {
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  cleanup.add('stop haproxy', async () => {
    await proc.stop();
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${baseUrl}/`, { process: proc });
  } catch (err) {
    const log = await readFile(logPath, 'utf8').catch(() => '');
    throw new BenchError('BENCH_HAPROXY', `${(err as Error).message}: ${log.trim().slice(-500)}`, {
      cause: err,
    });
  }
  return { name: 'haproxy-jwt', baseUrl, pid: proc.child.pid, port };
}

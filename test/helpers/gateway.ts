import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { hashPassword } from '../../crypto-pool/password.js';
import { type Readiness, readReadiness } from '../../supervisor/ready-signal.js';

export const CLI = fileURLToPath(new URL('../../dist/supervisor/cli.js', import.meta.url));

export interface TestUser {
  username: string;
  password: string;
  roles?: string[];
  allow?: string[];
  /** `users[].totp`: true, or a base32 secret (the original's plaintext form). */
  totp?: boolean | string;
}

export interface GatewayOptions {
  users?: TestUser[];
  routes: string;
  /** Merged over the test defaults (port 0: the gateway picks a free port). */
  config?: Record<string, unknown>;
  /** Reuse this config dir (and its data dir) and keep it on stop: a restart of the same node. */
  dir?: string;
  /** Added to the CLI's environment (undefined removes a variable, PROXYAUTH_LOG_LEVEL too). */
  env?: Record<string, string | undefined>;
}

/** A running `proxyauth` CLI on a temp config dir, with its output captured. */
export interface RunningGateway {
  proc: ChildProcess;
  /** The port the edges listen on (config.json says 0: the gateway picked it). */
  port: number;
  /** Pids of the edges that were listening when the gateway became ready. */
  edges: number[];
  url: string;
  configDir: string;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop: () => Promise<number | null>;
}

const hashes = new Map<string, string>();

async function hashOnce(password: string): Promise<string> {
  let hash = hashes.get(password);
  if (!hash) {
    hash = await hashPassword(password);
    hashes.set(password, hash);
  }
  return hash;
}

export async function writeConfig(
  configDir: string,
  port: number,
  options: GatewayOptions,
): Promise<void> {
  const users = await Promise.all(
    (
      options.users ?? [{ username: 'alice', password: 'alice-password', roles: ['read', 'write'] }]
    ).map(async (u) => ({
      username: u.username,
      password: await hashOnce(u.password),
      roles: u.roles ?? [],
      ...(u.allow ? { allow: u.allow } : {}),
      ...(u.totp === undefined ? {} : { totp: u.totp }),
    })),
  );
  const config = {
    secret: 'integration-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef',
    token_admin: 'a'.repeat(64),
    host: '127.0.0.1',
    port,
    tls: false,
    worker: 1,
    num_instances: 2,
    timezone: 'UTC',
    client_timeout: 2000,
    users,
    ...options.config,
  };
  await writeFile(join(configDir, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
  await writeFile(join(configDir, 'routes.yml'), options.routes);
}

/** The fd the gateway writes its readiness line to (`--ready-fd`), as set up by the spawn. */
export const READY_FD = 3;

/**
 * Starts the CLI on port 0 and resolves once every edge listens, from the readiness line the
 * gateway writes to an extra pipe; a gateway that fails to start rejects at once with its reason.
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const configDir = options.dir ?? (await mkdtemp(join(tmpdir(), 'proxyauth-it-')));
  const keep = options.dir !== undefined;
  const dataDir = join(configDir, 'data');
  await writeConfig(configDir, 0, options);
  const proc = spawn(
    process.execPath,
    [CLI, '--config-dir', configDir, '--data-dir', dataDir, '--ready-fd', String(READY_FD)],
    {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, PROXYAUTH_LOG_LEVEL: 'debug', ...options.env },
    },
  );
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  let ready: Readiness;
  try {
    ready = await readReadiness(proc.stdio[READY_FD] as Readable, 30_000);
  } catch (err) {
    ready = { ready: false, code: 'NO_READINESS', error: (err as Error).message };
  }
  if (!ready.ready) {
    // The reason is in the readiness line; give the output a moment to arrive for context.
    await waitFor(() => proc.exitCode !== null || proc.signalCode !== null, 2_000);
    proc.kill('SIGKILL');
    if (!keep) await rm(configDir, { recursive: true, force: true });
    throw new Error(`gateway did not start (${ready.code}: ${ready.error}):\n${out}`);
  }
  const { port, edges } = ready;
  const gateway: RunningGateway = {
    proc,
    port,
    edges,
    url: `http://127.0.0.1:${port}`,
    configDir,
    output: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      if (!keep) await rm(configDir, { recursive: true, force: true });
      return code;
    },
  };
  return gateway;
}

/**
 * Starts a gateway per entry of `list`, side by side; at `t`'s teardown they stop, then
 * `upstream` closes.
 */
export async function startGatewaysOver<const L extends readonly GatewayOptions[]>(
  t: Test,
  upstream: { close(): Promise<unknown> },
  list: L,
): Promise<{ -readonly [K in keyof L]: RunningGateway }> {
  const gateways = await Promise.all(list.map((options) => startGateway(options)));
  t.teardown(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await upstream.close();
  });
  return gateways as { -readonly [K in keyof L]: RunningGateway };
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 25,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

/** POST /auth with JSON; returns the token (throws on a non-200). */
export async function login(
  url: string,
  username = 'alice',
  password = 'alice-password',
): Promise<string> {
  const res = await fetch(`${url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 200 || !body.token)
    throw new Error(`login failed: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** POST /auth with JSON; the token and its public id (throws on a non-200). */
export async function loginWithId(
  url: string,
  username = 'alice',
  password = 'alice-password',
): Promise<{ token: string; tokenId: string }> {
  const res = await fetch(`${url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = (await res.json()) as { token?: string; token_id?: string };
  if (res.status !== 200 || !body.token || !body.token_id) {
    throw new Error(`login failed: ${res.status} ${JSON.stringify(body)}`);
  }
  return { token: body.token, tokenId: body.token_id };
}

/** POST /adm/revoke of one token id with the test admin token; the status. */
export async function revokeTokenId(url: string, tokenId: string): Promise<number> {
  const res = await fetch(`${url}/adm/revoke`, {
    method: 'POST',
    headers: { 'x-auth-token': 'a'.repeat(64), 'content-type': 'application/json' },
    body: JSON.stringify({ token_id: tokenId }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The JSON log lines in a gateway's output (other lines are skipped). */
export function logLines(output: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut by the end of the captured output: the next read completes it.
    }
  }
  return lines;
}

/** Log lines that have every field of `fields` with that value. */
export function logged(output: string, fields: Record<string, unknown>): Record<string, unknown>[] {
  return logLines(output).filter((line) =>
    Object.entries(fields).every(([key, value]) => line[key] === value),
  );
}

/** One GET on a fresh connection (no keep-alive), so each request is a new accept; the status. */
export function freshGet(port: number, path: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

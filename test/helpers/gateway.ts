import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashPassword } from '../../crypto-pool/password.js';
import { freePort } from './free-port.js';

export const CLI = fileURLToPath(new URL('../../dist/supervisor/cli.js', import.meta.url));

export interface TestUser {
  username: string;
  password: string;
  roles?: string[];
  allow?: string[];
}

export interface GatewayOptions {
  users?: TestUser[];
  routes: string;
  config?: Record<string, unknown>;
}

/** A running `proxyauth` CLI on a temp config dir, with its output captured. */
export interface RunningGateway {
  proc: ChildProcess;
  port: number;
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

/** Starts the CLI and resolves once every edge listens (the supervisor logs "gateway started"). */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const configDir = await mkdtemp(join(tmpdir(), 'proxyauth-it-'));
  const dataDir = join(configDir, 'data');
  const port = await freePort();
  await writeConfig(configDir, port, options);
  const proc = spawn(process.execPath, [CLI, '--config-dir', configDir, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PROXYAUTH_LOG_LEVEL: 'debug' },
  });
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
  const started = await Promise.race([
    waitFor(() => out.includes('gateway started'), 20_000),
    exited.then(() => false),
  ]);
  if (!started) {
    proc.kill('SIGKILL');
    throw new Error(`gateway did not start:\n${out}`);
  }
  const gateway: RunningGateway = {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    configDir,
    output: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      await rm(configDir, { recursive: true, force: true });
      return code;
    },
  };
  return gateway;
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

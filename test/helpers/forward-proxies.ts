import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findNginx, type TempModule } from '../../bench/nginx.js';
import { isListening } from './cli.js';
import { freePort } from './free-port.js';
import { waitFor } from './gateway.js';

/**
 * The nginx server block of README "Forward-auth" (nginx), with the test's ports: auth_request
 * to the gateway's /auth/verify, the identity copied to the backend, the real status of
 * refusals that nginx turns into 500 mapped back, and a browser sent to the login page.
 */
export function forwardAuthNginxServer(port: number, gateway: string, backend: string): string {
  return `
  server {
    listen 127.0.0.1:${port};

    location / {
      auth_request /_proxyauth;
      auth_request_set $pa_user $upstream_http_x_user;
      auth_request_set $pa_roles $upstream_http_x_user_roles;
      auth_request_set $pa_status $upstream_http_x_proxyauth_status;
      auth_request_set $pa_redirect $upstream_http_x_proxyauth_redirect;
      auth_request_set $pa_csrf $upstream_http_x_proxyauth_csrf_token;
      error_page 401 = @proxyauth_401;
      error_page 500 = @proxyauth_status;

      proxy_set_header X-User $pa_user;
      proxy_set_header X-User-Roles $pa_roles;
      proxy_set_header X-ProxyAuth-CSRF-Token $pa_csrf;
      proxy_set_header Authorization "";
      proxy_http_version 1.1;
      proxy_pass ${backend};
    }

    location ~ ^/(auth|logout)$ {
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_http_version 1.1;
      proxy_pass ${gateway};
    }

    location = /_proxyauth {
      internal;
      proxy_pass ${gateway}/auth/verify;
      proxy_method GET;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Method "";
      proxy_set_header X-Forwarded-Uri "";
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_http_version 1.1;
    }

    location @proxyauth_401 {
      if ($pa_redirect) { return 302 $pa_redirect; }
      return 401;
    }

    location @proxyauth_status {
      if ($pa_status = 400) { return 400; }
      if ($pa_status = 404) { return 404; }
      if ($pa_status = 405) { return 405; }
      if ($pa_status = 429) { return 429; }
      if ($pa_status = 501) { return 501; }
      return 503;
    }
  }
`;
}

/**
 * The Caddyfile site block of README "Forward-auth" (Caddy): forward_auth to /auth/verify,
 * the identity copied (and a client's own copy removed first), nginx's headers removed from
 * what the gateway sees, /auth and /logout served by the gateway.
 */
export function forwardAuthCaddySite(port: number, gateway: string, backend: string): string {
  return `http://127.0.0.1:${port} {
	bind 127.0.0.1
	request_header -X-User
	request_header -X-User-Roles
	request_header -X-ProxyAuth-CSRF-Token
	@gateway path /auth /logout
	handle @gateway {
		reverse_proxy ${gateway}
	}
	handle {
		forward_auth ${gateway} {
			uri /auth/verify
			header_up -X-Original-*
			copy_headers X-User X-User-Roles X-ProxyAuth-CSRF-Token
		}
		reverse_proxy ${backend} {
			header_up -Authorization
		}
	}
}
`;
}

/** Starts Caddy with the admin API off and every file in `dir`; undefined when absent. */
export async function startForwardAuthCaddy(
  dir: string,
  gateway: string,
  backend: string,
): Promise<RunningProxy | undefined> {
  const path = ['/usr/bin/caddy', '/usr/local/bin/caddy'].find((p) => existsSync(p));
  if (path === undefined) return undefined;
  const port = await freePort();
  const conf = `{
	admin off
	auto_https off
	storage file_system ${join(dir, 'storage')}
}
${forwardAuthCaddySite(port, gateway, backend)}`;
  const confPath = join(dir, 'Caddyfile');
  await writeFile(confPath, conf);
  const env = {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CONFIG_HOME: join(dir, 'config'),
  };
  const args = ['run', '--config', confPath, '--adapter', 'caddyfile'];
  return started(spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'], env }), port, dir);
}

/** A running nginx or Caddy. */
export interface RunningProxy {
  readonly url: string;
  readonly stop: () => Promise<void>;
  readonly log: () => Promise<string>;
}

/** Starts nginx unprivileged, every file it writes in `dir`; undefined when nginx is absent. */
export async function startForwardAuthNginx(
  dir: string,
  gateway: string,
  backend: string,
): Promise<RunningProxy | undefined> {
  const install = await findNginx();
  if (install === undefined) return undefined;
  const port = await freePort();
  const temp = [
    `  client_body_temp_path ${join(dir, 'client_body')};`,
    ...install.tempModules.map((m: TempModule) => `  ${m}_temp_path ${join(dir, m)};`),
  ];
  const conf = [
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    ...temp,
    forwardAuthNginxServer(port, gateway, backend),
    '}',
    '',
  ].join('\n');
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', confPath, '-g', 'daemon off;'];
  return started(spawn(install.path, args, { stdio: ['ignore', 'pipe', 'pipe'] }), port, dir);
}

async function started(proc: ChildProcess, port: number, dir: string): Promise<RunningProxy> {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const up = await waitFor(() => proc.exitCode === null && isListening(port), 10_000, 50);
  if (!up) {
    proc.kill('SIGKILL');
    throw new Error(`proxy did not start:\n${out}`);
  }
  const { readFile } = await import('node:fs/promises');
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
    log: async () => `${out}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`,
  };
}

/** The users of the forward-auth tests: alice may use every route, bob all but /alice-only. */
export const FORWARD_AUTH_USERS = [
  { username: 'alice', password: 'alice-password', roles: ['read', 'write'] },
  { username: 'bob', password: 'bob-password' },
];

/**
 * The routes.yml of the forward-auth tests, every route on `origin`: `/app` (secure), `/alice-only`
 * (user list), `/read` (GET only), `/public` (no credential), then `extra` route entries.
 */
export function forwardAuthRoutes(origin: string, extra = ''): string {
  return `routes:
  - prefix: /app
    target: ${origin}
  - prefix: /alice-only
    target: ${origin}
    username: [alice]
  - prefix: /read
    target: ${origin}
    allow_methods: [GET]
  - prefix: /public
    target: ${origin}
    secure: false
${extra}`;
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { captureOutput } from './capture-output.js';
import type { CleanupStack } from './cleanup-stack.js';
import { findExecutable } from './find-executable.js';
import { freePort } from './free-port.js';
import { spawnManaged } from './managed-process.js';
import type { Service } from './service.js';
import { waitForHttp } from './wait-for-http.js';

/** The nginx binary found on this machine. */
export interface NginxInstall {
  readonly path: string;
  /** e.g. `nginx/1.22.1` */
  readonly version: string;
  /** Modules whose temp path directive exists in this build (see {@link renderNginxConf}). */
  readonly tempModules: readonly TempModule[];
}

/** Modules that own a `*_temp_path` directive besides the always-present client body one. */
export type TempModule = 'proxy' | 'fastcgi' | 'uwsgi' | 'scgi';

const TEMP_MODULES: readonly TempModule[] = ['proxy', 'fastcgi', 'uwsgi', 'scgi'];

/** Settings of the generated nginx.conf. */
export interface NginxConfParams {
  /** Directory holding the pid file, error log and temp paths. */
  readonly dir: string;
  readonly port: number;
  readonly upstreamPort: number;
  readonly workerProcesses: number;
  readonly tempModules: readonly TempModule[];
}

/** Locates nginx (PATH, then the usual sbin directories); undefined when not installed. */
export async function findNginx(): Promise<NginxInstall | undefined> {
  const path = findExecutable('nginx', ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']);
  if (!path) return undefined;
  const { stdout, stderr } = await captureOutput(path, ['-V']);
  const text = `${stdout}${stderr}`;
  const version = /nginx version: (\S+)/.exec(text)?.[1] ?? 'unknown';
  const tempModules = TEMP_MODULES.filter((m) => !text.includes(`--without-http_${m}_module`));
  return { path, version, tempModules };
}

/**
 * nginx.conf for a plain reverse proxy with a keep-alive pool to the upstream. Every path nginx
 * writes is inside `dir`, so it runs unprivileged and leaves nothing behind. keepalive_requests is
 * raised on both sides because the default (1000) would make nginx reconnect during a run while
 * the other scenarios keep their connections.
 */
export function renderNginxConf(p: NginxConfParams): string {
  const temp = [
    `  client_body_temp_path ${join(p.dir, 'client_body')};`,
    ...p.tempModules.map((m) => `  ${m}_temp_path ${join(p.dir, m)};`),
  ];
  return [
    `worker_processes ${p.workerProcesses};`,
    `pid ${join(p.dir, 'nginx.pid')};`,
    `error_log ${join(p.dir, 'error.log')} warn;`,
    'events {',
    '  worker_connections 4096;',
    '}',
    'http {',
    '  access_log off;',
    ...temp,
    '  upstream bench_upstream {',
    `    server 127.0.0.1:${p.upstreamPort};`,
    '    keepalive 64;',
    '    keepalive_requests 1000000;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${p.port};`,
    '    keepalive_requests 1000000;',
    '    location / {',
    '      proxy_pass http://bench_upstream;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Writes nginx.conf under `dir` and starts nginx in the foreground as a child. */
export async function startNginx(
  install: NginxInstall,
  dir: string,
  upstreamPort: number,
  workerProcesses: number,
  cleanup: CleanupStack,
): Promise<Service> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const confPath = join(dir, 'nginx.conf');
  const conf = renderNginxConf({
    dir,
    port,
    upstreamPort,
    workerProcesses,
    tempModules: install.tempModules,
  });
  await writeFile(confPath, conf);
  // -e: the compiled-in error log may not be writable before the config is read.
  const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', confPath, '-g', 'daemon off;'];
  const proc = spawnManaged('nginx', install.path, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  cleanup.add('stop nginx', async () => {
    await proc.stop();
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/`, { process: proc });
  return { name: 'nginx', baseUrl, pid: proc.child.pid };
}

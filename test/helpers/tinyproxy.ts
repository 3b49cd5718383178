import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './gateway.js';

/** A tinyproxy (Debian's `tinyproxy` package) run in the foreground for one test file. */
export interface RunningProxy {
  port: number;
  /** Its log so far (LogLevel Info: one line per request, CONNECT included). */
  log: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts tinyproxy on a free 127.0.0.1 port with its own config and log in `dir` (not as a
 * system service). `basicAuth`: the proxy then asks for these credentials (407 without).
 */
export async function startTinyproxy(
  dir: string,
  options: { basicAuth?: { user: string; password: string } } = {},
): Promise<RunningProxy> {
  const port = await freePort();
  const conf = join(dir, `tinyproxy-${port}.conf`);
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Allow 127.0.0.1',
    'Timeout 30',
    // No LogFile: with -d the log goes to stdout, captured here (no file for `nobody` to write).
    'LogLevel Info',
    'MaxClients 50',
    // Via is on by default (the tests rely on it for plain-http requests): name it.
    'ViaProxyName "tinyproxy-test"',
    // No ConnectPort line: CONNECT is allowed to any port (the test upstreams' random ones).
    ...(options.basicAuth
      ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`]
      : []),
  ];
  // tinyproxy refuses to run as root without a User; the current user is fine otherwise.
  if (process.getuid?.() === 0) lines.push('User nobody', 'Group nogroup');
  await writeFile(conf, `${lines.join('\n')}\n`);
  const proc: ChildProcess = spawn('tinyproxy', ['-d', '-c', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const up = await waitFor(
    () =>
      proc.exitCode === null &&
      new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    10_000,
    50,
  );
  if (!up) {
    proc.kill('SIGKILL');
    throw new Error(`tinyproxy did not start:\n${out}`);
  }
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    port,
    log: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

export interface RedisTls {
  cert: string;
  key: string;
  ca: string;
}

/** A redis-server of a test: no persistence, on a free port, in a test dir. */
export interface TestRedis {
  port: number;
  /** `redis://127.0.0.1:<port>` (or `rediss://localhost:<port>` with TLS). */
  url: string;
  /** Stops the server (SIGKILL: no shutdown save). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty (it never saved anything). */
  restart(): Promise<void>;
  /** Runs redis-cli against it; resolves with stdout. */
  cli(...args: string[]): Promise<string>;
}

/**
 * Starts `redis-server --save '' --appendonly no` in `dir` on a free port; with `tls`, TLS only
 * (`--port 0 --tls-port`), clients not asked for certificates. Stop it in teardown.
 */
export async function startRedis(dir: string, tls?: RedisTls): Promise<TestRedis> {
  const port = await freePort();
  const args = ['--save', '', '--appendonly', 'no', '--dir', dir, '--bind', '127.0.0.1'];
  if (tls) {
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert);
    args.push('--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no');
  } else {
    args.push('--port', String(port));
  }
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = await spawnReady(args);
  };
  await launch();
  const tlsArgs = tls ? ['--tls', '--cacert', tls.ca] : [];
  return {
    port,
    url: tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`,
    stop: async () => {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((resolve) => p.once('exit', resolve));
      p.kill('SIGKILL');
      await exited;
    },
    restart: launch,
    cli: async (...cliArgs) => {
      const { stdout } = await run('redis-cli', ['-p', String(port), ...tlsArgs, ...cliArgs]);
      return stdout;
    },
  };
}

function spawnReady(args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`redis-server did not start:\n${out}`));
    }, 10_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(proc);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${out}`));
    });
  });
}

import { BenchError } from './bench-error.js';
import type { CleanupStack } from './cleanup-stack.js';
import { FASTIFY_PEER_ENV } from './fastify-peer-env.js';
import { freePort } from './free-port.js';
import { describeExit, spawnManaged } from './managed-process.js';
import type { Service } from './service.js';
import type { UpstreamMessage } from './upstream-message.js';

const START_TIMEOUT_MS = 20_000;

/** Settings of the fastify JWT peer. */
export interface FastifyPeerParams {
  /** The compiled `fastify-peer.js` (dist/bench, beside the runner). */
  readonly entry: string;
  readonly upstreamPort: number;
  readonly processes: number;
  readonly jwtSecret: string;
}

/**
 * Whether fastify, @fastify/http-proxy and jose can be loaded (they are devDependencies: an
 * `npm ci --omit=dev` install lacks them). Undefined when they can, else the reason.
 */
export async function fastifyPeerMissing(): Promise<string | undefined> {
  for (const name of ['fastify', '@fastify/http-proxy', 'jose']) {
    try {
      await import(name);
    } catch {
      return `${name} is not installed (npm ci installs the dev dependencies)`;
    }
  }
  return undefined;
}

/**
 * Starts the fastify peer (one worker per process) and waits until every worker listens.
 * Throws `BENCH_NOT_READY` when it exits or is not ready in time.
 */
export async function startFastifyPeer(
  p: FastifyPeerParams,
  cleanup: CleanupStack,
): Promise<Service> {
  const port = await freePort();
  const proc = spawnManaged('fastify-jwt', process.execPath, [p.entry], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      [FASTIFY_PEER_ENV.port]: String(port),
      [FASTIFY_PEER_ENV.upstream]: `http://127.0.0.1:${p.upstreamPort}`,
      [FASTIFY_PEER_ENV.workers]: String(p.processes),
      [FASTIFY_PEER_ENV.secret]: p.jwtSecret,
    },
  });
  cleanup.add('stop fastify peer', async () => {
    await proc.stop();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new BenchError('BENCH_NOT_READY', 'fastify peer not listening in time')),
      START_TIMEOUT_MS,
    );
    proc.child.once('message', (message: UpstreamMessage) => {
      clearTimeout(timer);
      if (message.port === port) resolve();
      else reject(new BenchError('BENCH_NOT_READY', `fastify peer reported port ${message.port}`));
    });
    void proc.exited.then((info) => {
      clearTimeout(timer);
      reject(new BenchError('BENCH_NOT_READY', `fastify peer exited (${describeExit(info)})`));
    });
  });
  return { name: 'fastify-jwt', baseUrl: `http://127.0.0.1:${port}`, pid: proc.child.pid };
}

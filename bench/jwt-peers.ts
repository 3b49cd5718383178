import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CleanupStack } from './cleanup-stack.js';
import { startFastifyPeer } from './fastify.js';
import { BENCH_USER } from './gateway.js';
import { type HaproxyInstall, haproxyRateFor, startHaproxy } from './haproxy.js';
import { mintBenchJwt, newJwtSecret } from './jwt.js';
import { benchDir, packageRoot } from './paths.js';
import { BENCH_HIGH_LIMIT, type ServiceName } from './scenarios.js';
import type { Service, Services } from './service.js';

/** What was found of the JWT peers on this machine. */
export interface JwtPeers {
  readonly haproxy: HaproxyInstall | undefined;
  /** Why the fastify peer cannot run, or undefined when it can. */
  readonly fastifyMissing: string | undefined;
}

/** Where the peers run: the run's temp dir, the upstream, and the processes each proxy gets. */
export interface PeerSetup {
  readonly dir: string;
  readonly upstreamPort: number;
  readonly processes: number;
  readonly cleanup: CleanupStack;
}

/** How the runner wants peers handled: which it selected, how to skip one, how to start one. */
export interface PeerStarts {
  wanted(service: ServiceName): boolean;
  /** Marks the service's scenarios skipped (not failed) with `reason`. */
  skip(service: ServiceName, reason: string): void;
  /** Starts a service; undefined (its scenarios failed) when it throws. */
  start(service: ServiceName, start: () => Promise<Service>): Promise<Service | undefined>;
}

/**
 * Starts HAProxy and fastify, each when selected and installed, verifying an HS256 JWT minted
 * here with a secret new to this run; the services returned carry it as their bearer header.
 */
export async function startJwtPeers(
  peers: JwtPeers,
  setup: PeerSetup,
  starts: PeerStarts,
): Promise<Services> {
  const services: Services = {};
  if (!starts.wanted('haproxy-jwt') && !starts.wanted('fastify-jwt')) return services;
  const jwtSecret = newJwtSecret();
  const authHeaders = { authorization: `Bearer ${await mintBenchJwt(jwtSecret, BENCH_USER)}` };
  const { upstreamPort, processes, cleanup } = setup;
  const haproxy = peers.haproxy;
  if (starts.wanted('haproxy-jwt') && !haproxy?.hasJwt) {
    const why = haproxy ? `HAProxy ${haproxy.version} has no JWT converters (2.5+)` : undefined;
    starts.skip('haproxy-jwt', why ?? 'haproxy not installed');
  } else if (haproxy && starts.wanted('haproxy-jwt')) {
    const requestsPerSecond = haproxyRateFor(BENCH_HIGH_LIMIT);
    const params = { upstreamPort, threads: processes, jwtSecret, requestsPerSecond };
    const dir = join(setup.dir, 'haproxy');
    const started = await starts.start('haproxy-jwt', () =>
      startHaproxy(haproxy, dir, params, cleanup),
    );
    if (started) services['haproxy-jwt'] = { ...started, authHeaders };
  }
  if (starts.wanted('fastify-jwt') && peers.fastifyMissing !== undefined) {
    starts.skip('fastify-jwt', peers.fastifyMissing);
  } else if (starts.wanted('fastify-jwt')) {
    const entry = join(benchDir, 'fastify-peer.js');
    const params = { entry, upstreamPort, processes, jwtSecret };
    const started = await starts.start('fastify-jwt', () => startFastifyPeer(params, cleanup));
    if (started) services['fastify-jwt'] = { ...started, authHeaders };
  }
  return services;
}

/** `fastify x, @fastify/http-proxy y, jose z`, from their package.json files. */
export async function fastifyVersions(): Promise<string> {
  const versions: string[] = [];
  for (const name of ['fastify', '@fastify/http-proxy', 'jose']) {
    try {
      const pkg = join(packageRoot(), 'node_modules', name, 'package.json');
      const { version } = JSON.parse(await readFile(pkg, 'utf8')) as { version: string };
      versions.push(`${name} ${version}`);
    } catch {
      versions.push(`${name} ?`);
    }
  }
  return versions.join(', ');
}

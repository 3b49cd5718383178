// Child process entry: the fastify JWT peer. The primary forks one worker per process asked
// (node:cluster, its default round-robin hand-off: what `pm2 -i N` and most fastify deployments
// run) and tells the runner once every worker listens. Each worker is fastify with
// @fastify/http-proxy to the upstream and an onRequest hook that verifies an HS256 JWT with jose.
import cluster from 'node:cluster';
import proxy from '@fastify/http-proxy';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { jwtVerify } from 'jose';
import { FASTIFY_PEER_ENV } from './fastify-peer-env.js';
import type { UpstreamMessage } from './upstream-message.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`fastify-peer: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i;

async function serve(): Promise<void> {
  const key = new TextEncoder().encode(env(FASTIFY_PEER_ENV.secret));
  const app = Fastify({ logger: false });
  // RFC 7519 §4.1.4 / RFC 8725 §3.1: HS256 only (alg none and others refused), exp required.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    try {
      if (token === undefined) throw new Error('no bearer token');
      await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp'] });
    } catch {
      return reply.code(401).send({ error: 'unauthorized' });
    }
    return undefined;
  });
  await app.register(proxy, { upstream: env(FASTIFY_PEER_ENV.upstream) });
  await app.listen({ host: '127.0.0.1', port: Number(env(FASTIFY_PEER_ENV.port)) });
}

function supervise(): void {
  const workers = Number(env(FASTIFY_PEER_ENV.workers));
  const port = Number(env(FASTIFY_PEER_ENV.port));
  let listening = 0;
  let stopping = false;
  cluster.on('listening', () => {
    listening += 1;
    if (listening !== workers) return;
    const message: UpstreamMessage = { type: 'listening', port };
    process.send?.(message);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`fastify-peer: worker ${worker.id} exited (${signal ?? code}): stopping`);
    process.exit(1);
  });
  const stop = (): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  for (let i = 0; i < workers; i++) cluster.fork();
}

if (cluster.isPrimary) {
  supervise();
} else {
  serve().catch((err: unknown) => {
    console.error(`fastify-peer: ${(err as Error).message}`);
    process.exit(1);
  });
}

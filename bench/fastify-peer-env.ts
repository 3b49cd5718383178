/**
 * Environment variables the runner sets for the fastify peer (bench/fastify-peer.ts). The
 * secret travels here rather than on the command line, where `ps` would show it.
 */
export const FASTIFY_PEER_ENV = Object.freeze({
  port: 'BENCH_PEER_PORT',
  upstream: 'BENCH_PEER_UPSTREAM',
  workers: 'BENCH_PEER_WORKERS',
  secret: 'BENCH_PEER_JWT_SECRET',
} as const);

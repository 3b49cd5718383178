import { fork } from 'node:child_process';
import type { EdgeProcess } from './edge-channel.js';
import type { SpawnEdge } from './fleet.js';

/*
 * uWS refuses a request head that arrives in several reads once it passes
 * UWS_HTTP_MAX_HEADERS_SIZE (~4 KiB by default, measured: a 6 KiB head split in two got 431),
 * whatever `max_header_bytes` says; a head read at once is bounded only by the read. The edge
 * enforces `max_header_bytes` itself with its JSON 431; uWS's limit sits above it, with room
 * for the request line and separators that the edge does not count.
 */
const UWS_HEAD_SLACK = 1024;

/**
 * The fleet's real spawner: forks the edge entry point at `edgePath` (the supervisor starts it
 * by path and never imports it) with an IPC channel and the parent's stdout/stderr. `metrics`:
 * whether edges count for the node's metrics (config `metrics`, read at the supervisor's start,
 * so that a replacement edge after a reload counts exactly when the supervisor listens).
 */
export function forkEdge(
  edgePath: string,
  options: { metrics: boolean } = { metrics: false },
): SpawnEdge {
  return (slot, plan) =>
    fork(edgePath, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        PROXYAUTH_EDGE_SLOT: String(slot),
        PROXYAUTH_METRICS: options.metrics ? '1' : '0',
        PROXYAUTH_CRYPTO_THREADS: String(plan.cryptoThreads),
        UWS_HTTP_MAX_HEADERS_SIZE: String(plan.maxHeaderBytes + UWS_HEAD_SLACK),
      },
    }) satisfies EdgeProcess;
}

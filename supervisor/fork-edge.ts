import { fork } from 'node:child_process';
import type { Readable } from 'node:stream';
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

/** How an edge's output is wired (supervisor/log-sinks.ts). */
export interface ForkOptions {
  /** When set, the edge's stdout is a pipe handed to this; else it inherits the supervisor's. */
  output?: ((stdout: Readable) => void) | undefined;
  /** Variables added to the edge's environment at each fork (the log level in force). */
  env?: (() => Record<string, string>) | undefined;
  /** Whether edges count for the node's metrics (see forkEdge). */
  metrics?: boolean;
}

/**
 * The fleet's real spawner: forks the edge entry point at `edgePath` (the supervisor starts it
 * by path and never imports it) with an IPC channel and the parent's stdout/stderr. `metrics`:
 * whether edges count for the node's metrics (config `metrics`, read at the supervisor's start,
 * so that a replacement edge after a reload counts exactly when the supervisor listens).
 */
export function forkEdge(edgePath: string, options: ForkOptions = {}): SpawnEdge {
  const { output, env, metrics = false } = options;
  return (slot, plan) => {
    const child = fork(edgePath, [], {
      stdio: ['ignore', output ? 'pipe' : 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        ...env?.(),
        PROXYAUTH_EDGE_SLOT: String(slot),
        PROXYAUTH_METRICS: metrics ? '1' : '0',
        PROXYAUTH_CRYPTO_THREADS: String(plan.cryptoThreads),
        UWS_HTTP_MAX_HEADERS_SIZE: String(plan.maxHeaderBytes + UWS_HEAD_SLACK),
      },
    });
    if (output && child.stdout) output(child.stdout);
    return child satisfies EdgeProcess;
  };
}

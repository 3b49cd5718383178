import { fork } from 'node:child_process';
import type { EdgeProcess } from './edge-channel.js';
import type { SpawnEdge } from './fleet.js';

/**
 * The fleet's real spawner: forks the edge entry point at `edgePath` (the supervisor starts it
 * by path and never imports it) with an IPC channel and the parent's stdout/stderr.
 */
export function forkEdge(edgePath: string): SpawnEdge {
  return (slot, plan) =>
    fork(edgePath, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        PROXYAUTH_EDGE_SLOT: String(slot),
        PROXYAUTH_CRYPTO_THREADS: String(plan.cryptoThreads),
      },
    }) satisfies EdgeProcess;
}

// What the tests of bodies read while answers wait share: an upstream that never reads, and the
// edge's memory sampled while clients push (worker/uws-io.ts BLOCKED_BODY_BYTES,
// EDGE_BLOCKED_BODY_BYTES).
import { readFile } from 'node:fs/promises';
import { type AddressInfo, createServer, type Socket } from 'node:net';

/** The resident set of process `pid` in KiB (VmRSS of /proc/<pid>/status); NaN if unreadable. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
}

/** How much a process's RSS rose while some work ran. */
export interface RssGrowth<T> {
  readonly result: T;
  readonly beforeKiB: number;
  readonly peakKiB: number;
  /** (peak - before) in MiB. */
  readonly grownMiB: number;
}

/** Runs `work` while sampling `pid`'s RSS every 20 ms: its result and the peak's growth. */
export async function rssGrowthDuring<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<RssGrowth<T>> {
  const beforeKiB = await rssKiB(pid);
  let peakKiB = beforeKiB;
  const sampler = setInterval(() => {
    rssKiB(pid).then(
      (kib) => {
        peakKiB = Math.max(peakKiB, kib);
      },
      () => undefined,
    );
  }, 20);
  try {
    const result = await work();
    return { result, beforeKiB, peakKiB, grownMiB: (peakKiB - beforeKiB) / 1024 };
  } finally {
    clearInterval(sampler);
  }
}

/** A listening upstream of {@link startSilentUpstream}. */
export interface SilentUpstream {
  readonly port: number;
  /** Destroys its connections and stops listening. */
  close(): void;
}

/**
 * An upstream that never reads its sockets (Node's HTTP server reads a body nobody consumes) and
 * answers every connection at once with a 200 of `answerBytes` bytes of `b`, then ends it.
 */
export async function startSilentUpstream(answerBytes: number): Promise<SilentUpstream> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.pause();
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${answerBytes}\r\n\r\n`);
    socket.end(Buffer.alloc(answerBytes, 98));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

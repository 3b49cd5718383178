// WebSocket echo through the gateway against the same echo straight to the backend: messages
// per second (round trips: sent, echoed by the backend, received), with `--connections`
// connections each keeping `--window` messages in flight, for messages of each `--sizes`.
// The backend (ws, no compression) runs in its own process so that it does not share the
// client's event loop; the gateway is the real CLI (one edge, one route, a bearer token).
// Each case gets an untimed warm-up, then the median of 3 rounds.
//   npm run build && node dist/bench/websocket-echo.js [--round-ms 3000] [--connections 8]
//     [--window 32] [--sizes 64,16384]
// The client is one Node process: at high rates it can be the bottleneck of both columns, so
// the ratio is the number to read, and the gateway's CPU (printed) what it cost.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { CleanupStack } from './cleanup-stack.js';
import { startGateway } from './gateway.js';
import { gatewayCliPath } from './paths.js';
import { GATEWAY_PREFIX } from './scenarios.js';
import { median } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const ROUNDS = 3;
const WARMUP_MS = 1000;

/** Child mode: an echo backend on a free port; prints the port on the IPC channel. */
function runBackend(): void {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
  });
  wss.on('connection', (socket) => {
    socket.on('message', (data, binary) => socket.send(data, { binary }));
    socket.on('error', () => {});
  });
  wss.on('listening', () => process.send?.({ port: wss.address().port }));
}

interface Options {
  roundMs: number;
  connections: number;
  window: number;
  sizes: number[];
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      'round-ms': { type: 'string', default: '3000' },
      connections: { type: 'string', default: '8' },
      window: { type: 'string', default: '32' },
      sizes: { type: 'string', default: '64,16384' },
    },
  });
  const int = (name: string, raw: string): number => {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  return {
    roundMs: int('round-ms', values['round-ms']),
    connections: int('connections', values.connections),
    window: int('window', values.window),
    sizes: values.sizes.split(',').map((s) => int('sizes', s)),
  };
}

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, [], { headers, perMessageDeflate: false });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * Echoed messages per second over `ms`: every connection keeps `window` messages in flight
 * and sends one more for each that comes back.
 */
async function measure(
  url: string,
  headers: Record<string, string>,
  o: Options,
  size: number,
  ms: number,
): Promise<number> {
  const sockets = await Promise.all(
    Array.from({ length: o.connections }, () => open(url, headers)),
  );
  const payload = Buffer.alloc(size, 0x61);
  let received = 0;
  let running = true;
  for (const socket of sockets) {
    socket.on('message', () => {
      received++;
      if (running) socket.send(payload, { binary: true });
    });
  }
  const started = performance.now();
  for (const socket of sockets) for (let i = 0; i < o.window; i++) socket.send(payload);
  await new Promise((r) => setTimeout(r, ms));
  const count = received;
  const elapsed = performance.now() - started;
  running = false;
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          s.close(1000);
        }),
    ),
  );
  return (count / elapsed) * 1000;
}

/** user+system CPU seconds of a process tree's root and children (Linux /proc). */
async function cpuSeconds(pids: number[]): Promise<number> {
  const { readFileSync } = await import('node:fs');
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / 100;
}

async function childPids(root: number): Promise<number[]> {
  const { readFileSync } = await import('node:fs');
  try {
    const children = readFileSync(`/proc/${root}/task/${root}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
    return [root, ...children];
  } catch {
    return [root];
  }
}

async function main(): Promise<void> {
  const o = parseOptions();
  const cleanup = new CleanupStack();
  const dir = mkdtempSync(join(tmpdir(), 'proxyauth-bench-ws-'));
  cleanup.add('remove temp dir', () => rmSync(dir, { recursive: true, force: true }));
  try {
    const backend: ChildProcess = fork(SELF, ['--backend'], { stdio: 'inherit' });
    cleanup.add('stop backend', () => {
      backend.kill();
    });
    const port = await new Promise<number>((resolve) =>
      backend.once('message', (m) => resolve((m as { port: number }).port)),
    );
    const gateway = await startGateway('gateway', gatewayCliPath(), dir, port, 1, cleanup);
    const gatewayPids = await childPids(gateway.pid ?? 0);
    const direct = `ws://127.0.0.1:${port}/echo`;
    const through = `${gateway.baseUrl.replace('http:', 'ws:')}${GATEWAY_PREFIX}/echo`;
    console.log(
      `# ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, node ${process.version}; ` +
        `${o.connections} connections x ${o.window} in flight, ${ROUNDS} rounds of ${o.roundMs} ms`,
    );
    console.log(
      '| message | direct msg/s | gateway msg/s | gateway / direct | gateway CPU s per 100k msgs |',
    );
    console.log('|---|---|---|---|---|');
    for (const size of o.sizes) {
      await measure(direct, {}, o, size, WARMUP_MS);
      await measure(through, gateway.authHeaders ?? {}, o, size, WARMUP_MS);
      const d: number[] = [];
      const g: number[] = [];
      const cpu: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        d.push(await measure(direct, {}, o, size, o.roundMs));
        const before = await cpuSeconds(gatewayPids);
        const rate = await measure(through, gateway.authHeaders ?? {}, o, size, o.roundMs);
        const used = (await cpuSeconds(gatewayPids)) - before;
        g.push(rate);
        cpu.push((used / ((rate * o.roundMs) / 1000)) * 100_000);
      }
      const dm = median(d);
      const gm = median(g);
      console.log(
        `| ${size} B | ${Math.round(dm)} | ${Math.round(gm)} | ${(gm / dm).toFixed(2)} | ${median(cpu).toFixed(2)} |`,
      );
    }
  } finally {
    await cleanup.run();
  }
}

if (process.argv.includes('--backend')) runBackend();
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });

// Child process entry: the bench's floor, the gateway's design with none of its logic. The
// parent forks one relay process per process asked (as the supervisor forks its edges) and
// tells the runner once all of them listen; each relay is a uWS app on the shared port (uWS
// binds with SO_REUSEPORT on Linux) relaying every request to the upstream (floor-relay.ts)
// over keep-alive net.Sockets (floor-upstream.ts). A measurement, NOT a proxy to run: it has
// no defence against request smuggling and checks nothing.
//
//   node floor-server.js --port PORT --upstream HOST:PORT --processes N

import uWS from 'uWebSockets.js';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { floorHandler } from './floor-relay.js';
import { FloorPool } from './floor-upstream.js';
import type { UpstreamMessage } from './upstream-message.js';

interface FloorArgs {
  readonly port: number;
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  readonly processes: number;
  readonly child: boolean;
}

function usage(problem: string): never {
  console.error(`floor-server: ${problem}`);
  console.error('usage: floor-server.js --port PORT --upstream HOST:PORT --processes N');
  process.exit(2);
}

function readArgs(): FloorArgs {
  const { values } = parseArgs({
    strict: true,
    options: {
      port: { type: 'string' },
      upstream: { type: 'string' },
      processes: { type: 'string', default: '1' },
      child: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  const processes = Number(values.processes);
  const upstream = /^(.+):(\d+)$/.exec(values.upstream ?? '');
  if (!Number.isInteger(port) || port < 1 || port > 65_535) usage('--port must be 1-65535');
  if (!Number.isInteger(processes) || processes < 1) usage('--processes must be 1 or more');
  if (!upstream) usage('--upstream must be HOST:PORT');
  const [, upstreamHost = '', upstreamPort = ''] = upstream;
  return { port, upstreamHost, upstreamPort: Number(upstreamPort), processes, child: values.child };
}

/** A relay process: listens, then reports its port to the parent. */
function relay(args: FloorArgs): void {
  // As the gateway does (worker/uws-io.ts): no `uWebSockets: 20` header on every answer.
  (uWS as unknown as { _cfg?: (flag: string) => void })._cfg?.('silent');
  const pool = new FloorPool(args.upstreamHost, args.upstreamPort);
  const host = `${args.upstreamHost}:${args.upstreamPort}`;
  uWS
    .App()
    .any('/*', floorHandler(pool, host))
    .listen('127.0.0.1', args.port, (listener) => {
      if (!listener) {
        console.error(`floor-server: cannot listen on 127.0.0.1:${args.port}`);
        process.exit(1);
      }
      const message: UpstreamMessage = { type: 'listening', port: args.port };
      process.send?.(message);
    });
  // The parent owns this process: when it goes away, leave too.
  process.on('disconnect', () => process.exit(0));
}

/** The parent: forks the relays, reports once all listen, stops them all on SIGTERM. */
function supervise(args: FloorArgs): void {
  const entry = fileURLToPath(import.meta.url);
  const relayArgs = [...process.argv.slice(2), '--child'];
  let listening = 0;
  let stopping = false;
  const children = Array.from({ length: args.processes }, () => fork(entry, relayArgs));
  const stop = (): void => {
    stopping = true;
    for (const child of children) child.kill();
    process.exit(0);
  };
  for (const child of children) {
    child.on('message', () => {
      listening += 1;
      if (listening !== args.processes) return;
      const message: UpstreamMessage = { type: 'listening', port: args.port };
      process.send?.(message);
    });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      console.error(`floor-server: relay ${child.pid} exited (${signal ?? code}): stopping`);
      stopping = true;
      for (const other of children) other.kill();
      process.exit(1);
    });
  }
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
}

const args = readArgs();
if (args.child) relay(args);
else supervise(args);

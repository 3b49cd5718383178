/*
 * The rate limiter under a flood of distinct clients: 1,000,000 addresses, one request each,
 * through the supervisor's table (supervisor/rate-authority.ts, ratelimit_max_clients at its
 * default) and through an edge's lease table (worker/rate-limiter.ts) wired to it in this
 * process, while one client that is over its limit keeps asking. Reports the tables' largest
 * sizes, the heap they hold, the cost per new client, and whether the client over its limit
 * was refused throughout.
 *
 *   npm run build && node --expose-gc dist/bench/limiter-flood.js [--clients N]
 */

import { parseArgs } from 'node:util';
import { configSchema } from '../conf/config-schema.js';
import type { EdgeMessage } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import { RateAuthority } from '../supervisor/rate-authority.js';
import { compilePolicy, RateLimiter } from '../worker/rate-limiter.js';
import { SupervisorLink } from '../worker/supervisor-link.js';
import type { Exchange } from '../worker/uws-io.js';

const DEFAULT_MAX_CLIENTS = configSchema.shape.ratelimit_max_clients.parse(undefined);
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function heapMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function address(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}|${i >> 24}`;
}

/** The supervisor's table alone, on a simulated clock: 100,000 new clients per second. */
function floodAuthority(clients: number) {
  let now = 0;
  const authority = new RateAuthority({
    maxKeys: DEFAULT_MAX_CLIENTS,
    edges: () => 2,
    log: quiet,
    now: () => now,
  });
  const policy = { rps: 10, burst: 5, blockMs: 0 };
  const hog = { key: 'proxy|10|5|0 i:192.0.2.1', ...policy, want: 6 };
  authority.take([hog]);
  authority.settle([{ key: hog.key, spent: 6, unspent: 0, ageMs: 0 }]);
  const before = heapMiB();
  let largest = 0;
  let hogAdmitted = 0;
  const started = process.cpuUsage();
  for (let i = 0; i < clients; i++) {
    now = i / 100;
    const key = `proxy|10|5|0 i:${address(i)}`;
    // As an edge does: the lease is spent and reported at once.
    const [g] = authority.take([{ key, ...policy, want: 1 }]);
    authority.settle([{ key, spent: 1, unspent: g!.granted - 1, ageMs: 0 }]);
    largest = Math.max(largest, authority.size);
    // The hog asks again every 100 new clients (every ms); refills are spent at once.
    if (i % 100 === 0) {
      const [r] = authority.take([{ ...hog, want: 1 }]);
      if (r!.granted > 0) {
        hogAdmitted += r!.granted;
        authority.settle([{ key: hog.key, spent: r!.granted, unspent: 0, ageMs: 0 }]);
      }
    }
  }
  const cpu = process.cpuUsage(started);
  return {
    largest,
    heldMiB: heapMiB() - before,
    usPerClient: (cpu.user + cpu.system) / clients,
    hogAdmitted,
    simulatedSeconds: now / 1000,
  };
}

/** Heap held by a full table of live buckets (none idle, none evictable by the sweep). */
function fullTable() {
  const authority = new RateAuthority({
    maxKeys: DEFAULT_MAX_CLIENTS,
    edges: () => 2,
    log: quiet,
    now: () => 0,
  });
  const policy = { rps: 1 / 86_400, burst: 5, blockMs: 0 };
  const before = heapMiB();
  for (let i = 0; i < DEFAULT_MAX_CLIENTS; i++) {
    authority.take([{ key: `proxy|1.16e-5|5|0 i:${address(i)}`, ...policy, want: 1 }]);
  }
  const held = heapMiB() - before;
  return { buckets: authority.size, heldMiB: held, bytesEach: (held * 2 ** 20) / authority.size };
}

/** An edge's lease table in front of a supervisor table, in real time, 1,000 clients per turn. */
async function floodEdge(clients: number) {
  const authority = new RateAuthority({ maxKeys: DEFAULT_MAX_CLIENTS, edges: () => 1, log: quiet });
  const link: SupervisorLink = new SupervisorLink((m: EdgeMessage) => {
    setImmediate(() => {
      if (m.type === 'rate-take') {
        link.settle({ type: 'answer', id: m.id, value: { results: authority.take(m.items) } });
      } else if (m.type === 'rate-settle') authority.settle(m.items);
    });
    return true;
  });
  const limiter = new RateLimiter(link, quiet);
  const policy = compilePolicy('proxy', { requests_per_second: 10, burst: 5, block_delay: 0 })!;
  const ex = () => ({ headLines: '', headLinesAscii: true }) as unknown as Exchange;
  const hogAdmits = async () => {
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      try {
        await limiter.admit(policy, 'i', '192.0.2.1', ex());
        admitted++;
      } catch {}
    }
    return admitted;
  };
  await hogAdmits();
  const before = heapMiB();
  let largest = 0;
  let hogAdmitted = 0;
  const started = performance.now();
  for (let i = 0; i < clients; i += 1000) {
    await Promise.allSettled(
      Array.from({ length: 1000 }, (_, j) => limiter.admit(policy, 'i', address(i + j), ex())),
    );
    largest = Math.max(largest, limiter.size);
    if (i % 50_000 === 0) hogAdmitted += await hogAdmits();
  }
  const seconds = (performance.now() - started) / 1000;
  const result = {
    largest,
    supervisorLargest: authority.size,
    heldMiB: heapMiB() - before,
    clientsPerSecond: clients / seconds,
    hogAdmitted,
    seconds,
  };
  limiter.stop();
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '1000000' } } });
  const clients = Number(values.clients);
  if (!Number.isInteger(clients) || clients < 1000) throw new Error('--clients: at least 1000');
  if (!(globalThis as { gc?: unknown }).gc) {
    console.log('notice: run with --expose-gc for exact heap figures');
  }
  const a = floodAuthority(clients);
  console.log(
    `supervisor table: ${clients.toLocaleString('en')} clients in ${a.simulatedSeconds.toFixed(0)} simulated s; ` +
      `largest ${a.largest.toLocaleString('en')} buckets (cap ${DEFAULT_MAX_CLIENTS.toLocaleString('en')}); ` +
      `${a.heldMiB.toFixed(1)} MiB held after it; ${a.usPerClient.toFixed(2)} µs CPU per new client; ` +
      `client over its limit admitted ${a.hogAdmitted} times (its refill: ~${Math.round(a.simulatedSeconds * 10)})`,
  );
  const f = fullTable();
  console.log(
    `supervisor table full: ${f.buckets.toLocaleString('en')} live buckets hold ${f.heldMiB.toFixed(1)} MiB ` +
      `(${Math.round(f.bytesEach)} bytes each)`,
  );
  const e = await floodEdge(clients);
  console.log(
    `edge leases: ${clients.toLocaleString('en')} clients in ${e.seconds.toFixed(1)} s ` +
      `(${Math.round(e.clientsPerSecond).toLocaleString('en')}/s); largest ${e.largest.toLocaleString('en')} leases ` +
      `(cap 100,000), supervisor ${e.supervisorLargest.toLocaleString('en')} buckets; ${e.heldMiB.toFixed(1)} MiB held; ` +
      `client over its limit admitted ${e.hogAdmitted} times while flooded`,
  );
  const ok = a.largest <= DEFAULT_MAX_CLIENTS && e.largest <= 100_000;
  if (!ok) process.exitCode = 1;
}

await main();

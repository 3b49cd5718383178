// Micro benchmark of the token hot path, to decide where verification runs: inline on the edge's
// event loop, or in the crypto pool behind a thread hop. Every case is checked for the right
// answer before it is timed.
//   npm run build && node dist/bench/token-micro.js [--runs 5] [--json]
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { LruCache } from '../shared/lru-cache.js';
import { TokenCodec } from '../shared/token-codec.js';
import type { VerifyTask } from './token-micro-worker.js';

const SECRET = 'bench secret: 0123456789abcdef0123456789abcdef0123456789abcdef012345';
// Two older keys kept verify-only after two rotations (docs/token-format.md, Rotation).
const RETIRED = [
  'bench retired key 1: 0123456789abcdef0123456789abcdef0123456789abcdef',
  'bench retired key 2: fedcba9876543210fedcba9876543210fedcba9876543210',
];
const NOW = Math.floor(Date.now() / 1000);
const USER = 'bench-user@example.com';
// Long enough per run to dwarf timer and JIT noise, short enough for five runs of every case.
const SYNC_RUN_MS = 400;
const HOP_TASKS = 4000;
const PIPELINED_TASKS = 40_000;
const PIPELINE_DEPTH = 64;

interface Case {
  name: string;
  /** Runs the case once and returns operations per second. */
  run: () => Promise<number>;
}

interface Row {
  name: string;
  median: number;
  min: number;
  max: number;
  usPerOp: number;
}

function fail(message: string): never {
  throw new Error(`bench check failed: ${message}`);
}

/** Runs `op` in batches until SYNC_RUN_MS have passed; returns ops/s. */
function timeSync(op: () => unknown): Promise<number> {
  const batch = 1000;
  let done = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(SYNC_RUN_MS) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) op();
    done += batch;
    now = process.hrtime.bigint();
  }
  return Promise.resolve((done * 1e9) / Number(now - start));
}

async function timeSequentialHops(task: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < HOP_TASKS; i++) await task();
  return (HOP_TASKS * 1e9) / Number(process.hrtime.bigint() - start);
}

async function timePipelined(task: () => Promise<unknown>): Promise<number> {
  let issued = 0;
  const start = process.hrtime.bigint();
  const lane = async (): Promise<void> => {
    while (issued < PIPELINED_TASKS) {
      issued++;
      await task();
    }
  };
  await Promise.all(Array.from({ length: PIPELINE_DEPTH }, lane));
  return (PIPELINED_TASKS * 1e9) / Number(process.hrtime.bigint() - start);
}

function newPool(threads: number): Piscina {
  return new Piscina({
    filename: fileURLToPath(new URL('./token-micro-worker.js', import.meta.url)),
    workerData: { secret: SECRET },
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Number.POSITIVE_INFINITY,
  });
}

async function buildCases(pools: { one: Piscina; all: Piscina; threads: number }) {
  const codec = new TokenCodec(SECRET);
  const { token } = codec.issue(USER, 3600, NOW);
  const garbage = 'not a token '.repeat(20);
  const tampered = `${token.slice(0, 40)}${token[40] === 'A' ? 'B' : 'A'}${token.slice(41)}`;

  // Checks before timing: every case must give the right answer.
  const verified = codec.verify(token, NOW);
  if (!verified.ok || verified.claims.sub !== USER) fail('verify of a valid token');
  if (codec.verify(tampered, NOW).ok) fail('verify of a tampered token');
  if (codec.verify(garbage, NOW).ok) fail('verify of garbage');
  const ring = new TokenCodec({ active: SECRET, verifyOnly: RETIRED });
  const retired = new TokenCodec(RETIRED[1]!).issue(USER, 3600, NOW).token;
  for (const t of [token, retired]) {
    const r = ring.verify(t, NOW);
    if (!r.ok || r.claims.sub !== USER) fail('verify under a ring of three');
  }
  const sessions = new LruCache<string, { user: string; exp: number }>(50_000);
  const cached: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const issued = codec.issue(`user${i % 100}`, 3600, NOW).token;
    cached.push(issued);
    sessions.set(issued, { user: `user${i % 100}`, exp: NOW + 3600 });
  }
  if (sessions.get(cached[1234]!)?.user !== 'user34') fail('LRU hit');
  const task: VerifyTask = { token, now: NOW };
  for (const pool of [pools.one, pools.all]) {
    if ((await pool.run(task, { name: 'verify' })) !== USER) fail('verify in a pool thread');
    if ((await pool.run(7, { name: 'echo' })) !== 7) fail('echo in a pool thread');
  }

  let next = 0;
  const cases: Case[] = [
    { name: 'verify, valid token (inline)', run: () => timeSync(() => codec.verify(token, NOW)) },
    {
      name: 'verify, bad MAC (inline)',
      run: () => timeSync(() => codec.verify(tampered, NOW)),
    },
    {
      name: 'verify, garbage (inline)',
      run: () => timeSync(() => codec.verify(garbage, NOW)),
    },
    {
      name: 'verify, ring of 3, active key (inline)',
      run: () => timeSync(() => ring.verify(token, NOW)),
    },
    {
      name: 'verify, ring of 3, verify-only key (inline)',
      run: () => timeSync(() => ring.verify(retired, NOW)),
    },
    { name: 'issue (inline)', run: () => timeSync(() => codec.issue(USER, 3600, NOW)) },
    {
      name: 'LRU hit, 10k entries (inline)',
      run: () =>
        timeSync(() => {
          next = (next + 7919) % cached.length;
          return sessions.get(cached[next]!);
        }),
    },
    {
      name: 'pool hop, echo, 1 thread, sequential',
      run: () => timeSequentialHops(() => pools.one.run(1, { name: 'echo' })),
    },
    {
      name: 'pool hop, verify, 1 thread, sequential',
      run: () => timeSequentialHops(() => pools.one.run(task, { name: 'verify' })),
    },
    {
      name: `pool hop, verify, ${pools.threads} threads, ${PIPELINE_DEPTH} in flight`,
      run: () => timePipelined(() => pools.all.run(task, { name: 'verify' })),
    },
  ];
  return cases;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function renderTable(rows: Row[]): string {
  const header = ['case', 'median ops/s', 'min', 'max', 'µs/op'];
  const lines = rows.map((r) => [
    r.name,
    Math.round(r.median).toLocaleString('en-US'),
    Math.round(r.min).toLocaleString('en-US'),
    Math.round(r.max).toLocaleString('en-US'),
    r.usPerOp.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)].join(
    '\n',
  );
}

async function main(argv: readonly string[]): Promise<void> {
  const runsAt = argv.indexOf('--runs');
  const runs = runsAt === -1 ? 5 : Number(argv[runsAt + 1]);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error('--runs needs a positive integer');
  const threads = Math.max(1, availableParallelism());
  const pools = { one: newPool(1), all: newPool(threads), threads };
  try {
    const cases = await buildCases(pools);
    // Warm-up: one untimed run of each case so that JIT tiers settle before run 1.
    for (const c of cases) await c.run();
    const results = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    // Interleaved rounds, so that drift on a shared machine spreads over every case.
    for (let round = 0; round < runs; round++) {
      for (const c of cases) results.get(c.name)!.push(await c.run());
    }
    const rows: Row[] = cases.map((c) => {
      const values = results.get(c.name)!;
      const m = median(values);
      return {
        name: c.name,
        median: m,
        min: Math.min(...values),
        max: Math.max(...values),
        usPerOp: 1e6 / m,
      };
    });
    const machine = {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: availableParallelism(),
      node: process.version,
      runs,
    };
    if (argv.includes('--json')) {
      console.log(JSON.stringify({ machine, rows }, null, 2));
    } else {
      console.log(
        `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, median of ${runs} runs`,
      );
      console.log(renderTable(rows));
    }
  } finally {
    await Promise.all([pools.one.close(), pools.all.close()]);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

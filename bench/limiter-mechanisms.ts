// Micro benchmark of the mechanisms a rate limiter exact across edges could use, to pick one by
// measurement:
//   1. every request asks the supervisor over the fork IPC channel (JSON serialization, as
//      supervisor/fork-edge.ts forks edges): one ask in flight per edge (latency), 64 in flight
//      (throughput), and the same two with the asks of one event-loop turn sent as one message;
//   2. every request updates a shared GCRA record in LMDB (`transactionSync`: read, write back)
//      from two processes, on one key and on distinct keys, with lmdb-js defaults, with the
//      options of shared/store-open.ts (every commit synced before it returns), and with noSync;
//   3. the same GCRA update in a local Map: the floor of a design where edges spend leased tokens.
// CPU per operation is process.cpuUsage (user+system) of every process involved, summed, over
// the timed window. Each case gets an untimed warm-up, then the median of 3 rounds; after its
// rounds every case is checked for exactness (every operation counted once, no lost update).
//   npm run build && node dist/bench/limiter-mechanisms.js [--round-ms 2000] [--dir DIR]
// --dir: where the LMDB files go (default: the OS temp dir; fsync costs depend on its disk).
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open, type RootDatabase, type RootDatabaseOptions } from 'lmdb';
import { median, range } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const ROUNDS = 3;
const WARMUP_MS = 500;
const PIPELINE_DEPTH = 64;
/** Client keys an edge cycles through (distinct-key cases, the supervisor's counters). */
const KEYS_PER_EDGE = 1000;
const EDGES = 2;

// GCRA with a tat far in the future and no burst limit: every take is granted and moves the
// tat by exactly one interval, so the final tats count the updates (the exactness check).
// The work per update is the same as with real limits.
const INTERVAL_MS = 1;
const SEED_TAT = 2 ** 45;
const BURST_MS = Number.POSITIVE_INFINITY;

interface TatRecord {
  tat: number;
}

/** The new tat when the request is granted, else undefined. */
function gcra(tat: number | undefined, now: number): number | undefined {
  const next = Math.max(tat ?? SEED_TAT, now) + INTERVAL_MS;
  return next - now > BURST_MS ? undefined : next;
}

// --- messages -------------------------------------------------------------------------------

interface AskBody {
  id: number;
  key: string;
  n: number;
}
interface AnswerBody {
  id: number;
  value: { granted: number };
}
/** Edge → supervisor: the asks under test. */
type Ask = ({ type: 'take' } & AskBody) | { type: 'take-batch'; asks: AskBody[] };
/** Supervisor → edge: the answers under test. */
type Answer = ({ type: 'answer' } & AnswerBody) | { type: 'answer-batch'; answers: AnswerBody[] };
/** Bench → child: start a timed round, send the round's latencies. */
type Control = { type: 'bench-run'; ms: number } | { type: 'bench-samples' };
/** Child → bench. `cpuUs` is the child's own user+system time over its round. */
type Report =
  | { type: 'bench-ready' }
  | { type: 'bench-done'; ops: number; cpuUs: number; messages: number }
  | { type: 'bench-samples'; latenciesUs: number[] };

function sendToParent(message: Ask | Report): void {
  if (!process.send) throw new Error('this role runs as a forked child');
  process.send(message);
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

// --- child roles ----------------------------------------------------------------------------

function clientKeys(edge: number): string[] {
  return Array.from({ length: KEYS_PER_EDGE }, (_, i) => `client-${edge}-${i}`);
}

/** An edge that asks the supervisor for every request, `depth` asks in flight. */
function ipcEdge(depth: number, batched: boolean, edge: number): void {
  const keys = clientKeys(edge);
  const waiting = new Map<number, { sentAt: number; resolve: () => void }>();
  let latencies: number[] = [];
  let nextId = 0;
  let nextKey = 0;
  let messages = 0;
  let queue: AskBody[] = [];

  const flush = (): void => {
    const asks = queue;
    queue = [];
    messages++;
    sendToParent({ type: 'take-batch', asks });
  };
  const take = (key: string): Promise<void> =>
    new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, { sentAt: performance.now(), resolve });
      if (!batched) {
        messages++;
        sendToParent({ type: 'take', id, key, n: 1 });
        return;
      }
      if (queue.length === 0) setImmediate(flush);
      queue.push({ id, key, n: 1 });
    });
  const settle = ({ id, value }: AnswerBody): void => {
    const entry = waiting.get(id);
    if (!entry || value.granted !== 1) throw new Error(`bad answer to ask ${id}`);
    waiting.delete(id);
    latencies.push((performance.now() - entry.sentAt) * 1000);
    entry.resolve();
  };
  const runRound = async (ms: number): Promise<void> => {
    latencies = [];
    messages = 0;
    let ops = 0;
    const cpu = process.cpuUsage();
    const deadline = performance.now() + ms;
    const lane = async (): Promise<void> => {
      while (performance.now() < deadline) {
        await take(keys[nextKey]!);
        nextKey = (nextKey + 1) % keys.length;
        ops++;
      }
    };
    await Promise.all(Array.from({ length: depth }, lane));
    sendToParent({ type: 'bench-done', ops, cpuUs: cpuMicros(cpu), messages });
  };

  process.on('message', (message: Answer | Control) => {
    switch (message.type) {
      case 'answer':
        settle(message);
        break;
      case 'answer-batch':
        for (const answer of message.answers) settle(answer);
        break;
      case 'bench-run':
        void runRound(message.ms);
        break;
      case 'bench-samples':
        sendToParent({ type: 'bench-samples', latenciesUs: roundSamples(latencies) });
        break;
    }
  });
  process.on('disconnect', () => process.exit(0));
  sendToParent({ type: 'bench-ready' });
}

/** 0.1 µs resolution is plenty, and keeps the samples message small. */
function roundSamples(values: number[]): number[] {
  return values.map((v) => Math.round(v * 10) / 10);
}

type LmdbVariant = 'lmdb-defaults' | 'store-options' | 'no-sync';

function lmdbOptions(variant: LmdbVariant): RootDatabaseOptions {
  switch (variant) {
    case 'lmdb-defaults':
      return { noSubdir: true };
    case 'store-options':
      // As shared/store-open.ts: a commit returns once it is on disk.
      return { noSubdir: true, eventTurnBatching: false, overlappingSync: false };
    case 'no-sync':
      return { noSubdir: true, noSync: true, noMetaSync: true };
  }
}

function openLmdb(path: string, variant: LmdbVariant): RootDatabase<TatRecord, string> {
  return open<TatRecord, string>(path, lmdbOptions(variant));
}

/** One GCRA update in its own write transaction; true when granted. */
function lmdbTake(db: RootDatabase<TatRecord, string>, key: string): boolean {
  return db.transactionSync(() => {
    const now = Date.now();
    const tat = gcra(db.get(key)?.tat, now);
    if (tat === undefined) return false;
    db.putSync(key, { tat });
    return true;
  });
}

/** An edge that updates the shared record in LMDB for every request. */
function lmdbEdge(path: string, variant: LmdbVariant, contended: boolean, edge: number): void {
  const db = openLmdb(path, variant);
  const keys = contended ? ['shared'] : clientKeys(edge);
  let latencies: number[] = [];
  let nextKey = 0;

  const runRound = (ms: number): void => {
    latencies = [];
    let ops = 0;
    const cpu = process.cpuUsage();
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      for (let i = 0; i < 16; i++) {
        const start = performance.now();
        if (!lmdbTake(db, keys[nextKey]!)) throw new Error('a take was refused');
        latencies.push((performance.now() - start) * 1000);
        nextKey = (nextKey + 1) % keys.length;
      }
      ops += 16;
    }
    sendToParent({ type: 'bench-done', ops, cpuUs: cpuMicros(cpu), messages: 0 });
  };

  process.on('message', (message: Control) => {
    if (message.type === 'bench-run') runRound(message.ms);
    else sendToParent({ type: 'bench-samples', latenciesUs: roundSamples(latencies) });
  });
  process.on('disconnect', () => {
    setTimeout(() => process.exit(0), 2000).unref();
    void db.close().finally(() => process.exit(0));
  });
  sendToParent({ type: 'bench-ready' });
}

// --- the bench (parent) ---------------------------------------------------------------------

interface Round {
  ops: number;
  wallMs: number;
  /** CPU of every process involved, µs. */
  cpuUs: number;
  /** CPU of the parent (the supervisor in the IPC cases), µs. */
  parentUs: number;
  messages: number;
  p50Us?: number;
  p99Us?: number;
}

interface CaseResult {
  mechanism: string;
  name: string;
  rounds: Round[];
  note: string;
}

const live = new Set<ChildProcess>();
let tempRoot: string | undefined;

function cleanup(): void {
  for (const child of live) child.kill('SIGKILL');
  if (tempRoot) rmSync(tempRoot, { recursive: true, force: true });
  tempRoot = undefined;
}

function forkChild(args: string[]): ChildProcess {
  const child = fork(SELF, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** The child's next report of `type`; rejects if the child exits first. */
function expect<T extends Report['type']>(
  child: ChildProcess,
  type: T,
): Promise<Extract<Report, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: Ask | Report): void => {
      if (message.type !== type) return;
      stop();
      resolve(message as Extract<Report, { type: T }>);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      stop();
      reject(new Error(`a child exited (${code ?? signal}) while the bench waited for ${type}`));
    };
    const stop = (): void => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function startChildren(args: (edge: number) => string[]): Promise<ChildProcess[]> {
  const children = Array.from({ length: EDGES }, (_, edge) => forkChild(args(edge)));
  await Promise.all(children.map((child) => expect(child, 'bench-ready')));
  return children;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
  });
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** One timed round over all children; latencies are fetched after the CPU window closes. */
async function timeRound(children: ChildProcess[], ms: number): Promise<Round> {
  const done = Promise.all(children.map((child) => expect(child, 'bench-done')));
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (const child of children) child.send({ type: 'bench-run', ms } satisfies Control);
  const reports = await done;
  const wallMs = performance.now() - start;
  const parentUs = cpuMicros(cpu);
  const samples = await Promise.all(
    children.map((child) => {
      const answer = expect(child, 'bench-samples');
      child.send({ type: 'bench-samples' } satisfies Control);
      return answer;
    }),
  );
  const sorted = Float64Array.from(samples.flatMap((s) => s.latenciesUs)).sort();
  return {
    ops: reports.reduce((sum, r) => sum + r.ops, 0),
    wallMs,
    cpuUs: parentUs + reports.reduce((sum, r) => sum + r.cpuUs, 0),
    parentUs,
    messages: reports.reduce((sum, r) => sum + r.messages, 0),
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
  };
}

/** Untimed warm-up, then the rounds; `ops` counts every operation, warm-up included. */
async function timeRounds(children: ChildProcess[], roundMs: number) {
  const warmup = await timeRound(children, WARMUP_MS);
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await timeRound(children, roundMs));
  return { rounds, ops: warmup.ops + rounds.reduce((sum, r) => sum + r.ops, 0) };
}

/** The supervisor's side: answers every ask from a Map of counters, as a real one would. */
function answerAsks(child: ChildProcess, counters: Map<string, number>): void {
  const take = ({ id, key, n }: AskBody): AnswerBody => {
    counters.set(key, (counters.get(key) ?? 0) + n);
    return { id, value: { granted: n } };
  };
  child.on('message', (message: Ask | Report) => {
    if (message.type === 'take') {
      child.send({ type: 'answer', ...take(message) } satisfies Answer);
    } else if (message.type === 'take-batch') {
      child.send({ type: 'answer-batch', answers: message.asks.map(take) } satisfies Answer);
    }
  });
}

async function ipcCase(depth: number, batched: boolean, roundMs: number): Promise<CaseResult> {
  const counters = new Map<string, number>();
  const children = Array.from({ length: EDGES }, (_, edge) =>
    forkChild(['ipc-edge', String(depth), batched ? '1' : '0', String(edge)]),
  );
  for (const child of children) answerAsks(child, counters);
  try {
    await Promise.all(children.map((child) => expect(child, 'bench-ready')));
    const { rounds, ops } = await timeRounds(children, roundMs);
    let counted = 0;
    for (const count of counters.values()) counted += count;
    if (counted !== ops) throw new Error(`supervisor counted ${counted} takes, edges made ${ops}`);
    const perMessage = median(rounds.map((r) => r.ops / r.messages));
    return {
      mechanism: 'ask supervisor (IPC)',
      name: `${batched ? 'batched per turn, ' : ''}${depth} in flight per edge`,
      rounds,
      note: batched ? `${perMessage.toFixed(1)} asks per message` : '1 message per ask',
    };
  } finally {
    await Promise.all(children.map(stopChild));
  }
}

/** Sum over all records of the updates their tats count. */
function countedUpdates(path: string, variant: LmdbVariant): Promise<number> {
  const db = openLmdb(path, variant);
  let counted = 0;
  for (const { value } of db.getRange()) counted += (value.tat - SEED_TAT) / INTERVAL_MS;
  return db.close().then(() => counted);
}

async function lmdbCase(
  variant: LmdbVariant,
  contended: boolean,
  dir: string,
  roundMs: number,
): Promise<CaseResult> {
  const path = join(dir, `${variant}-${contended ? 'contended' : 'distinct'}.mdb`);
  const children = await startChildren((edge) => [
    'lmdb-edge',
    path,
    variant,
    contended ? '1' : '0',
    String(edge),
  ]);
  let result: { rounds: Round[]; ops: number };
  try {
    result = await timeRounds(children, roundMs);
  } finally {
    await Promise.all(children.map(stopChild));
  }
  const counted = await countedUpdates(path, variant);
  if (counted !== result.ops) {
    throw new Error(`LMDB records count ${counted} updates, edges made ${result.ops}`);
  }
  return {
    mechanism: `LMDB, ${variant}`,
    name: contended ? 'one key (contended)' : `distinct keys (${KEYS_PER_EDGE} per edge)`,
    rounds: result.rounds,
    note: 'transactionSync per op',
  };
}

/** GCRA update in a local Map; the clock is read once per 1000 updates. */
function localRound(map: Map<string, TatRecord>, keys: string[], ms: number): Round {
  let ops = 0;
  let granted = 0;
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + ms;
  while (performance.now() < deadline) {
    const now = Date.now();
    for (let i = 0; i < 1000; i++) {
      const key = keys[next]!;
      next = next + 1 === keys.length ? 0 : next + 1;
      const record = map.get(key);
      const tat = gcra(record?.tat, now);
      if (tat === undefined) continue;
      if (record) record.tat = tat;
      else map.set(key, { tat });
      granted++;
    }
    ops += 1000;
  }
  const wallMs = performance.now() - start;
  const cpuUs = cpuMicros(cpu);
  if (granted !== ops) throw new Error('a local take was refused');
  return { ops, wallMs, cpuUs, parentUs: cpuUs, messages: 0 };
}

function localCase(roundMs: number): CaseResult {
  const map = new Map<string, TatRecord>();
  const keys = clientKeys(0);
  let ops = localRound(map, keys, WARMUP_MS).ops;
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const round = localRound(map, keys, roundMs);
    ops += round.ops;
    rounds.push(round);
  }
  let counted = 0;
  for (const { tat } of map.values()) counted += (tat - SEED_TAT) / INTERVAL_MS;
  if (counted !== ops) throw new Error(`the Map counts ${counted} updates, made ${ops}`);
  const nsPerOp = median(rounds.map((r) => (r.cpuUs * 1000) / r.ops));
  return {
    mechanism: 'local Map (lease floor)',
    name: `1 process, ${KEYS_PER_EDGE} keys`,
    rounds,
    note: `${nsPerOp.toFixed(1)} ns/op`,
  };
}

// --- report ---------------------------------------------------------------------------------

function fmt(value: number | undefined, digits?: number): string {
  if (value === undefined || Number.isNaN(value)) return '—';
  if (value >= 100 || digits === 0) return Math.round(value).toLocaleString('en-US');
  if (digits !== undefined) return value.toFixed(digits);
  return value.toFixed(value >= 10 ? 1 : value >= 1 ? 2 : 3);
}

function medianOf(rounds: Round[], pick: (round: Round) => number | undefined): number {
  const values = rounds.map(pick).filter((v): v is number => v !== undefined);
  return values.length === 0 ? Number.NaN : median(values);
}

function renderTable(results: CaseResult[]): string {
  const header = [
    'mechanism',
    'case',
    'ops/s',
    'ops/s min–max',
    'CPU µs/op (all procs)',
    'parent µs/op',
    'cores busy',
    'p50 µs',
    'p99 µs',
    'notes',
  ];
  const lines = results.map(({ mechanism, name, rounds, note }) => {
    const opsPerSec = rounds.map((r) => (r.ops * 1000) / r.wallMs);
    const { min, max } = range(opsPerSec);
    return [
      mechanism,
      name,
      fmt(median(opsPerSec), 0),
      `${fmt(min, 0)}–${fmt(max, 0)}`,
      fmt(medianOf(rounds, (r) => r.cpuUs / r.ops)),
      fmt(medianOf(rounds, (r) => r.parentUs / r.ops)),
      fmt(
        medianOf(rounds, (r) => r.cpuUs / 1000 / r.wallMs),
        2,
      ),
      fmt(medianOf(rounds, (r) => r.p50Us)),
      fmt(medianOf(rounds, (r) => r.p99Us)),
      note,
    ];
  });
  const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [row(header), row(header.map(() => '---')), ...lines.map(row)].join('\n');
}

/** The file system type holding `dir`, from /proc/mounts (Linux); undefined elsewhere. */
function fileSystemOf(dir: string): string | undefined {
  try {
    let best: { mount: string; type: string } | undefined;
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (!mount || !type) continue;
      const inside = dir === mount || dir.startsWith(mount.endsWith('/') ? mount : `${mount}/`);
      if (inside && mount.length > (best?.mount.length ?? -1)) best = { mount, type };
    }
    return best?.type;
  } catch {
    return undefined;
  }
}

function option(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at === -1 ? undefined : argv[at + 1];
}

async function main(argv: readonly string[]): Promise<void> {
  const roundMs = Number(option(argv, '--round-ms') ?? 2000);
  if (!Number.isSafeInteger(roundMs) || roundMs < 100) {
    throw new Error('--round-ms needs an integer >= 100');
  }
  const base = resolve(option(argv, '--dir') ?? tmpdir());
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });
  }
  const dir = mkdtempSync(join(base, 'limiter-bench-'));
  tempRoot = dir;
  const results: CaseResult[] = [];
  const run = async (result: Promise<CaseResult> | CaseResult): Promise<void> => {
    const done = await result;
    console.error(`done: ${done.mechanism}, ${done.name}`);
    results.push(done);
  };
  await run(ipcCase(1, false, roundMs));
  await run(ipcCase(PIPELINE_DEPTH, false, roundMs));
  await run(ipcCase(1, true, roundMs));
  await run(ipcCase(PIPELINE_DEPTH, true, roundMs));
  for (const variant of ['lmdb-defaults', 'store-options', 'no-sync'] as const) {
    await run(lmdbCase(variant, true, dir, roundMs));
    await run(lmdbCase(variant, false, dir, roundMs));
  }
  await run(localCase(roundMs));
  console.log(
    `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${availableParallelism()} cores, ` +
      `Node ${process.version}, ${EDGES} edges, LMDB in ${base} ` +
      `(${fileSystemOf(base) ?? 'unknown fs'}); median of ${ROUNDS} rounds of ${roundMs} ms\n`,
  );
  console.log(renderTable(results));
}

function runChild(argv: readonly string[]): void {
  const [role, ...args] = argv;
  if (role === 'ipc-edge') {
    ipcEdge(Number(args[0]), args[1] === '1', Number(args[2]));
  } else {
    lmdbEdge(args[0]!, args[1] as LmdbVariant, args[2] === '1', Number(args[3]));
  }
}

const role = process.argv[2];
if (role === 'ipc-edge' || role === 'lmdb-edge') {
  runChild(process.argv.slice(2));
} else {
  main(process.argv.slice(2))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(cleanup);
}

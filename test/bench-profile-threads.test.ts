// `--profile`'s per-thread CPU table: roles told from two synthetic /proc snapshots of a gateway
// (a supervisor and two edges, each with a crypto pool thread and its profiler thread), and the
// CPU per request of each role between them.
import t from 'tap';
import {
  classifyThreads,
  readThreadSnapshot,
  renderThreadCpuTable,
  type ThreadSnapshot,
  type ThreadStat,
  threadCpuTable,
} from '../bench/thread-cpu.js';

const SUPERVISOR = 100;
const EDGES = [200, 300];

function thread(pid: number, tid: number, ticks: number, comm = 'node'): ThreadStat {
  return { pid, tid, comm, ticks };
}

/**
 * Each edge: main (pid), a V8 platform thread, the main isolate's profiler thread, a libuv
 * thread, the pool thread (pid+10) and its profiler thread right after it. The supervisor:
 * main, one other thread, its profiler thread. `scale` multiplies every count.
 */
function snapshot(scale: number, extra: ThreadStat[] = []): ThreadSnapshot {
  const edge = (pid: number) => [
    thread(pid, pid, 30 * scale),
    thread(pid, pid + 1, 2 * scale),
    thread(pid, pid + 2, 4 * scale, 'v8:ProfEvntProc'),
    thread(pid, pid + 3, 0),
    thread(pid, pid + 10, 200 * scale),
    thread(pid, pid + 11, 5 * scale, 'v8:ProfEvntProc'),
  ];
  return {
    root: SUPERVISOR,
    threads: [
      thread(SUPERVISOR, SUPERVISOR, 20 * scale),
      thread(SUPERVISOR, SUPERVISOR + 1, 10 * scale),
      thread(SUPERVISOR, SUPERVISOR + 2, 3 * scale, 'v8:ProfEvntProc'),
      ...EDGES.flatMap(edge),
      ...extra,
    ],
  };
}

const ONE_POOL_THREAD_EACH = new Map(EDGES.map((pid) => [pid, { js: 1, pool: 1 }]));

t.test('roles: main threads by tid = pid, pool threads by their profiler thread', async (t) => {
  const { roles, workersUnknown } = classifyThreads(snapshot(1), ONE_POOL_THREAD_EACH);
  t.equal(workersUnknown, undefined);
  t.equal(roles.get(SUPERVISOR), 'supervisor main');
  t.equal(roles.get(SUPERVISOR + 1), 'supervisor other threads');
  t.equal(roles.get(SUPERVISOR + 2), 'V8 profiler threads');
  for (const pid of EDGES) {
    t.equal(roles.get(pid), 'edge main threads');
    t.equal(roles.get(pid + 1), 'edge other threads', 'a platform thread');
    t.equal(roles.get(pid + 3), 'edge other threads', 'the libuv thread before the pool thread');
    t.equal(roles.get(pid + 10), 'edge worker threads (crypto pool)');
    t.equal(roles.get(pid + 11), 'V8 profiler threads');
  }
});

t.test('pool threads not told apart when the profiles say otherwise', async (t) => {
  const two = new Map([
    [200, { js: 1, pool: 1 }],
    [300, { js: 2, pool: 2 }],
  ]);
  const { roles, workersUnknown } = classifyThreads(snapshot(1), two);
  t.match(workersUnknown, /edge 300: 1 found, 2 profiles/);
  t.equal(roles.get(210), 'edge other threads', 'no edge gets a pool row then');
  t.equal(roles.get(310), 'edge other threads');
  const none = classifyThreads(snapshot(1), new Map());
  t.match(none.workersUnknown, /edge 200: 1 found, 0 profiles/);
  const hooks = new Map([
    [200, { js: 1, pool: 1 }],
    [300, { js: 1, pool: 0 }],
  ]);
  const other = classifyThreads(snapshot(1), hooks);
  t.match(other.workersUnknown, /edge 300: 1 JS workers besides the pool's/);
  t.equal(other.roles.get(210), 'edge other threads');
});

t.test('the table: CPU per request by role, totals with and without the profiler', async (t) => {
  const before = snapshot(1);
  // One thread started during the run (counted from 0), one gone by the end (not counted).
  const after = snapshot(3, [thread(200, 250, 7)]);
  const gone = { ...before, threads: [...before.threads, thread(300, 399, 50)] };
  const table = threadCpuTable(gone, after, 400, classifyThreads(after, ONE_POOL_THREAD_EACH));
  const rows = Object.fromEntries(table.rows.map((r) => [r.role, r]));
  // Ticks are 10 ms; a delta of d ticks over 400 requests is d * 10_000 / 400 = 25 d µs.
  const us = (ticks: number) => ticks * 25;
  t.same(
    table.rows.map((r) => r.role),
    [
      'supervisor main',
      'supervisor other threads',
      'edge main threads',
      'edge worker threads (crypto pool)',
      'edge other threads',
      'V8 profiler threads',
      'total',
      'total without the profiler threads',
    ],
  );
  t.equal(rows['supervisor main']?.usPerRequest, us(40));
  t.equal(rows['supervisor other threads']?.usPerRequest, us(20));
  t.equal(rows['edge main threads']?.threads, 2);
  t.equal(rows['edge main threads']?.usPerRequest, us(2 * 60));
  t.equal(rows['edge worker threads (crypto pool)']?.usPerRequest, us(2 * 400));
  t.equal(rows['edge other threads']?.threads, 5, 'two platform, two libuv, the new one');
  t.equal(rows['edge other threads']?.usPerRequest, us(2 * 4 + 7), 'the new thread from 0');
  t.equal(rows['V8 profiler threads']?.usPerRequest, us(6 + 2 * (8 + 10)));
  const all = 40 + 20 + 120 + 800 + 15 + 42;
  t.equal(rows.total?.usPerRequest, us(all));
  t.equal(rows.total?.cpuSec, all / 100);
  t.equal(rows['total without the profiler threads']?.usPerRequest, us(all - 42));
  t.equal(table.exited, 1);
  t.equal(table.busiest[0]?.ticks, 400, 'a pool thread first');
  t.equal(table.busiest[0]?.role, 'edge worker threads (crypto pool)');
  t.ok(table.busiest.length <= 8);

  const md = renderThreadCpuTable(table);
  t.match(md, /## CPU per request by thread \(timed run\)/);
  t.match(md, /\| edge worker threads \(crypto pool\) \| 2 \| 8\.00 \| 20000 \| 77\.1 \|/);
  t.match(md, /\| total \| 16 \| 10\.37 \| 25925 \| 100\.0 \|/);
  t.match(md, /threads that exited during the run \(not counted\): 1/);
  t.match(md, /\| 300 \| 310 \| node \| edge worker threads \(crypto pool\) \| 4\.00 \| 10000 \|/);
});

t.test('no pool row when not told apart; no profiler rows without a profiler', async (t) => {
  const plain = (s: ThreadSnapshot): ThreadSnapshot => ({
    ...s,
    threads: s.threads.filter((x) => x.comm !== 'v8:ProfEvntProc'),
  });
  const before = plain(snapshot(1));
  const after = plain(snapshot(2));
  const table = threadCpuTable(before, after, 0, classifyThreads(after, ONE_POOL_THREAD_EACH));
  t.same(
    table.rows.map((r) => r.role),
    [
      'supervisor main',
      'supervisor other threads',
      'edge main threads',
      'edge other threads',
      'total',
    ],
  );
  t.ok(
    table.rows.every((r) => r.usPerRequest === 0),
    'no request: 0, not a division by zero',
  );
  t.match(renderThreadCpuTable(table), /crypto pool's threads are in "edge other threads"/);
});

t.test('a snapshot of this process reads its own threads from /proc', async (t) => {
  const own = readThreadSnapshot(process.pid);
  if (own === undefined) {
    t.equal(process.platform === 'linux', false, 'only off Linux is there no /proc');
    return;
  }
  const main = own.threads.find((x) => x.tid === process.pid);
  t.ok(main, 'the main thread is tid = pid');
  t.ok((main?.ticks ?? -1) >= 0);
  t.equal(readThreadSnapshot(2 ** 30), undefined, 'no such process');
});

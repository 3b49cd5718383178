import t from 'tap';
import { Fleet, type FleetOptions, type FleetPlan } from '../supervisor/fleet.js';
import {
  FakeClock,
  type FakeEdge,
  fakePlan,
  fakePorts,
  fakeSpawner,
  memoryLog,
  type Script,
  settle,
} from './helpers/fake-edge.js';

const TIMEOUTS = {
  startMs: 1_000,
  listenMs: 1_000,
  applyMs: 500,
  rollDrainMs: 3_000,
  killGraceMs: 200,
};

/** A fleet of fake edges; `script` picks each spawned edge's behaviour. */
function setup(script?: (slot: number, plan: FleetPlan, n: number) => Script, picked?: number) {
  const clock = new FakeClock();
  const log = memoryLog();
  const spawner = fakeSpawner(script);
  const ports = fakePorts(picked);
  const options: FleetOptions = {
    log,
    spawn: spawner.spawn,
    reservePort: ports.reservePort,
    clock,
    timeouts: TIMEOUTS,
  };
  return { fleet: new Fleet(options), clock, log, spawned: spawner.spawned, ports };
}

/** The error a promise rejects with (undefined if it resolves), without an unhandled rejection. */
const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (err: unknown) => err,
  );

const live = (edges: { exited: boolean }[]) => edges.filter((e) => !e.exited);

t.test('start: every edge is started, then listens on the reserved port', async (t) => {
  const { fleet, spawned, ports } = setup();
  await fleet.start(fakePlan(1));
  t.equal(spawned.length, 3);
  t.same(ports.asked, [{ host: '127.0.0.1', port: 8080 }], 'the address was held before');
  t.equal(ports.released, 1, 'and released before the edges bound it');
  for (const edge of spawned) {
    t.same(edge.types, ['start', 'listen']);
    t.match(edge.received[1], { type: 'listen', host: '127.0.0.1', port: 8080 });
  }
  t.same(fleet.address, { host: '127.0.0.1', port: 8080 });
  t.same(
    fleet.edges.map((e) => e.pid),
    spawned.map((e) => e.pid),
  );
});

t.test(
  'port 0: the port picked at start is where every edge listens, and a roll keeps it',
  async (t) => {
    const { fleet, spawned, ports } = setup(undefined, 41_234);
    await fleet.start(fakePlan(1, { port: 0 }));
    t.same(ports.asked, [{ host: '127.0.0.1', port: 0 }]);
    for (const edge of spawned) t.match(edge.received[1], { type: 'listen', port: 41_234 });
    t.equal(fleet.address?.port, 41_234);
    t.equal(await fleet.apply(fakePlan(2, { port: 0, instances: 2 })), 'rolled');
    t.equal(ports.asked.length, 1, 'no new port for a roll on the same host');
    for (const edge of spawned.slice(3))
      t.match(edge.received[1], { type: 'listen', port: 41_234 });
    t.equal(fleet.address?.port, 41_234);
    const count = spawned.length;
    t.equal(
      await fleet.apply(fakePlan(3, { port: 41_234, instances: 2 })),
      'applied',
      'naming the port in use is no move',
    );
    t.equal(await fleet.apply(fakePlan(4, { port: 0, instances: 2 })), 'applied', 'nor is 0 again');
    t.equal(spawned.length, count, 'no new edge');
  },
);

t.test(
  'partial apply: an edge that refuses is drained and replaced on the new generation',
  async (t) => {
    const { fleet, spawned, log } = setup((_slot, _plan, n) =>
      n === 1 ? { 'apply-config': 'refuse' } : {},
    );
    await fleet.start(fakePlan(1));
    t.equal(await fleet.apply(fakePlan(2)), 'applied');
    await settle();
    const [a, refused, c, replacement] = spawned;
    t.same(a?.generations, [1, 2], 'the others keep the new generation');
    t.same(c?.generations, [1, 2]);
    t.equal(refused?.types.at(-1), 'drain', 'the refusing edge is drained');
    t.equal(refused?.exited, true);
    t.equal(replacement?.slot, 1, 'its slot gets a new edge');
    t.same(replacement?.generations, [2], 'which starts on the new generation');
    t.same(replacement?.types, ['start', 'listen']);
    t.equal(fleet.generation, 2);
    t.equal(live(spawned).length, 3);
    t.ok(log.lines.some((l) => l.msg === 'edges failed to apply the new config: replacing them'));
  },
);

t.test('partial apply: an edge that never answers is killed and replaced', async (t) => {
  const { fleet, spawned, clock } = setup((_slot, _plan, n) =>
    n === 2 ? { 'apply-config': 'ignore' } : {},
  );
  await fleet.start(fakePlan(1));
  const applying = fleet.apply(fakePlan(2));
  await clock.advance(TIMEOUTS.applyMs);
  t.equal(await applying, 'applied');
  await settle();
  const silent = spawned[2];
  t.same(silent?.signals, ['SIGKILL']);
  t.equal(spawned[3]?.slot, 2);
  t.same(spawned[3]?.generations, [2]);
  t.equal(live(spawned).length, 3);
});

t.test('no edge applies: apply rejects and the old generation stays everywhere', async (t) => {
  const { fleet, spawned } = setup(() => ({ 'apply-config': 'refuse' }));
  await fleet.start(fakePlan(1));
  await t.rejects(fleet.apply(fakePlan(2)), { code: 'CONFIG_NOT_APPLIED' });
  await settle();
  t.equal(fleet.generation, 1);
  t.equal(spawned.length, 3, 'nobody replaced: every edge kept generation 1');
  t.equal(live(spawned).length, 3);
  t.same(
    fleet.edges.map((e) => e.generation),
    [1, 1, 1],
  );
});

t.test('no edge applies, one timed out: it is replaced on the old generation', async (t) => {
  const { fleet, spawned, clock } = setup((_slot, _plan, n) =>
    n === 0 ? { 'apply-config': 'ignore' } : n < 3 ? { 'apply-config': 'refuse' } : {},
  );
  await fleet.start(fakePlan(1));
  const applying = failure(fleet.apply(fakePlan(2)));
  await clock.advance(TIMEOUTS.applyMs);
  t.match(await applying, { code: 'CONFIG_NOT_APPLIED' });
  await settle();
  t.same(spawned[0]?.signals, ['SIGKILL'], 'the silent edge may still apply later: killed');
  t.same(spawned[3]?.generations, [1], 'its replacement runs the old generation');
  t.equal(fleet.generation, 1);
});

t.test('roll: new edges listen first, then the old ones drain', async (t) => {
  const { fleet, spawned } = setup();
  await fleet.start(fakePlan(1));
  const old = [...spawned];
  const rolling = fleet.apply(fakePlan(2, { instances: 2 }));
  t.equal(await rolling, 'rolled');
  const fresh = spawned.slice(3);
  t.equal(fresh.length, 2);
  for (const edge of fresh) t.same(edge.types, ['start', 'listen']);
  for (const edge of old) {
    t.same(edge.types, ['start', 'listen', 'drain']);
    t.equal(edge.exited, true);
  }
  t.same(fleet.edges.map((e) => e.pid).sort(), fresh.map((e) => e.pid).sort());
  t.equal(fleet.generation, 2);
});

t.test(
  'roll rollback: a new edge fails to start, the old ones keep serving the old plan',
  async (t) => {
    const { fleet, spawned, clock } = setup((_slot, plan, n) =>
      plan.snapshot.generation === 2 && n === 4 ? { start: 'fatal' } : {},
    );
    await fleet.start(fakePlan(1));
    const old = [...spawned];
    await t.rejects(fleet.apply(fakePlan(2, { port: 9090 })), {
      code: 'EDGE_START_FAILED',
      message: /cannot start: boom/,
    });
    const fresh = spawned.slice(3);
    t.equal(fresh.length, 3);
    await clock.advance(TIMEOUTS.killGraceMs);
    for (const edge of fresh) t.equal(edge.exited, true, `new edge ${edge.slot} stopped`);
    for (const edge of old) {
      t.equal(edge.exited, false, `old edge ${edge.slot} still running`);
      t.notOk(edge.types.includes('drain'));
    }
    t.equal(fleet.generation, 1);
    t.same(fleet.address, { host: '127.0.0.1', port: 8080 });
    // The old plan stays current: a crash now is replaced on it, at the old address.
    old[0]?.exit(null, 'SIGSEGV');
    await clock.advance(100);
    const replacement = spawned.at(-1);
    t.equal(replacement?.slot, 0);
    t.same(replacement?.generations, [1]);
    t.match(replacement?.received[1], { type: 'listen', port: 8080 });
  },
);

t.test('roll to another host on the same port: our own port is not held first', async (t) => {
  const { fleet, spawned, ports } = setup();
  await fleet.start(fakePlan(1));
  t.equal(await fleet.apply(fakePlan(2, { host: '0.0.0.0' })), 'rolled');
  t.equal(ports.asked.length, 1, 'only the start held the port');
  for (const edge of spawned.slice(3)) t.match(edge.received[1], { host: '0.0.0.0', port: 8080 });
  t.same(fleet.address, { host: '0.0.0.0', port: 8080 });
});

t.test('roll to a taken port: refused before any edge starts', async (t) => {
  const { fleet, spawned, ports } = setup();
  await fleet.start(fakePlan(1));
  ports.taken.add('127.0.0.1:9090');
  await t.rejects(fleet.apply(fakePlan(2, { port: 9090 })), { code: 'PORT_IN_USE' });
  t.equal(spawned.length, 3, 'no new edge');
  t.equal(live(spawned).length, 3);
  t.equal(fleet.generation, 1);
});

t.test('start fails when an edge reports a fatal error: the others are stopped', async (t) => {
  const { fleet, spawned, clock, ports } = setup((_slot, _plan, n) =>
    n === 1 ? { start: 'fatal' } : {},
  );
  const seen: string[] = [];
  fleet.on('fatal', (event, edge) => seen.push(`${edge.slot}: ${event.reason}`));
  await t.rejects(fleet.start(fakePlan(1)), { code: 'EDGE_START_FAILED', message: /boom/ });
  await clock.advance(TIMEOUTS.killGraceMs);
  t.same(seen, ['1: cannot start: boom'], 'the fatal event reached its handler');
  t.equal(live(spawned).length, 0, 'nothing left running');
  t.equal(ports.released, 1, 'the port was released');
  for (const edge of spawned) t.notOk(edge.types.includes('listen'), 'nobody listened');
});

t.test('start fails when an edge exits before listening', async (t) => {
  const { fleet, spawned } = setup((_slot, _plan, n) => (n === 2 ? { listen: 'exit' } : {}));
  await t.rejects(fleet.start(fakePlan(1)), { code: 'EDGE_START_FAILED', message: /exited/ });
  await settle();
  t.equal(live(spawned).length, 0);
  t.same(fleet.edges, []);
});

t.test('start fails when an edge never answers: timeout, then it is killed', async (t) => {
  const { fleet, spawned, clock } = setup((_slot, _plan, n) =>
    n === 0 ? { start: 'ignore', drain: 'ignore' } : {},
  );
  const starting = failure(fleet.start(fakePlan(1)));
  await clock.advance(TIMEOUTS.startMs);
  // Start rejects once the edges it started are gone: the silent one only after its SIGKILL.
  await clock.advance(TIMEOUTS.killGraceMs);
  t.match(await starting, { code: 'EDGE_START_FAILED', message: /did not answer start/ });
  t.same(spawned[0]?.signals, ['SIGKILL'], 'the silent edge is killed');
  t.equal(live(spawned).length, 0);
});

t.test('a second start on a taken port is refused before spawning', async (t) => {
  const { fleet, spawned, ports } = setup();
  ports.taken.add('127.0.0.1:8080');
  await t.rejects(fleet.start(fakePlan(1)), { code: 'PORT_IN_USE', message: /127.0.0.1:8080/ });
  t.equal(spawned.length, 0);
});

t.test(
  'crash restarts back off from 100 ms doubling to 5 s, reset after 10 s of life',
  async (t) => {
    const { fleet, spawned, clock } = setup();
    await fleet.start(fakePlan(1, { instances: 1 }));
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      spawned.at(-1)?.exit(null, 'SIGSEGV');
      await settle();
      const [delay] = clock.pendingDelays;
      delays.push(delay ?? -1);
      const before = spawned.length;
      await clock.advance((delay ?? 0) - 1);
      t.equal(spawned.length, before, `no restart before ${delay} ms`);
      await clock.advance(1);
      t.equal(spawned.length, before + 1, `restarted after ${delay} ms`);
    }
    t.same(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    await clock.advance(10_000);
    spawned.at(-1)?.exit(null, 'SIGSEGV');
    await settle();
    t.same(clock.pendingDelays, [0], 'after 10 s of life the restart is immediate');
    await clock.advance(0);
    spawned.at(-1)?.exit(null, 'SIGSEGV');
    await settle();
    t.same(clock.pendingDelays, [100], 'and the backoff starts over');
    const last = spawned.at(-1);
    t.same(last?.types, ['start', 'listen'], 'every replacement listens on the fleet port');
  },
);

t.test('a replacement edge that fails to start is retried with backoff', async (t) => {
  const { fleet, spawned, clock } = setup((_slot, _plan, n) =>
    n === 1 ? { start: 'refuse' } : {},
  );
  await fleet.start(fakePlan(1, { instances: 1 }));
  spawned[0]?.exit(null, 'SIGSEGV');
  await clock.advance(100);
  t.equal(spawned.length, 2);
  await settle();
  t.same(spawned[1]?.signals, ['SIGKILL'], 'the refusing replacement is killed');
  t.same(clock.pendingDelays, [200], 'and the next attempt backs off further');
  await clock.advance(200);
  t.same(spawned[2]?.types, ['start', 'listen']);
  t.equal(live(spawned).length, 1);
});

t.test('stop: every edge drains; one that outlives the timeout is killed', async (t) => {
  const { fleet, spawned, clock } = setup((_slot, _plan, n) =>
    n === 1 ? { drain: 'ignore' } : {},
  );
  await fleet.start(fakePlan(1));
  let stopped = false;
  const stopping = fleet.stop(1_000).then(() => {
    stopped = true;
  });
  await settle();
  for (const edge of spawned) t.match(edge.received.at(-1), { type: 'drain', timeoutMs: 1_000 });
  t.equal(live(spawned).length, 1, 'two drained at once');
  await clock.advance(1_000 + TIMEOUTS.killGraceMs - 1);
  t.equal(stopped, false, 'stop waits for the last one');
  await clock.advance(1);
  await stopping;
  t.same(spawned[1]?.signals, ['SIGKILL']);
  t.equal(live(spawned).length, 0);
  spawned[0]?.emit('exit', 0, null);
  await clock.advance(10_000);
  t.equal(spawned.length, 3, 'nothing is restarted after stop');
});

t.test('late, unknown and malformed messages are logged and ignored', async (t) => {
  const { fleet, spawned, clock, log } = setup((_slot, _plan, n) =>
    n === 0 ? { 'apply-config': 'ignore' } : {},
  );
  await fleet.start(fakePlan(1, { instances: 2 }));
  const body = { type: 'apply-config', snapshot: fakePlan(2).snapshot } as const;
  const pending = fleet.broadcast(body, 300);
  await clock.advance(300);
  t.same(
    (await pending).map((r) => r.ok),
    [false, true],
    'the slow edge timed out',
  );
  const [slow, other] = spawned as [FakeEdge, FakeEdge];
  const request = slow.received.at(-1);
  const id = request && 'id' in request ? request.id : -1;
  // The answer comes after the timeout: nobody waits for it any more.
  slow.emit('message', { type: 'reply', id, value: { generation: 2 } });
  other.emit('message', { type: 'reply', id: 9_999, value: { generation: 2 } });
  other.emit('message', { type: 'config-applied', generation: 2 });
  other.emit('message', { type: 'reply', id: 'x' });
  other.emit('message', 'hello');
  await settle();
  const warned = log.lines.filter((l) => l.msg === 'late or unknown reply from an edge, ignored');
  t.same(
    warned.map((l) => l.fields?.id),
    [id, 9_999],
    'a late reply and an unknown id',
  );
  const dropped = log.lines.filter((l) => l.msg === 'malformed message from an edge, dropped');
  t.same(
    dropped.map((l) => l.fields?.type),
    ['config-applied', 'reply', 'string'],
  );
  t.equal(live(spawned).length, 2, 'nothing was acted on');
  t.equal(fleet.generation, 1);
  slow.script = {};
  t.equal(await fleet.apply(fakePlan(3, { instances: 2 })), 'applied', 'the channel still works');
  t.same(slow.generations, [1, 2, 3]);
});

t.test('broadcast collects each edge outcome without rejecting', async (t) => {
  const { fleet, clock } = setup((_slot, _plan, n) =>
    n === 0 ? { 'apply-config': 'refuse' } : n === 1 ? { 'apply-config': 'ignore' } : {},
  );
  await fleet.start(fakePlan(1));
  const pending = fleet.broadcast({ type: 'apply-config', snapshot: fakePlan(5).snapshot }, 300);
  await clock.advance(300);
  const results = await pending;
  t.same(
    results.map((r) => (r.ok ? `${r.slot}:ok:${r.value.generation}` : `${r.slot}:${r.error.code}`)),
    ['0:IPC_REFUSED', '1:IPC_TIMEOUT', '2:ok:5'],
  );
});

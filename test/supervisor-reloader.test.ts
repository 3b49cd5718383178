import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import type { Loaded } from '../supervisor/config-source.js';
import type { FleetPlan } from '../supervisor/fleet.js';
import { FleetError } from '../supervisor/fleet-error.js';
import { Reloader, type ReloadOutcome } from '../supervisor/reloader.js';
import { fakePlan, memoryLog, settle } from './helpers/fake-edge.js';

function loaded(plan: FleetPlan): Loaded {
  return { plan, rewritten: 0, tls: undefined, loaded: { warnings: [] } } as unknown as Loaded;
}

/** A reloader over a scripted source: each load takes the next step (a plan or an error). */
function setup(
  steps: (FleetPlan | Error)[],
  apply: (plan: FleetPlan) => Promise<'applied' | 'rolled'>,
) {
  const log = memoryLog();
  const outcomes: ReloadOutcome[] = [];
  const applied: number[] = [];
  let loads = 0;
  const reloader = new Reloader({
    source: {
      load: async () => {
        const step = steps[loads++];
        if (!step) throw new Error('no more steps');
        if (step instanceof Error) throw step;
        return loaded(step);
      },
    },
    fleet: {
      apply: async (plan) => {
        applied.push(plan.snapshot.generation);
        return apply(plan);
      },
      address: { host: '127.0.0.1', port: 8080 },
    },
    log,
    initial: loaded(fakePlan(1)),
    logLoad: () => {},
    onSettled: (outcome) => outcomes.push(outcome),
  });
  return { reloader, log, outcomes, applied, loads: () => loads };
}

const reloadLines = (log: ReturnType<typeof memoryLog>) =>
  log.lines.filter((l) => l.fields?.reload !== undefined).map((l) => l.fields?.reload);

t.test('every outcome is logged with a machine-readable field', async (t) => {
  const same = fakePlan(2);
  same.snapshot.raw = fakePlan(1).snapshot.raw;
  const rolledPlan = fakePlan(4, { port: 9090 });
  const { reloader, log, outcomes, applied } = setup(
    [
      same,
      fakePlan(3),
      rolledPlan,
      new ConfigError([
        { file: 'config.json', key: 'port', message: 'too big' },
        { file: 'routes.yml', key: 'routes[0]', message: 'bad' },
      ]),
      new ConfigError([
        { file: '/c/certs/key.pem', key: '(file)', message: 'does not match the certificate' },
      ]),
      fakePlan(5),
    ],
    async (plan) => {
      if (plan.snapshot.generation === 5) throw new FleetError('CONFIG_NOT_APPLIED', 'no edge');
      return plan.port === 9090 ? 'rolled' : 'applied';
    },
  );
  for (let i = 0; i < 6; i++) {
    reloader.trigger('SIGHUP');
    await settle();
  }
  t.same(outcomes, ['unchanged', 'applied', 'rolled', 'invalid', 'invalid', 'failed']);
  t.same(reloadLines(log), [
    'unchanged',
    'applied',
    'rolled',
    'invalid',
    'invalid',
    'invalid',
    'failed',
  ]);
  t.same(applied, [3, 4, 5], 'unchanged and invalid loads never reach the fleet');
  const cert = log.lines.find((l) => l.fields?.file === '/c/certs/key.pem');
  t.match(cert?.fields, { reload: 'invalid', key: '(file)', rule: /does not match/ });
  const failed = log.lines.find((l) => l.fields?.reload === 'failed');
  t.match(failed?.fields, { code: 'CONFIG_NOT_APPLIED', trigger: 'SIGHUP' });
});

t.test('a failed reload keeps comparing against the running config', async (t) => {
  const { reloader, outcomes } = setup([fakePlan(2), fakePlan(3)], async (plan) => {
    if (plan.snapshot.generation === 2) throw new FleetError('EDGE_START_FAILED', 'x');
    return 'applied';
  });
  reloader.trigger('file change');
  await settle();
  reloader.trigger('file change');
  await settle();
  t.same(outcomes, ['failed', 'applied'], 'the same change is tried again, not called unchanged');
});

t.test('triggers during a reload cause exactly one more pass', async (t) => {
  let release: () => void = () => {};
  const { reloader, outcomes, log, loads } = setup([fakePlan(2), fakePlan(3)], (plan) =>
    plan.snapshot.generation === 2
      ? new Promise((resolve) => {
          release = () => resolve('applied');
        })
      : Promise.resolve('applied'),
  );
  reloader.trigger('file change');
  await settle();
  reloader.trigger('SIGHUP');
  reloader.trigger('file change');
  reloader.trigger('SIGHUP');
  await settle();
  t.equal(loads(), 1, 'nothing runs beside the reload in progress');
  release();
  await settle();
  t.equal(loads(), 2, 'one more pass for all three');
  t.same(outcomes, ['applied', 'applied']);
  const second = log.lines.filter((l) => l.fields?.reload === 'applied')[1];
  t.equal(second?.fields?.trigger, 'SIGHUP,file change');
});

t.test("a route's cert or CA file replaced on disk is a change, routes.yml alike", async (t) => {
  const sameRaw = (generation: number, files: Record<string, string>) => {
    const plan = fakePlan(generation);
    plan.snapshot.raw = fakePlan(1).snapshot.raw;
    plan.snapshot.routeFiles = files;
    return plan;
  };
  const { reloader, outcomes, applied } = setup(
    [sameRaw(2, { '/c/client.p12': 'AAAA' }), sameRaw(3, { '/c/client.p12': 'AAAA' })],
    async () => 'applied',
  );
  reloader.trigger('SIGHUP');
  await settle();
  reloader.trigger('SIGHUP');
  await settle();
  t.same(outcomes, ['applied', 'unchanged'], 'new bytes applied, the same bytes again are not');
  t.same(applied, [2]);
});

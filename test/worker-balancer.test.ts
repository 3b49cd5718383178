import { Readable } from 'node:stream';
import t from 'tap';
import { type Dispatcher, Pool } from 'undici';
import { parseConfig } from '../conf/parse.js';
import type { LogFields, Logger } from '../shared/log.js';
import {
  Backend,
  Balancer,
  COOLDOWN_FIRST_MS,
  COOLDOWN_MAX_MS,
  PASSIVE_FAILS,
} from '../worker/balancer.js';
import { HealthChecker } from '../worker/health-check.js';
import { type Attempt, classify, firstAttempt, nextAttempt } from '../worker/upstream-relay.js';
import { startUpstream } from './helpers/upstream.js';

function captureLog(): Logger & { lines: { level: string; msg: string; fields?: LogFields }[] } {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) => {
    lines.push({ level, msg, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function member(name: string, weight: number, pool = {} as Pool): Backend {
  return new Backend({
    origin: `http://${name}.test`,
    targetPath: '/',
    targetQuery: '',
    weight,
    pool,
  });
}

function counts(b: Balancer, n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const m = b.pick();
    const key = m?.origin ?? 'none';
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

t.test('weights 3 and 1: exactly 75% / 25% over 4,000 picks, spread out', async (t) => {
  const a = member('a', 3);
  const b = member('b', 1);
  const balancer = new Balancer([a, b], captureLog(), '/api');
  const order = Array.from({ length: 4_000 }, () => balancer.pick());
  t.equal(order.filter((m) => m === a).length, 3_000);
  t.equal(order.filter((m) => m === b).length, 1_000);
  // Smooth: every window of 4 consecutive picks holds 3 a and 1 b (never a a a a).
  for (let i = 0; i + 4 <= order.length; i++) {
    const window = order.slice(i, i + 4);
    if (window.filter((m) => m === b).length !== 1) {
      t.fail(`window at ${i} is not 3:1`);
      break;
    }
  }
});

t.test('other weights keep their proportions exactly', async (t) => {
  const ms = [member('a', 5), member('b', 2), member('c', 1)];
  const c = counts(new Balancer(ms, captureLog(), '/'), 8 * 500);
  t.same([...c.entries()].sort(), [
    ['http://a.test', 2500],
    ['http://b.test', 1000],
    ['http://c.test', 500],
  ]);
});

t.test('backups (weight -1) take traffic only while no weighted member is eligible', async (t) => {
  const a = member('a', 2);
  const b = member('b', 1);
  const x = member('x', -1);
  const y = member('y', -1);
  const balancer = new Balancer([a, b, x, y], captureLog(), '/');
  t.notOk([...counts(balancer, 300).keys()].some((k) => k.includes('x') || k.includes('y')));
  a.checkDown = true;
  t.same([...counts(balancer, 30).keys()], ['http://b.test'], 'one weighted member left');
  b.downUntil = Date.now() + 60_000;
  const c = counts(balancer, 40);
  t.same([...c.entries()].sort(), [
    ['http://x.test', 20],
    ['http://y.test', 20],
  ]);
  x.checkDown = true;
  y.checkDown = true;
  t.equal(balancer.pick(), undefined, 'everything down');
  a.checkDown = false;
  t.equal(balancer.pick(), a, 'a weighted member back: backups idle again');
});

t.test('pick skips the backends a request already tried, backups last', async (t) => {
  const a = member('a', 1);
  const b = member('b', 1);
  const x = member('x', -1);
  const balancer = new Balancer([a, b, x], captureLog(), '/');
  t.equal(balancer.pick([a]), b);
  t.equal(balancer.pick([b]), a);
  t.equal(balancer.pick([a, b]), x);
  t.equal(balancer.pick([a, b, x]), undefined);
});

t.test(
  'passive health: N failures in a row, a cool-down that doubles, a success resets',
  async (t) => {
    const log = captureLog();
    const a = member('a', 1);
    const b = member('b', 1);
    const balancer = new Balancer([a, b], log, '/api');
    for (let i = 1; i < PASSIVE_FAILS; i++) balancer.failed(a, 'ECONNREFUSED');
    t.ok(a.eligible(Date.now()), `still up after ${PASSIVE_FAILS - 1} failures`);
    balancer.succeeded(a);
    t.equal(a.fails, 0, 'a success breaks the streak');
    for (let i = 0; i < PASSIVE_FAILS; i++) balancer.failed(a, 'ECONNREFUSED');
    t.notOk(a.eligible(Date.now()), 'down after the Nth failure in a row');
    t.equal(a.cooldownMs, COOLDOWN_FIRST_MS);
    t.same([...counts(balancer, 10).keys()], ['http://b.test'], 'skipped while cooling down');
    balancer.failed(a, 'ECONNREFUSED');
    t.equal(
      a.cooldownMs,
      COOLDOWN_FIRST_MS,
      'failures during the cool-down (in flight) do not grow it',
    );
    t.equal(log.lines.filter((l) => l.msg.startsWith('backend down')).length, 1, 'logged once');
    // The cool-down ends; the probe fails: twice as long, then capped.
    const expected = [2_000, 4_000, 8_000, 16_000, COOLDOWN_MAX_MS, COOLDOWN_MAX_MS];
    for (const ms of expected) {
      a.downUntil = Date.now() - 1;
      t.ok(a.eligible(Date.now()), 'eligible again once the cool-down is over');
      balancer.failed(a, 'ECONNREFUSED');
      t.equal(a.cooldownMs, ms);
      t.notOk(a.eligible(Date.now()));
    }
    t.equal(balancer.retryAfterSeconds(), 1, 'b is up: no wait');
    b.downUntil = Date.now() + 4_500;
    t.equal(balancer.retryAfterSeconds(), 5, 'the earliest return, rounded up');
    a.downUntil = Date.now() - 1;
    balancer.succeeded(a);
    t.equal(a.fails, 0);
    t.equal(a.cooldownMs, 0, 'the next outage starts at the first cool-down again');
    t.ok(log.lines.some((l) => l.msg === 'backend up again'));
  },
);

t.test('adopt: a reload keeps the health of the same URLs', async (t) => {
  const old = new Balancer([member('a', 1), member('b', 1)], captureLog(), '/');
  old.members[0]!.checkDown = true;
  old.members[1]!.fails = 2;
  const next = new Balancer([member('b', 3), member('c', 1)], captureLog(), '/');
  next.adopt(old);
  t.equal(next.members[0]!.fails, 2);
  t.equal(next.members[1]!.fails, 0);
  t.notOk(next.members.some((m) => m.checkDown));
});

t.test('nextAttempt: the one decision of "again, and where"', async (t) => {
  const a = member('a', 1);
  const b = member('b', 1);
  const balancer = new Balancer([a, b], captureLog(), '/');
  const pick = (tried: readonly Backend[]) => balancer.pick(tried);
  const get: Dispatcher.DispatchOptions = { path: '/', method: 'GET', body: null };
  const post = (read: boolean): Dispatcher.DispatchOptions => {
    const body = Readable.from([Buffer.from('x')]);
    if (read) body.read();
    return { path: '/', method: 'POST', body };
  };
  const first: Attempt = firstAttempt(a);

  const failover = nextAttempt('down', get, false, first, pick);
  t.equal(failover?.backend, b, 'refused: the other backend');
  t.same(failover?.tried, [a]);
  t.equal(nextAttempt('down', get, false, failover!, pick), undefined, 'all tried: stop');
  t.equal(
    nextAttempt('down', post(false), false, first, pick)?.backend,
    b,
    'a POST that never left fails over',
  );
  t.equal(
    nextAttempt('down', post(true), true, first, pick),
    undefined,
    'a body that started streaming is never replayed',
  );
  t.equal(
    nextAttempt('down', { path: '/', method: 'POST', body: null }, true, first, pick),
    undefined,
    'a POST that was written is not replayed, even without a body',
  );
  t.equal(
    nextAttempt('down', get, true, first, pick)?.backend,
    b,
    'an idempotent GET reset on a fresh connection goes to the next backend',
  );
  const stale = nextAttempt('stale', get, true, first, pick);
  t.equal(stale?.backend, a, 'a dead keep-alive connection: the same backend');
  t.equal(stale?.fresh, true, '...on a new connection');
  t.equal(nextAttempt('other', get, false, first, pick), undefined, 'timeouts and the rest: no');
  t.equal(
    nextAttempt('down', get, false, firstAttempt(undefined), undefined),
    undefined,
    'a route without backends has nowhere to fail over to',
  );
  const once = nextAttempt('stale', get, true, firstAttempt(undefined), undefined);
  t.equal(once?.fresh, true, 'but its stale keep-alive retry stays');
});

t.test(
  'health checks: status, timeout and refusal take a backend out; a pass brings it back',
  async (t) => {
    let status = 200;
    let delay = 0;
    const up = await startUpstream((req, res) => {
      if (req.url !== '/healthz') return false;
      setTimeout(() => {
        res.writeHead(status);
        res.end('ok');
      }, delay);
      return true;
    });
    t.teardown(up.close);
    const pool = new Pool(up.origin);
    const refusedPool = new Pool('http://127.0.0.1:1');
    t.teardown(() => Promise.all([pool.destroy(), refusedPool.destroy()]));
    const good = new Backend({
      origin: up.origin,
      targetPath: '/',
      targetQuery: '',
      weight: 1,
      pool,
    });
    const refused = new Backend({
      origin: 'http://127.0.0.1:1',
      targetPath: '/',
      targetQuery: '',
      weight: 1,
      pool: refusedPool,
    });
    const log = captureLog();
    const balancer = new Balancer([good, refused], log, '/api', 1_000);
    const spec = { path: '/healthz', interval: 1_000, timeout: 200, expected_status: [200, 204] };
    const checker = new HealthChecker(balancer, spec);
    await checker.round();
    t.notOk(good.checkDown, '200 is expected');
    t.ok(refused.checkDown, 'a refused connection fails the check');
    status = 503;
    await checker.round();
    t.ok(good.checkDown, 'an unexpected status fails it');
    t.equal(balancer.pick(), undefined);
    t.equal(balancer.retryAfterSeconds(), 1, 'Retry-After: the next check');
    status = 204;
    await checker.round();
    t.notOk(good.checkDown, 'a pass brings it back');
    good.fails = PASSIVE_FAILS;
    good.cooldownMs = COOLDOWN_FIRST_MS;
    good.downUntil = Date.now() + 10_000;
    await checker.round();
    t.ok(good.eligible(Date.now()), 'a pass also ends a passive cool-down');
    delay = 400;
    await checker.round();
    t.ok(good.checkDown, 'no answer within timeout fails it');
    t.equal(
      log.lines.filter((l) => l.msg.startsWith('backend failed its health check')).length,
      3,
      'one line per transition, not per check',
    );

    checker.start();
    t.ok(checker.active);
    checker.stop();
    t.notOk(checker.active, 'stop clears the timer');
    checker.start();
    t.notOk(checker.active, 'a stopped checker never restarts');
  },
);

t.test('routes.yml: backends and health_check validation', async (t) => {
  const parse = (route: Record<string, unknown>) => {
    try {
      parseConfig(
        { secret: 'x'.repeat(64), users: [] },
        { routes: [{ prefix: '/api', target: 'http://127.0.0.1:8000/api', ...route }] },
        { config: 'config.json', routes: 'routes.yml' },
      );
      return [];
    } catch (err) {
      return ((err as { issues?: { key: string; message: string }[] }).issues ?? []).map(
        (i) => `${i.key}: ${i.message}`,
      );
    }
  };
  t.same(
    parse({ backends: ['http://127.0.0.1:8001/api', { url: 'http://b.test/x', weight: 0 }] }),
    [],
  );
  t.match(parse({ backends: ['http://b.test/x', 'http://B.test:80/x'] }), [
    /^routes\[0\]\.backends\[1\]\.url: the same backend as backends\[0\]/,
  ]);
  t.match(
    parse({
      backends: [
        { url: 'http://127.0.0.1:8000/api', weight: -1 },
        { url: 'http://b.test', weight: 0 },
      ],
    }),
    [/^routes\[0\]\.backends: no backend has a positive weight/],
  );
  t.same(parse({ backends: [{ url: 'http://b.test', weight: -1 }] }), [], 'target is weighted');
  t.same(parse({ health_check: {} }), [], 'every key has a default');
  t.match(parse({ health_check: { path: 'healthz' } }), [/^routes\[0\]\.health_check\.path: /]);
  t.match(parse({ health_check: { path: '/a b' } }), [/^routes\[0\]\.health_check\.path: /]);
  t.match(parse({ health_check: { interval: 50 } }), [/^routes\[0\]\.health_check\.interval: /]);
  t.match(parse({ health_check: { interval: 1000, timeout: 2000 } }), [
    /^routes\[0\]\.health_check\.timeout: must not exceed interval/,
  ]);
  t.match(parse({ health_check: { expected_status: 700 } }), [
    /^routes\[0\]\.health_check\.expected_status: /,
  ]);
  t.match(parse({ health_check: { expected_status: [] } }), [
    /^routes\[0\]\.health_check\.expected_status: /,
  ]);
  t.match(parse({ health_check: { wait: 1 } }), [/^routes\[0\]\.health_check\.wait: unknown key/]);
});

t.test('classify: which failures mean the backend is down', async (t) => {
  for (const code of ['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENOTFOUND']) {
    t.equal(classify(code, false, false), 'down', `${code} before sending`);
  }
  t.equal(
    classify('ECONNRESET', false, false),
    'stale',
    'a pooled connection may be a keep-alive race',
  );
  t.equal(classify('UND_ERR_SOCKET', true, false), 'stale');
  t.equal(
    classify('ECONNRESET', true, true),
    'down',
    'a reset on a fresh connection is the backend',
  );
  t.equal(classify('UND_ERR_HEADERS_TIMEOUT', true, false), 'other', 'sent, then no answer: 504');
  t.equal(classify('UND_ERR_HEADERS_TIMEOUT', true, true), 'other');
  t.equal(classify('ERR_TLS_CERT_ALTNAME_INVALID', false, false), 'other');
  t.equal(
    classify('UND_ERR_CLOSED', false, false),
    'stale',
    'a pool closed by a reload before the request left: once more, on a new connection',
  );
  t.equal(classify('UND_ERR_CLOSED', false, true), 'other', 'but not twice');
});

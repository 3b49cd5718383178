import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openStore } from '../shared/store.js';
import { type LockoutSettings, LoginGuard, UNKNOWN_USER } from '../supervisor/login-guard.js';
import { memoryLog } from './helpers/fake-edge.js';

const SETTINGS: LockoutSettings = {
  maxFailures: 3,
  findTimeMs: 60_000,
  banTimeMs: 300_000,
  knownUsers: new Set(['alice', 'bob']),
};
const T0 = Date.UTC(2026, 10, 30, 10, 0, 0);

async function guard(t: Test, settings = SETTINGS, maxCounters?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'proxyauth-guard-'));
  const store = openStore(dir, { readOnly: false });
  let now = T0;
  const log = memoryLog();
  const g = new LoginGuard({ store, log, settings, now: () => now, maxCounters });
  t.teardown(async () => {
    g.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { g, store, log, at: (ms: number) => (now = T0 + ms) };
}

/** ms locked out for, 0 when an attempt would be admitted (it is then reported aborted). */
async function probe(g: LoginGuard, user: string | null, ip: string): Promise<number> {
  const a = await g.attempt(user, ip);
  if (a.ticket > 0) g.result(a.ticket, 'aborted');
  return a.lockedMs;
}

async function fail(g: LoginGuard, user: string | null, ip: string) {
  const a = await g.attempt(user, ip);
  if (a.lockedMs > 0) return a;
  g.result(a.ticket, 'failure');
  return a;
}

t.test(
  'a name that is not a configured user is never logged (a password typed as the name)',
  async (t) => {
    const { g, log } = await guard(t);
    const typed = 'Sup3rSecretPw!xyz';
    for (let i = 0; i < 3; i++) await fail(g, typed, '10.0.0.9');
    await new Promise((r) => setTimeout(r, 50));
    const bans = log.lines.filter((l) => l.msg === 'login ban').map((l) => l.fields);
    t.match(bans, [
      { kind: 'user', user: UNKNOWN_USER, ip: '10.0.0.9' },
      { kind: 'ip', user: UNKNOWN_USER, ip: '10.0.0.9' },
    ]);
    t.notMatch(JSON.stringify(log.lines), typed, 'nowhere in any line');
    t.equal(await probe(g, typed, '10.0.0.8'), 300_000, 'the name is still locked out');
  },
);

t.test(
  'max_failures failures ban the user and the address; the ban is stored and logged',
  async (t) => {
    const { g, store, log } = await guard(t);
    for (let i = 0; i < 3; i++) t.equal((await fail(g, 'alice', '10.0.0.1')).lockedMs, 0);
    const locked = await g.attempt('alice', '10.0.0.2');
    t.equal(locked.ticket, 0);
    t.equal(locked.lockedMs, 300_000, 'the user, from another address');
    t.equal(await probe(g, 'bob', '10.0.0.1'), 300_000, 'the address, for another user');
    t.ok((await g.attempt('bob', '10.0.0.2')).ticket > 0, 'others go on');
    await new Promise((r) => setTimeout(r, 50));
    t.equal(store.getBan('user', 'alice', T0 / 1000)?.failures, 3, 'in the store');
    t.ok(store.getBan('ip', '10.0.0.1', T0 / 1000));
    t.match(
      log.lines.filter((l) => l.msg === 'login ban').map((l) => l.fields),
      [
        { kind: 'user', user: 'alice', ip: '10.0.0.1' },
        { kind: 'ip', user: 'alice', ip: '10.0.0.1' },
      ],
    );
  },
);

t.test('bans expire by themselves; failures older than find_time are forgotten', async (t) => {
  const { g, at } = await guard(t);
  await fail(g, 'alice', '10.0.0.1');
  await fail(g, 'alice', '10.0.0.1');
  at(61_000);
  await fail(g, 'alice', '10.0.0.1');
  t.equal(await probe(g, 'alice', '10.0.0.1'), 0, 'two of the three were too old');
  await fail(g, 'alice', '10.0.0.1');
  await fail(g, 'alice', '10.0.0.1');
  t.ok((await probe(g, 'alice', '10.0.0.1')) > 0);
  at(61_000 + 300_000);
  t.equal(await probe(g, 'alice', '10.0.0.1'), 0, 'free after ban_time');
});

t.test("a success forgets the user's failures, not the address's", async (t) => {
  const { g } = await guard(t);
  await fail(g, 'alice', '10.0.0.1');
  await fail(g, 'alice', '10.0.0.1');
  const ok = await g.attempt('alice', '10.0.0.1');
  g.result(ok.ticket, 'success');
  await fail(g, 'alice', '10.0.0.9');
  await fail(g, 'alice', '10.0.0.9');
  t.equal(await probe(g, 'alice', '10.0.0.8'), 0, 'alice: 2 since the success');
  const a = await fail(g, 'bob', '10.0.0.1');
  t.equal(a.lockedMs, 0);
  t.ok((await probe(g, 'carol', '10.0.0.1')) > 0, 'the address reached 3');
});

t.test('concurrent attempts: at most max_failures in flight, the others wait', async (t) => {
  const { g } = await guard(t);
  const answers = await Promise.all([
    g.attempt('alice', '10.0.0.1'),
    g.attempt('alice', '10.0.0.2'),
    g.attempt('alice', '10.0.0.3'),
  ]);
  t.ok(answers.every((a) => a.ticket > 0));
  let fourth: { ticket: number; lockedMs: number } | undefined;
  void g.attempt('alice', '10.0.0.4').then((a) => (fourth = a));
  await new Promise((r) => setImmediate(r));
  t.equal(fourth, undefined, 'the fourth waits');
  g.result(answers[0]!.ticket, 'success');
  await new Promise((r) => setImmediate(r));
  t.ok(fourth && fourth.ticket > 0, 'admitted once a slot is free');
  g.result(answers[1]!.ticket, 'failure');
  g.result(answers[2]!.ticket, 'failure');
  g.result(fourth!.ticket, 'failure');
  t.ok((await probe(g, 'alice', '10.0.0.5')) > 0);
});

t.test('waiting attempts are refused when the ones in flight fail into a ban', async (t) => {
  const { g } = await guard(t);
  const first = await Promise.all([1, 2, 3].map(() => g.attempt('alice', '10.0.0.1')));
  const waiting = [4, 5, 6].map(() => g.attempt('alice', '10.0.0.1'));
  for (const a of first) g.result(a.ticket, 'failure');
  const later = await Promise.all(waiting);
  t.ok(later.every((a) => a.lockedMs > 0 && a.ticket === 0));
});

t.test('aborted attempts count for nothing; lost tickets are released', async (t) => {
  const { g, at } = await guard(t);
  for (let i = 0; i < 5; i++) {
    const a = await g.attempt('alice', '10.0.0.1');
    g.result(a.ticket, 'aborted');
  }
  t.equal(await probe(g, 'alice', '10.0.0.1'), 0);
  // Three tickets never reported (their edge died): a fourth attempt waits...
  for (let i = 0; i < 3; i++) await g.attempt('bob', '10.0.0.2');
  let fourth: { ticket: number } | undefined;
  void g.attempt('bob', '10.0.0.2').then((a) => (fourth = a));
  await new Promise((r) => setImmediate(r));
  t.equal(fourth, undefined);
  at(120_000);
  g.sweep();
  await new Promise((r) => setImmediate(r));
  t.ok(fourth && fourth.ticket > 0, '...until the lost ones are released');
  g.result(9_999_999, 'failure');
  t.pass('an unknown ticket is ignored');
});

t.test('admin-token checks (user null) count against the address only', async (t) => {
  const { g } = await guard(t);
  for (let i = 0; i < 3; i++) await fail(g, null, '10.0.0.1');
  t.ok((await probe(g, null, '10.0.0.1')) > 0);
  t.ok((await probe(g, 'alice', '10.0.0.1')) > 0, 'logins from it too');
  t.equal(await probe(g, 'alice', '10.0.0.2'), 0, 'no user was banned');
});

t.test('a ban lifted in the store (proxyauth unban) is lifted at once', async (t) => {
  const { g, store } = await guard(t);
  for (let i = 0; i < 3; i++) await fail(g, 'alice', '10.0.0.1');
  await new Promise((r) => setTimeout(r, 50));
  await store.unban('user', 'alice', T0 / 1000);
  await store.unbanIp('10.0.0.1', T0 / 1000);
  t.equal(await probe(g, 'alice', '10.0.0.1'), 0);
});

t.test('max_failures 0: everything admitted, nothing counted', async (t) => {
  const { g } = await guard(t, { ...SETTINGS, maxFailures: 0 });
  for (let i = 0; i < 10; i++)
    t.same(await g.attempt('alice', '10.0.0.1'), { ticket: 0, lockedMs: 0 });
  t.equal(g.counters, 0);
});

t.test(
  'a full table keeps every counter with failures and refuses newcomers (fail closed)',
  async (t) => {
    const { g, log, at } = await guard(t, SETTINGS, 10);
    await fail(g, 'alice', '10.0.0.1');
    await fail(g, 'alice', '10.0.0.1');
    // Churn: fresh names and addresses, each failing once, until the table is full.
    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await fail(g, `u${i}`, `192.0.2.${i}`));
    t.ok(g.counters <= 10, `${g.counters} counters`);
    t.ok(
      answers.slice(-10).every((a) => a.lockedMs === 1_000),
      'newcomers are refused while every counter holds failures',
    );
    t.match(log.lines, [{ level: 'warn', msg: /lockout table full/ }]);
    t.ok((await probe(g, 'alice', '10.0.0.1')) === 0, "alice's failures are still counted...");
    await fail(g, 'alice', '10.0.0.1');
    t.ok((await probe(g, 'alice', '10.0.0.1')) > 0, '...so her third failure bans her');
    at(61_000);
    g.sweep();
    t.ok(
      (await g.attempt('newcomer', '198.51.100.1')).ticket > 0,
      'room again once failures age out',
    );
  },
);

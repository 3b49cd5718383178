import t from 'tap';
import type { RateTakeItem } from '../shared/ipc.js';
import { RateAuthority } from '../supervisor/rate-authority.js';
import { memoryLog } from './helpers/fake-edge.js';

function authority(maxKeys = 1000, edges = 2) {
  let now = 0;
  const log = memoryLog();
  const a = new RateAuthority({ maxKeys, edges: () => edges, log, now: () => now });
  return { a, log, at: (ms: number) => (now = ms) };
}

const item = (key: string, extra: Partial<RateTakeItem> = {}): RateTakeItem => ({
  key,
  rps: 50,
  burst: 10,
  blockMs: 0,
  want: 1,
  ...extra,
});

t.test('two edges asking for one key share one bucket', async (t) => {
  const { a } = authority();
  let granted = 0;
  for (let i = 0; i < 20; i++) {
    for (const [r] of [a.take([item('k')]), a.take([item('k')])]) granted += r!.granted;
  }
  t.equal(granted, 11, 'burst + 1 in all, whoever asks');
  const [other] = a.take([item('other')]);
  t.ok(other!.granted >= 1, 'another key has its own');
});

t.test('a grant leases a share of a full bucket: half of it over the edges', async (t) => {
  const { a } = authority(1000, 2);
  const [r] = a.take([item('big', { rps: 1000, burst: 999 })]);
  t.equal(r!.granted, 250);
  t.equal(r!.remaining, 750);
});

t.test('unspent tokens are granted again; spent ones move the clock', async (t) => {
  const { a, at } = authority();
  const [r] = a.take([item('k', { want: 11 })]);
  t.equal(r!.granted, 11);
  t.equal(a.take([item('k')])[0]!.granted, 0);
  a.settle([{ key: 'k', spent: 7, unspent: 4, ageMs: 0 }]);
  t.equal(a.take([item('k', { want: 10 })])[0]!.granted, 4, 'the 4 unspent');
  at(1000);
  t.equal(a.take([item('k', { want: 11 })])[0]!.granted, 7, 'refilled, less the 4 reserved');
  a.settle([{ key: 'gone', spent: 1, unspent: 4, ageMs: 0 }]);
  t.equal(a.size, 1, 'a settlement for a forgotten key creates nothing');
});

t.test('a lease spent late never adds to a refilled bucket (reserved until settled)', async (t) => {
  const { a, at } = authority(1000, 2);
  // 10 rps + 20 burst: the first ask leases a quarter of 21.
  const first = a.take([item('c', { rps: 10, burst: 20 })])[0]!;
  t.equal(first.granted, 5);
  a.settle([{ key: 'c', spent: 1, unspent: 0, ageMs: 0 }]);
  at(600);
  // The edge still holds 4; the bucket refilled: only 21 - 4 are free.
  let granted = 0;
  for (let i = 0; i < 40; i++) granted += a.take([item('c', { rps: 10, burst: 20 })])[0]!.granted;
  t.equal(granted, 17, 'full again (21) less the 4 still leased: never more than 21 in all');
});

t.test('a refusal that starts a block tells the edges', async (t) => {
  const blocks: [string, number][] = [];
  let now = 0;
  const a = new RateAuthority({
    maxKeys: 1000,
    edges: () => 2,
    log: memoryLog(),
    now: () => now,
    onBlock: (key, ms) => blocks.push([key, ms]),
  });
  const p = { rps: 10, burst: 0, blockMs: 5000 };
  t.equal(a.take([item('b', p)])[0]!.granted, 1);
  t.equal(a.take([item('b', p)])[0]!.granted, 0, 'refused: the token is reserved...');
  t.same(blocks, [], '...which is no reason to block: it may come back unspent');
  a.settle([{ key: 'b', spent: 1, unspent: 0, ageMs: 0 }]);
  t.equal(a.take([item('b', p)])[0]!.granted, 0);
  t.same(blocks, [['b', 5000]], 'spent: over the limit, blocked');
  now = 1000;
  a.take([item('b', p)]);
  t.equal(blocks.length, 1, 'once per block');
});

t.test('idle buckets are forgotten by the sweep', async (t) => {
  const { a, at } = authority();
  a.take([item('x', { rps: 1 }), item('y', { rps: 1 })]);
  t.equal(a.size, 2);
  at(1000);
  a.sweep();
  t.equal(a.size, 2, 'leased tokens not settled yet');
  at(4000);
  a.sweep();
  t.equal(a.size, 2, 'still waiting for the edge');
  at(10_000);
  a.sweep();
  t.equal(a.size, 0, 'an edge that never settles (it died): counted as spent, then forgotten');
});

t.test(
  'a flood of distinct keys: bounded, and a client over its limit stays refused',
  async (t) => {
    const { a, at } = authority(1000);
    // The client spends its whole budget and asks again: refused.
    a.take([item('hog', { want: 11, rps: 1, burst: 10 })]);
    t.equal(a.take([item('hog', { rps: 1, burst: 10 })])[0]!.granted, 0);
    let max = 0;
    for (let i = 0; i < 100_000; i++) {
      at(i / 100); // 100 new clients per ms
      a.take([item(`flood-${i}`, { rps: 1, burst: 0 })]);
      max = Math.max(max, a.size);
    }
    t.ok(max <= 1000, `never more than the cap (${max})`);
    t.equal(a.take([item('hog', { rps: 1, burst: 10 })])[0]!.granted, 0, 'still refused');
  },
);

t.test('full of clients over their limit: a new client is refused, and it is logged', async (t) => {
  const { a, log } = authority(1000);
  for (let i = 0; i < 1000; i++) a.take([item(`over-${i}`, { rps: 1, burst: 0 })]);
  const [r] = a.take([item('new', { rps: 1, burst: 0 })]);
  t.equal(r!.granted, 0, 'fail closed');
  t.equal(r!.refuseMs, 1000);
  t.equal(a.size, 1000);
  t.match(log.lines, [{ level: 'warn', msg: /rate limiter full/ }]);
});

t.test('a smaller cap from a reload applies to new clients', async (t) => {
  const { a, at } = authority(2000);
  for (let i = 0; i < 1500; i++) a.take([item(`c-${i}`, { rps: 1000, burst: 9 })]);
  a.configure(1000);
  at(0.5);
  t.equal(a.take([item('late', { rps: 1000, burst: 9 })])[0]!.granted, 0, 'nothing idle: refused');
  t.equal(a.size, 1500, 'no debt or reservation is forgiven to make room');
  for (let i = 0; i < 1500; i++) a.settle([{ key: `c-${i}`, spent: 0, unspent: 5, ageMs: 0 }]);
  at(1000);
  t.ok(a.take([item('late2', { rps: 1000, burst: 9 })])[0]!.granted > 0, 'idle ones forgotten');
  t.ok(a.size <= 1000);
});

import t from 'tap';
import { GatewayError } from '../shared/errors.js';
import { type EdgeMessage, parseEdgeMessage } from '../shared/ipc.js';
import { RateAuthority } from '../supervisor/rate-authority.js';
import { compilePolicy, type LimitPolicy, RateLimiter } from '../worker/rate-limiter.js';
import { SupervisorLink } from '../worker/supervisor-link.js';
import type { Exchange } from '../worker/uws-io.js';
import { memoryLog } from './helpers/fake-edge.js';
import { limiterEdge } from './helpers/rate-edge.js';

/** `edges` limiters wired to one authority, answering asynchronously like the IPC channel. */
function node(edges = 2, answer = true) {
  const authority = new RateAuthority({
    maxKeys: 10_000,
    edges: () => edges,
    log: memoryLog(),
    onBlock: (key, ms) =>
      setImmediate(() => {
        for (const l of limiters) l.block(key, ms);
      }),
  });
  const sent: EdgeMessage[] = [];
  const limiters = Array.from({ length: edges }, () => {
    const link: SupervisorLink = new SupervisorLink((message) => {
      // What the supervisor's channel would check: an invalid message would be dropped there.
      const parsed = parseEdgeMessage(JSON.parse(JSON.stringify(message)));
      if (!parsed.ok) throw new Error(`invalid IPC message: ${parsed.reason}`);
      sent.push(message);
      setImmediate(() => {
        if (message.type === 'rate-take' && answer) {
          link.settle({
            type: 'answer',
            id: message.id,
            value: { results: authority.take(message.items) },
          });
        } else if (message.type === 'rate-settle') {
          authority.settle(message.items);
        }
      });
      return true;
    });
    return new RateLimiter(link, memoryLog());
  });
  return { authority, limiters, sent };
}

const ex = () => ({ headLines: '', headLinesAscii: true }) as unknown as Exchange;

/** Admits one request; 'ok', or the refusal's code. */
async function admit(limiter: RateLimiter, policy: LimitPolicy, client: string, e = ex()) {
  try {
    // 'u:alice' is user alice, 'i:10.0.0.1' an address; a bare name is an address.
    if (client[1] === ':') await limiter.admit(policy, client[0] as 'u' | 'i', client.slice(2), e);
    else await limiter.admit(policy, 'i', client, e);
    return 'ok';
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

const policy = compilePolicy('proxy', { requests_per_second: 50, burst: 10, block_delay: 0 })!;

t.test('compilePolicy: off at 0, the header announces the sustained rate', async (t) => {
  t.equal(compilePolicy('proxy', { requests_per_second: 0, burst: 5, block_delay: 9 }), undefined);
  t.equal(policy.policyHeader, '"proxy";q=50;w=1');
  t.equal(policy.capacity, 11);
  const slow = compilePolicy('auth', { requests_per_second: 0.25, burst: 0, block_delay: 0 })!;
  t.equal(slow.policyHeader, '"auth";q=1;w=4');
  const route = compilePolicy(
    'route',
    { requests_per_second: 2.5, burst: 0, block_delay: 0 },
    '/a',
  )!;
  t.equal(route.policyHeader, '"route";q=2;w=1');
  t.not(
    route.id,
    compilePolicy('route', { requests_per_second: 2.5, burst: 0, block_delay: 0 }, '/b')!.id,
  );
  t.not(
    policy.id,
    compilePolicy('proxy', { requests_per_second: 50, burst: 11, block_delay: 0 })!.id,
    'new parameters, new budget',
  );
});

t.test('two edges together admit burst + 1 at once, never more', async (t) => {
  const { limiters } = node(2);
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => admit(limiters[i % 2]!, policy, 'i:1.2.3.4')),
  );
  // Requests that found the tokens held by the other edge waited: the bucket refilled meanwhile.
  const refill = Math.floor((performance.now() - started) / 20);
  const ok = results.filter((r) => r === 'ok').length;
  t.ok(ok >= 11 && ok <= 11 + refill, `${ok} admitted: burst + 1, plus ${refill} refilled at most`);
  t.equal(results.filter((r) => r === 'RATE_LIMITED').length, 40 - ok, 'the rest refused');
});

t.test('a lease is spent without asking; a refusal is remembered without asking', async (t) => {
  const big = compilePolicy('proxy', { requests_per_second: 1000, burst: 999, block_delay: 0 })!;
  const { limiters, sent } = node(1);
  const limiter = limiters[0]!;
  t.equal(await admit(limiter, big, 'u:alice'), 'ok');
  const asks = sent.filter((m) => m.type === 'rate-take').length;
  for (let i = 0; i < 200; i++)
    t.equal(limiter.admit(big, 'u', 'alice', ex()), undefined, 'synchronous');
  t.equal(sent.filter((m) => m.type === 'rate-take').length, asks, 'no ask for 200 requests');
  const tight = compilePolicy('proxy', {
    requests_per_second: 1 / 86_400,
    burst: 0,
    block_delay: 0,
  })!;
  t.equal(await admit(limiter, tight, 'u:bob'), 'ok');
  t.equal(await admit(limiter, tight, 'u:bob'), 'RATE_LIMITED');
  const before = sent.length;
  t.throws(
    () => limiter.admit(tight, 'u', 'bob', ex()),
    { code: 'RATE_LIMITED' },
    'refused at once',
  );
  t.equal(sent.length, before, 'without asking');
});

t.test('users and addresses have their own budgets; the supervisor keys name both', async (t) => {
  const tight = compilePolicy('proxy', {
    requests_per_second: 1 / 86_400,
    burst: 0,
    block_delay: 0,
  })!;
  const { limiters, sent } = node(1);
  const limiter = limiters[0]!;
  t.equal(await admit(limiter, tight, 'u:x'), 'ok');
  t.equal(await admit(limiter, tight, 'i:x'), 'ok', 'address x is not user x');
  t.equal(await admit(limiter, tight, 'u:x'), 'RATE_LIMITED');
  t.equal(await admit(limiter, tight, 'i:x'), 'RATE_LIMITED');
  const other = compilePolicy('proxy', { requests_per_second: 2, burst: 0, block_delay: 0 })!;
  t.equal(await admit(limiter, other, 'u:x'), 'ok', 'another policy, another budget');
  const keys = sent.flatMap((m) => (m.type === 'rate-take' ? m.items.map((i) => i.key) : []));
  t.same(
    [...new Set(keys)].sort(),
    [`${tight.id} u:x`, `${tight.id} i:x`, `${other.id} u:x`].sort(),
    'keys as the supervisor knows them',
  );
  t.equal(limiter.size, 3);
  t.equal(limiter.policies, 2);
  limiter.sweep(Number.POSITIVE_INFINITY);
  t.equal(limiter.size, 0, 'swept');
  t.equal(limiter.policies, 0, 'no table left for a policy without leases (reloads)');
  t.equal(
    await admit(limiter, tight, 'u:x'),
    'RATE_LIMITED',
    'forgetting a lease lets nobody through: the supervisor decides',
  );
  t.equal(await admit(limiter, tight, 'u:y'), 'ok');
  t.equal(limiter.policies, 1);
});

t.test('the RateLimit header follows every spend', async (t) => {
  const p = compilePolicy('proxy', { requests_per_second: 1, burst: 3, block_delay: 0 })!;
  const { limiters } = node(1);
  const values: string[] = [];
  for (let i = 0; i < 5; i++) {
    const e = ex();
    values.push((await admit(limiters[0]!, p, 'u:h', e)) === 'ok' ? e.headLines : 'refused');
  }
  t.same(values, [
    '\r\nratelimit: "proxy";r=3;t=1',
    '\r\nratelimit: "proxy";r=2;t=2',
    '\r\nratelimit: "proxy";r=1;t=3',
    '\r\nratelimit: "proxy";r=0;t=4',
    'refused',
  ]);
});

t.test('asks made in one turn travel in one message', async (t) => {
  const { limiters, sent } = node(1);
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => admit(limiters[0]!, policy, `i:10.0.0.${i}`)),
  );
  const asks = sent.filter((m) => m.type === 'rate-take');
  t.equal(asks.length, 1);
  t.equal(asks[0]!.type === 'rate-take' ? asks[0]!.items.length : 0, 50);
});

t.test(
  'headers: RateLimit on admitted requests; Retry-After, RateLimit-Policy and RateLimit on refusals',
  async (t) => {
    const tight = compilePolicy(
      'route',
      { requests_per_second: 2, burst: 1, block_delay: 0 },
      '/x',
    )!;
    const { limiters } = node(1);
    const e = ex();
    await admit(limiters[0]!, tight, 'i:a', e);
    t.equal(e.headLines, '\r\nratelimit: "route";r=1;t=1', 'the policy goes with refusals');
    t.ok(e.headLinesAscii);
    await admit(limiters[0]!, tight, 'i:a');
    try {
      await limiters[0]!.admit(tight, 'i', 'a', ex());
      t.fail('admitted');
    } catch (err) {
      const e = err as GatewayError;
      t.equal(e.code, 'RATE_LIMITED');
      t.equal(e.after, 1);
      t.same(e.headers, [
        ['retry-after', '1'],
        ['ratelimit-policy', '"route";q=2;w=1'],
        ['ratelimit', '"route";r=0;t=1'],
      ]);
    }
  },
);

t.test('unspent tokens go back when the lease expires', async (t) => {
  const big = compilePolicy('proxy', { requests_per_second: 100, burst: 99, block_delay: 0 })!;
  const { limiters, authority } = node(2);
  await admit(limiters[0]!, big, 'k');
  limiters[0]!.sweep(performance.now() + 2_000);
  await new Promise((r) => setImmediate(r));
  // The bucket is full again: the other edge can take all of it.
  let ok = 0;
  for (let i = 0; i < 200; i++) if ((await admit(limiters[1]!, big, 'k')) === 'ok') ok++;
  t.ok(ok >= 99, `${ok} admitted by the other edge`);
  t.equal(limiters[0]!.size, 0, 'the expired lease is forgotten');
  t.ok(authority.size >= 1);
});

t.test('the supervisor not answering refuses with 503 (fail closed)', async (t) => {
  const { limiters } = node(1, false);
  const clock = t.capture(globalThis, 'setTimeout', ((fn: () => void) => {
    setImmediate(fn);
    return { unref() {} } as unknown as NodeJS.Timeout;
  }) as unknown as typeof setTimeout);
  t.equal(await admit(limiters[0]!, policy, 'x'), 'LIMITER_UNAVAILABLE');
  clock();
});

t.test('the lease table is bounded; evicting a lease lets nobody through', async (t) => {
  const { authority } = node(1);
  const { limiter } = limiterEdge(authority, 100);
  // One request a day: no refill during the 500 admissions, however slow the machine.
  const tight = compilePolicy('proxy', {
    requests_per_second: 1 / 86_400,
    burst: 0,
    block_delay: 0,
  })!;
  await admit(limiter, tight, 'hog');
  t.equal(await admit(limiter, tight, 'hog'), 'RATE_LIMITED');
  for (let i = 0; i < 500; i++) await admit(limiter, tight, `c${i}`);
  t.ok(limiter.size <= 100, `${limiter.size} leases`);
  t.equal(await admit(limiter, tight, 'hog'), 'RATE_LIMITED', 'still refused');
});

t.test(
  'a long route prefix still makes a short budget id (asks stay within the IPC bounds)',
  async (t) => {
    const long = `/${'a'.repeat(2000)}`;
    const p = compilePolicy('route', { requests_per_second: 5, burst: 0, block_delay: 0 }, long)!;
    t.ok(p.id.length < 64, p.id);
    const { limiters } = node(1);
    t.equal(await admit(limiters[0]!, p, `u:${'ü'.repeat(127)}`), 'ok', 'a long username too');
  },
);

t.test('a lease spent late never adds to a refilled bucket (reserved until settled)', async (t) => {
  // 100 rps + 20 burst: 21 at once, then one per 10 ms.
  const p = compilePolicy('proxy', { requests_per_second: 100, burst: 20, block_delay: 0 })!;
  const { limiters } = node(2);
  t.equal(await admit(limiters[0]!, p, 'c'), 'ok');
  // Edge 0 keeps the rest of its lease while the bucket refills.
  await new Promise((r) => setTimeout(r, 300));
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: 80 }, (_, i) => admit(limiters[i % 2]!, p, 'c')),
  );
  const refill = Math.ceil((performance.now() - started) / 10);
  const ok = results.filter((r) => r === 'ok').length;
  t.ok(ok <= 21 + refill, `${ok} admitted at once after the refill (at most 21 + ${refill})`);
  t.ok(ok >= 15, 'and the budget is not lost either');
});

t.test('a block started on one edge holds on the other, for its whole length', async (t) => {
  const p = compilePolicy('proxy', { requests_per_second: 10, burst: 20, block_delay: 5000 })!;
  const { limiters } = node(2);
  const started = performance.now();
  t.equal(await admit(limiters[0]!, p, 'b'), 'ok', 'edge 0 holds a lease');
  // Bursts on both edges (concurrent, so that refills cannot keep a loop going).
  const one = await Promise.all(Array.from({ length: 40 }, () => admit(limiters[1]!, p, 'b')));
  const zero = await Promise.all(Array.from({ length: 40 }, () => admit(limiters[0]!, p, 'b')));
  const ok = 1 + [...one, ...zero].filter((r) => r === 'ok').length;
  const refill = Math.ceil((performance.now() - started) / 100);
  t.ok(ok <= 21 + refill, `${ok} admitted: the budget (21 + ${refill} refilled), not more`);
  t.ok(zero.includes('RATE_LIMITED'), 'the bucket ran out: the block started');
  await new Promise((r) => setImmediate(r));
  for (const limiter of limiters) {
    try {
      await limiter.admit(p, 'i', 'b', ex());
      t.fail('admitted during the block');
    } catch (err) {
      t.ok((err as GatewayError).after! >= 4, 'refused for the block, on this edge too');
    }
  }
});

t.test(
  'burst 0: a client at 80% of its rate is never refused (spends charged when made)',
  async (t) => {
    for (const blockMs of [0, 3000]) {
      const p = compilePolicy('proxy', {
        requests_per_second: 10,
        burst: 0,
        block_delay: blockMs,
      })!;
      const { limiters } = node(2);
      let lastOk = Number.NEGATIVE_INFINITY;
      const wrong: number[] = [];
      for (let i = 0; i < 8; i++) {
        const at = performance.now();
        const result = await admit(limiters[i % 2]!, p, 'steady');
        // Timers may bunch two requests closer than the 100 ms period: only a refusal after a
        // full period is wrong.
        if (result === 'ok') lastOk = at;
        else if (at - lastOk >= 105) wrong.push(Math.round(at - lastOk));
        await new Promise((r) => setTimeout(r, 125));
      }
      t.same(wrong, [], `block_delay ${blockMs}: no request a period after the last refused`);
    }
  },
);

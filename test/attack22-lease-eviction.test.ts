import t from 'tap';
import { GatewayError } from '../shared/errors.js';
import { RateAuthority } from '../supervisor/rate-authority.js';
import { compilePolicy, type LimitPolicy, type RateLimiter } from '../worker/rate-limiter.js';
import type { Exchange } from '../worker/uws-io.js';
import { memoryLog } from './helpers/fake-edge.js';
import { limiterEdge } from './helpers/rate-edge.js';

/** One edge holding at most `maxEntries` leases, with an authority of its own. */
function edge(maxEntries: number) {
  const authority = new RateAuthority({ maxKeys: 10_000, edges: () => 1, log: memoryLog() });
  return limiterEdge(authority, maxEntries);
}

const ex = () => ({ headLines: '', headLinesAscii: true }) as unknown as Exchange;

async function admit(limiter: RateLimiter, policy: LimitPolicy, kind: 'u' | 'i', name: string) {
  try {
    await limiter.admit(policy, kind, name, ex());
    return 'ok';
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

// Two tokens a day: no refill during the test, however slow the machine.
const daily = (name: 'auth' | 'proxy') =>
  compilePolicy(name, { requests_per_second: 1 / 86_400, burst: 1, block_delay: 0 })!;

t.test(
  'a new client whose policy loses its last lease to the bound keeps its whole budget',
  async (t) => {
    const auth = daily('auth');
    const proxy = daily('proxy');
    const { limiter, sent } = edge(2);
    t.equal(await admit(limiter, auth, 'i', 'a'), 'ok');
    t.equal(await admit(limiter, proxy, 'u', 'b'), 'ok');
    // The table is full: making room for c evicts a, the auth policy's only lease.
    t.equal(await admit(limiter, auth, 'i', 'c'), 'ok', "c's first request");
    t.equal(await admit(limiter, auth, 'i', 'c'), 'ok', "c's second request (burst 1)");
    t.equal(await admit(limiter, auth, 'i', 'c'), 'RATE_LIMITED', 'and no more');
    const asksForC = sent
      .flatMap((m) => (m.type === 'rate-take' ? m.items : []))
      .filter((i) => i.key === `${auth.id} i:c`).length;
    t.equal(asksForC, 3, 'one ask per token (half the bucket), and the refusal');
    t.ok(limiter.size <= 2, `${limiter.size} leases`);
    limiter.sweep(Number.POSITIVE_INFINITY);
    t.equal(limiter.size, 0);
    t.equal(limiter.policies, 0, 'no table left behind');
  },
);

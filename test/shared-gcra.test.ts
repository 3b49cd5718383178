import t from 'tap';
import {
  type Bucket,
  isIdle,
  isOverLimit,
  msUntilFull,
  newBucket,
  RESERVATION_MS,
  settleTokens,
  takeTokens,
  tokensAt,
} from '../shared/gcra.js';

const policy = { rps: 50, burst: 10, blockMs: 0 };

/** Takes up to `want` tokens and spends them at once (a request admitted and reported). */
function spend(b: Bucket, now: number, want = 1, blockMs = 0) {
  const grant = takeTokens(b, now, want, 1, blockMs);
  settleTokens(b, now, grant.granted, 0);
  return grant;
}

t.test('a new bucket holds burst + 1 tokens, then one per period', async (t) => {
  const b = newBucket(policy, 0);
  t.equal(tokensAt(b, 0), 11);
  let granted = 0;
  for (let i = 0; i < 20; i++) granted += spend(b, 0).granted;
  t.equal(granted, 11, 'burst + 1 at once');
  const refused = spend(b, 0);
  t.equal(refused.granted, 0);
  t.ok(Math.abs(refused.refuseMs - 20) < 1e-6, 'the next token in one period (20 ms)');
  t.equal(tokensAt(b, 19.9), 0);
  t.equal(tokensAt(b, 20), 1);
  t.equal(tokensAt(b, 220), 11, 'full again after (burst + 1) periods');
  t.equal(tokensAt(b, 10_000), 11, 'never more than full');
  t.ok(isIdle(b, 220));
  t.notOk(isIdle(b, 219));
});

t.test('burst 0: one request per period', async (t) => {
  const b = newBucket({ rps: 1, burst: 0, blockMs: 0 }, 0);
  t.equal(spend(b, 0).granted, 1);
  t.equal(spend(b, 500).granted, 0);
  t.equal(spend(b, 1000).granted, 1);
});

t.test('fractional rates: 0.5 rps is a token every 2 s', async (t) => {
  const b = newBucket({ rps: 0.5, burst: 0, blockMs: 0 }, 0);
  t.equal(spend(b, 0).granted, 1);
  t.ok(Math.abs(spend(b, 0).refuseMs - 2000) < 1e-6);
  t.equal(spend(b, 2000).granted, 1);
});

t.test('over any window, at most burst + 1 + rate × T are granted', async (t) => {
  const b = newBucket(policy, 0);
  let granted = 0;
  let now = 0;
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  while (now <= 5000) {
    granted += spend(b, now, 1 + Math.floor(random() * 4)).granted;
    now += 0.1 + random() * 3;
  }
  t.ok(granted <= 11 + 50 * 5, `${granted} granted in 5 s`);
  t.ok(granted >= 11 + 50 * 5 - 2, 'and no fewer (a client asking all the time gets the rate)');
});

t.test(
  'reserved tokens: unavailable until settled, counted from when they are reported',
  async (t) => {
    const b = newBucket({ rps: 10, burst: 20, blockMs: 0 }, 0);
    t.equal(takeTokens(b, 0, 1, 4, 0).granted, 5, 'a quarter of 21 leased');
    t.equal(tokensAt(b, 0), 16);
    settleTokens(b, 0, 1, 0);
    t.equal(tokensAt(b, 0), 16, 'one spent (clock moved), four still reserved');
    t.equal(tokensAt(b, 600), 17, 'refilled, less the reserved four: 21 in all, never more');
    t.notOk(isIdle(b, 1000), 'a bucket with reserved tokens is not forgotten');
    settleTokens(b, 600, 0, 4);
    t.equal(tokensAt(b, 600), 21);
    t.ok(isIdle(b, 600));
    settleTokens(b, 600, 5, 5);
    t.equal(tokensAt(b, 600), 21, 'settling more than reserved changes nothing');
  },
);

t.test(
  'a reservation never settled (its edge died) counts as spent after RESERVATION_MS',
  async (t) => {
    const b = newBucket({ rps: 10, burst: 1, blockMs: 0 }, 0);
    t.equal(takeTokens(b, 0, 2, 1, 0).granted, 2);
    t.equal(tokensAt(b, RESERVATION_MS - 1), 0);
    t.equal(tokensAt(b, RESERVATION_MS), 0, 'spent at expiry: the clock moves from there');
    t.equal(tokensAt(b, RESERVATION_MS + 200), 2);
  },
);

t.test('a refusal while every token is reserved retries soon', async (t) => {
  const b = newBucket({ rps: 1, burst: 1, blockMs: 0 }, 0);
  t.equal(takeTokens(b, 0, 2, 1, 0).granted, 2);
  const r = takeTokens(b, 0, 1, 1, 5000);
  t.same([r.granted, r.refuseMs, r.held], [0, 50, true], 'held: wait and ask again');
  t.equal(b.blockedUntil, 0, 'tokens held elsewhere are no reason to block');
  settleTokens(b, 0, 2, 0);
  const spent = takeTokens(b, 0, 1, 1, 5000);
  t.same([spent.granted, spent.held, spent.refuseMs], [0, false, 5000], 'spent: over, blocked');
});

t.test(
  'spread: a well-filled bucket leases a share, a nearly empty one what is asked',
  async (t) => {
    const b = newBucket({ rps: 1000, burst: 999, blockMs: 0 }, 0);
    t.equal(takeTokens(b, 0, 1, 4, 0).granted, 250, 'a quarter of 1000');
    t.equal(takeTokens(b, 0, 1, 4, 0).granted, 187);
    const small = newBucket({ rps: 1, burst: 2, blockMs: 0 }, 0);
    t.same(takeTokens(small, 0, 1, 4, 0), { granted: 1, refuseMs: 0, remaining: 2, held: false });
    t.same(
      takeTokens(small, 0, 5, 4, 0),
      { granted: 2, refuseMs: 0, remaining: 0, held: false },
      'no more than held',
    );
  },
);

t.test(
  'block_delay: the first refusal blocks for that long, not extended, then the bucket decides',
  async (t) => {
    const b = newBucket({ rps: 20, burst: 0, blockMs: 1500 }, 0);
    t.equal(spend(b, 0, 1, 1500).granted, 1);
    const first = spend(b, 10, 1, 1500);
    t.same([first.granted, first.refuseMs], [0, 1500]);
    t.ok(isOverLimit(b, 500), 'blocked although tokens refilled');
    const during = spend(b, 1000, 1, 1500);
    t.same([during.granted, during.refuseMs], [0, 510], 'the block is not extended');
    t.equal(msUntilFull(b, 1000), 510);
    t.equal(spend(b, 1510, 1, 1500).granted, 1, 'accepted once it ends');
  },
);

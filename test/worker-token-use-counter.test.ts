import t from 'tap';
import { MAX_USES_PER_REPORT, type TokenUseReport } from '../shared/ipc.js';
import type { Session } from '../worker/session-cache.js';
import { TokenUseCounter, USE_FLUSH_MS } from '../worker/token-use-counter.js';

const session = (tokenId: string): Session => ({
  user: 'u',
  iat: 1,
  exp: 2,
  tokenId,
  keyId: 1,
  cleanAt: 0,
});

t.test('counts per token, handed over on the timer and on flush', async (t) => {
  const reports: TokenUseReport[][] = [];
  const counter = new TokenUseCounter((uses) => reports.push(uses));
  const a = session('a');
  for (let i = 0; i < 5; i++) counter.count(a);
  counter.count(session('b'));
  t.equal(counter.pending, 2);
  await new Promise((r) => setTimeout(r, USE_FLUSH_MS + 100));
  t.same(reports, [
    [
      { tokenId: 'a', user: 'u', iat: 1, exp: 2, count: 5 },
      { tokenId: 'b', user: 'u', iat: 1, exp: 2, count: 1 },
    ],
  ]);
  counter.count(a);
  counter.flush();
  t.same(reports[1], [{ tokenId: 'a', user: 'u', iat: 1, exp: 2, count: 1 }], 'from zero again');
  counter.flush();
  t.equal(reports.length, 2, 'nothing pending: nothing sent');
});

t.test('memory is bounded: a full map is handed over at once', async (t) => {
  const reports: TokenUseReport[][] = [];
  const counter = new TokenUseCounter((uses) => reports.push(uses));
  for (let i = 0; i <= MAX_USES_PER_REPORT; i++) counter.count(session(`t${i}`));
  t.equal(reports.length, 1);
  t.equal(reports[0]?.length, MAX_USES_PER_REPORT);
  t.equal(counter.pending, 1);
  counter.flush();
});

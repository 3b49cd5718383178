// Two CLI commands started at the same instant on a stopped gateway's store (attack 24): each
// process opened and closed the store in turn, and one of them failed with a bare lmdb-js
// "Invalid argument" (then "Attempting to setup locks after open", on every later open of
// that process). Real processes, each opening, using and closing the store in a loop as
// `proxyauth stats`, `unban` and a starting supervisor do, all starting at one instant.
import t, { type Test } from 'tap';
import { openStore } from '../shared/store.js';
import { type ChurnTally, churnTogether } from './helpers/store-process.js';

// Before the fix, within this: rw + ro, rw + rw and both creation cases failed in 2 runs of 2,
// ro + ro in 1 of 2 (and in 2 of 2 runs of a plain node script).
const CHURN_MS = 1500;
/** Each process goes on past CHURN_MS until it opened the store this often (a loaded CI machine). */
const MIN_OPENS = 25;

async function existingStore(dir: string): Promise<void> {
  const store = openStore(dir, { readOnly: false });
  await store.recordTokens([{ tokenId: 'a', user: 'ann', iat: 1, exp: 2 }]);
  await store.close();
}

function checkTallies(t: Test, tallies: ChurnTally[], allowed: readonly string[]): void {
  for (const [i, tally] of tallies.entries()) {
    t.ok(tally.opens > 20, `process ${i} opened the store ${tally.opens} times`);
    const unexpected = tally.errors.filter((e) => !allowed.includes(e.code));
    t.same(unexpected, [], `process ${i}: no failure but ${allowed.join(', ') || 'none'}`);
    t.ok(tally.failures < tally.opens, `process ${i}: ${tally.failures} failed opens`);
  }
}

for (const modes of [
  ['ro', 'ro'],
  ['rw', 'ro'],
  ['rw', 'rw'],
] as const) {
  t.test(`${modes.join(' + ')} on a stopped gateway's store, at the same instant`, async (t) => {
    const dir = t.testdir();
    await existingStore(dir);
    checkTallies(t, await churnTogether(dir, modes, CHURN_MS, MIN_OPENS), []);
  });
}

for (const other of ['ro-newest', 'rw-newest'] as const) {
  t.test(`${other.slice(0, 2)} while a supervisor creates the store`, async (t) => {
    const dir = t.testdir();
    const [creator, command] = await churnTogether(dir, ['create', other], CHURN_MS, MIN_OPENS);
    checkTallies(t, [creator!], []);
    // Before the file is there (or while it is empty), the command is told to start the
    // gateway first; nothing else.
    checkTallies(t, [command!], ['STORE_MISSING']);
  });
}

// A process that opens and closes a store over and over, as CLI commands run back to back do,
// for the tests of processes opening the store at the same instant. Run through churnInChild()
// (store-process.ts).
//
//   store-churn.ts <dir> <mode> <forMs> [minOpens]
//
// ro: opens the store of <dir> read-only (as `proxyauth stats`), then reads. rw: a writer that
// never creates (as `proxyauth unban`), then writes. create: creates a new store each time, in
// <dir>/<n> (as a supervisor starting on an empty data dir). ro-newest, rw-newest: as ro and
// rw, on the newest of those stores (the one most likely being created at that instant).
// Prints {"ready":true} once loaded, and starts on the first line read from stdin, so that
// processes started one after the other begin together; loops for `forMs` and until it opened
// the store `minOpens` times (a loaded machine is slower: at most 30 s in all), then prints:
// {"opens":n,"failures":n,"errors":[{"code","message"}...]} (the first distinct few).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openStore } from '../../shared/store.js';

const [dir, mode, forMs, minOpens = '0'] = process.argv.slice(2) as [string, string, string];
/** However slow the machine, the loop ends by then. */
const MAX_MS = 30_000;

interface Failure {
  code: string;
  message: string;
}

function newest(): string {
  const rounds = readdirSync(dir).map(Number).filter(Number.isInteger);
  return join(dir, String(Math.max(0, ...rounds)));
}

async function once(round: number): Promise<void> {
  const readOnly = mode.startsWith('ro');
  const create = mode === 'create';
  const dataDir = create ? join(dir, String(round)) : mode.endsWith('-newest') ? newest() : dir;
  const store = openStore(dataDir, { readOnly, create });
  try {
    if (readOnly) store.counts();
    else await store.unban('user', 'nobody');
  } finally {
    await store.close();
  }
}

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const lines = createInterface({ input: process.stdin });
await lines[Symbol.asyncIterator]().next();
lines.close();
const start = Date.now();
const end = start + Number(forMs);
const tally = { opens: 0, failures: 0, errors: [] as Failure[] };
while ((Date.now() < end || tally.opens < Number(minOpens)) && Date.now() < start + MAX_MS) {
  try {
    await once(tally.opens++);
  } catch (err) {
    tally.failures++;
    const failure = { code: String((err as { code?: unknown }).code), message: String(err) };
    if (tally.errors.length < 5 && !tally.errors.some((e) => e.message === failure.message)) {
      tally.errors.push(failure);
    }
  }
}
process.stdout.write(`${JSON.stringify(tally)}\n`);

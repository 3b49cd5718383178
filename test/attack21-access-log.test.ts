import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type AccessEntry, AccessLog } from '../shared/access-log.js';

/*
 * The access log copies a batch as latin1 when every field took the plain-ASCII path
 * (shared/access-log.ts): seeded random mixes of ASCII and non-ASCII fields, with paths long
 * enough that batches are flushed by the size bound in the middle of the mix (the ASCII flag is
 * reset by every flush), must come back line for line, as valid UTF-8.
 */

const FIELDS = ['/plain', '/café', '/日本', '/\u{1F600}', '/"q"\\', '/\u00ff\u0080', 'zoë', 'bob'];

function entries(seed: number, count: number): AccessEntry[] {
  let s = seed;
  const next = (n: number) => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % n;
  };
  const pick = () => FIELDS[next(FIELDS.length)]!;
  return Array.from({ length: count }, (_, i) => ({
    ip: i % 2 === 0 ? '127.0.0.1' : '::1',
    method: next(10) === 0 ? 'GÉT' : 'GET',
    // Some paths of ~40k chars: a batch passes the 256k-char bound every few lines.
    path: `${pick()}/${i}${next(4) === 0 ? 'x'.repeat(40_000) : ''}${pick()}`,
    status: 200,
    ms: i,
    user: next(3) === 0 ? undefined : pick(),
    route: next(3) === 0 ? undefined : pick(),
    code: undefined,
  }));
}

t.test('random ASCII and non-ASCII lines across size-bound flushes', async (t) => {
  for (const seed of [1, 2, 3, 4]) {
    const file = join(t.testdir(), `access-${seed}.log`);
    const fd = openSync(file, 'a');
    const log = new AccessLog(fd);
    const sent = entries(seed, 120);
    for (const e of sent) log.write(e);
    log.flush();
    closeSync(fd);
    const raw = readFileSync(file);
    t.equal(Buffer.compare(raw, Buffer.from(raw.toString('utf8'), 'utf8')), 0, 'valid UTF-8');
    const lines = raw.toString('utf8').trimEnd().split('\n');
    t.equal(lines.length, sent.length, `seed ${seed}: every line`);
    const bad = lines.filter((line, i) => {
      const got = JSON.parse(line) as Record<string, unknown>;
      const e = sent[i]!;
      return (
        got.path !== e.path ||
        got.method !== e.method ||
        got.user !== e.user ||
        got.route !== e.route ||
        got.ip !== e.ip
      );
    });
    t.same(bad, [], `seed ${seed}: every field as written`);
  }
});

import t from 'tap';
import { classifyLine } from '../supervisor/log-line.js';
import { LogRing, MAX_RING_CHARS } from '../supervisor/log-ring.js';

t.test('the ring keeps the newest lines, oldest first and newest last', async (t) => {
  const ring = new LogRing(3);
  t.same(ring.last(10), []);
  ring.push('a');
  ring.push('b');
  t.same(ring.last(10), ['a', 'b']);
  for (const l of ['c', 'd', 'e']) ring.push(l);
  t.equal(ring.size, 3);
  t.same(ring.last(10), ['c', 'd', 'e']);
  t.same(ring.last(2), ['d', 'e']);
  t.same(ring.last(0), []);
  t.throws(() => new LogRing(0), RangeError);
});

t.test('the ring is bounded in characters too: the oldest lines go first', async (t) => {
  const ring = new LogRing(1000, 100);
  for (let i = 0; i < 10; i++) ring.push(`${i}`.repeat(30));
  t.equal(ring.size, 3, 'three 30-character lines fit in 100');
  t.equal(ring.chars, 90);
  t.same(ring.last(10), ['7'.repeat(30), '8'.repeat(30), '9'.repeat(30)]);
  ring.push('x'.repeat(95));
  t.same(ring.last(10), ['x'.repeat(95)], 'a large line pushes out as many as it needs');
  ring.push('y'.repeat(500));
  t.same(ring.last(10), ['y'.repeat(100)], 'a line larger than the bound is kept cut');
  t.equal(ring.chars, 100);
  // Both bounds at once: capacity 3, and the characters.
  const both = new LogRing(3, 50);
  for (const line of ['a'.repeat(10), 'b'.repeat(10), 'c'.repeat(10), 'd'.repeat(10)])
    both.push(line);
  t.same(both.last(5), ['b'.repeat(10), 'c'.repeat(10), 'd'.repeat(10)], 'capacity first');
  both.push('e'.repeat(40));
  t.same(both.last(5), ['d'.repeat(10), 'e'.repeat(40)], 'then characters');
  t.equal(both.chars, 50);
  t.equal(MAX_RING_CHARS, 64 * 1024 * 1024, 'the default bound');
});

t.test('lines are classified by level and kind, in both formats', async (t) => {
  t.same(classifyLine('{"ts":"2026-01-01T00:00:00.000Z","type":"access","pid":1,"ip":"::1"}'), {
    level: 'info',
    kind: 'access',
  });
  t.same(classifyLine('{"component":"edge","level":"warn","message":"x"}'), {
    level: 'warn',
    kind: 'app',
  });
  t.same(classifyLine('2026-01-01T00:00:00.000Z ACCESS pid=1 ::1 "GET /" 200 1ms'), {
    level: 'info',
    kind: 'access',
  });
  t.same(classifyLine('2026-01-01T00:00:00.000Z ERROR edge boom'), { level: 'error', kind: 'app' });
  t.same(classifyLine('2026-01-01T00:00:00.000Z \x1b[90mDEBUG\x1b[0m edge x'), {
    level: 'debug',
    kind: 'app',
  });
  t.same(classifyLine('stray output'), { level: 'info', kind: 'app' });
  // A message that quotes a level is not the line's level.
  t.same(classifyLine('{"component":"x","level":"error","message":"\\"level\\":\\"debug\\""}'), {
    level: 'error',
    kind: 'app',
  });
});

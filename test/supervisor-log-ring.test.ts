import t from 'tap';
import { classifyLine } from '../supervisor/log-line.js';
import { LogRing } from '../supervisor/log-ring.js';

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

import { openSync, readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { ReadySignal, readReadiness } from '../supervisor/ready-signal.js';

t.test('writes one line, once, then closes the fd', async (t) => {
  const dir = t.testdir({});
  const file = `${dir}/ready`;
  const fd = openSync(file, 'w');
  const signal = new ReadySignal(fd);
  const line = {
    ready: true as const,
    host: '127.0.0.1',
    port: 1234,
    tls: false,
    pid: 1,
    edges: [2, 3],
    generation: 1,
  };
  t.equal(signal.send(line), undefined);
  t.equal(signal.sent, true);
  t.equal(signal.send({ ready: false, code: 'X', error: 'late' }), undefined, 'later calls: no-op');
  t.equal(readFileSync(file, 'utf8'), `${JSON.stringify(line)}\n`);
  t.throws(() => openSync(`/proc/self/fd/${fd}`, 'r'), 'the fd is closed');
});

t.test('a bad fd is reported, not thrown', async (t) => {
  const signal = new ReadySignal(987_654);
  t.match(signal.send({ ready: false, code: 'X', error: 'y' }), { code: 'EBADF' });
});

t.test('reader: the first line, or not-ready when the stream ends without one', async (t) => {
  const stream = new PassThrough();
  const reading = readReadiness(stream, 1_000);
  stream.write('{"ready":false,"code":"PORT_IN_USE",');
  stream.write('"error":"taken"}\nrest');
  t.same(await reading, { ready: false, code: 'PORT_IN_USE', error: 'taken' });
  const closed = new PassThrough();
  const ended = readReadiness(closed, 1_000);
  closed.end();
  t.match(await ended, { ready: false, code: 'NO_READINESS' });
  const garbage = new PassThrough();
  const parsing = readReadiness(garbage, 1_000);
  garbage.write('gateway started\n');
  await t.rejects(parsing, /not a readiness line/);
  await t.rejects(readReadiness(new PassThrough(), 50), /no readiness line within 50 ms/);
});

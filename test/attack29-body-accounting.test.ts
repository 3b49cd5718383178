// attack29: the edge's count of bodies read while their answers wait (worker/uws-io.ts
// queuedWhileBlocked), driven through a synthetic uWS response: no path leaves it drifting, and a
// body whose request ended is dropped, not queued (endStreamedBody, called by dispatch.ts finish).
import t from 'tap';
import { SyntheticRequest } from '../worker/explain-exchange.js';
import {
  endStreamedBody,
  openExchange,
  queuedWhileBlocked,
  releaseQueued,
  requestBodyStream,
} from '../worker/uws-io.js';
import { DrippingResponse } from './helpers/dripping-response.js';

const MIB = 1024 * 1024;
const piece = (): ArrayBuffer => new ArrayBuffer(MIB);

function open(headers: [string, string][] = [['content-length', String(1024 * MIB)]]) {
  const res = new DrippingResponse();
  const ex = openExchange(res, new SyntheticRequest('POST', '/x', [['host', 'h'], ...headers]));
  const stream = requestBodyStream(ex);
  return { res, ex, stream };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test(
  'blocked toggling, partial reads, release twice: the count comes back to its base',
  async (t) => {
    const base = queuedWhileBlocked();
    const { res, ex, stream } = open([['transfer-encoding', 'chunked']]);
    for (let round = 0; round < 20; round++) {
      ex.blocked = round % 2 === 0;
      for (let i = 0; i < 3; i++) res.handler!(piece(), false);
      if (round % 3 === 0) {
        // The upstream reads a little: a part of the queue.
        stream.read(MIB);
        await tick();
      }
      const counted = queuedWhileBlocked() - base;
      t.ok(
        counted >= 0 && counted <= stream.readableLength + MIB,
        `round ${round}: ${counted / MIB} MiB counted of ${stream.readableLength / MIB} queued`,
      );
    }
    // The upstream takes all of it: nothing counted.
    stream.on('data', () => undefined);
    await tick();
    t.equal(queuedWhileBlocked(), base, 'read below its bound: not counted');
    stream.pause();
    ex.blocked = true;
    for (let i = 0; i < 4; i++) res.handler!(piece(), false);
    t.ok(queuedWhileBlocked() > base);
    endStreamedBody(ex);
    endStreamedBody(ex);
    releaseQueued(ex);
    t.equal(queuedWhileBlocked(), base, 'released once, whatever is called after');
  },
);

t.test('many exchanges ended in every state leave nothing counted', async (t) => {
  const base = queuedWhileBlocked();
  const all = Array.from({ length: 30 }, () => open());
  all.forEach((o, i) => {
    o.ex.blocked = i % 3 !== 0;
    for (let k = 0; k < (i % 5) + 1; k++) o.res.handler!(piece(), false);
  });
  t.ok(queuedWhileBlocked() > base);
  all.forEach((o, i) => {
    if (i % 2 === 0) o.stream.destroy(); // a reader that failed
    endStreamedBody(o.ex);
    // The rest of the body arrives after the request ended.
    o.res.handler!(piece(), false);
  });
  t.equal(queuedWhileBlocked(), base, 'released');
});

t.test('a body still arriving after its request ended is dropped, not queued', async (t) => {
  const { res, ex, stream } = open();
  // The reader attached, then left (h1-client after an upstream failure).
  const onData = (): undefined => undefined;
  stream.on('data', onData);
  stream.pause();
  stream.off('data', onData);
  res.handler!(piece(), false);
  t.ok(stream.readableLength >= MIB, 'queued while the request runs');
  endStreamedBody(ex);
  await tick();
  t.equal(stream.readableLength, 0, 'its queue is dropped');
  for (let i = 0; i < 100; i++) res.handler!(piece(), false);
  t.equal(stream.readableLength, 0, 'nothing queued from 100 MiB more');
  t.ok(ex.unreadBody, 'the body is still unread');
  res.handler!(new ArrayBuffer(10), true);
  t.notOk(ex.unreadBody, 'until its last byte arrived');
});

t.test('a body that ended before its request was read whole', async (t) => {
  const { res, ex, stream } = open([['content-length', String(2 * MIB)]]);
  const got: Buffer[] = [];
  stream.on('data', (c: Buffer) => got.push(c));
  res.handler!(piece(), false);
  res.handler!(piece(), true);
  await tick();
  t.notOk(ex.unreadBody);
  endStreamedBody(ex);
  t.equal(
    got.reduce((n, c) => n + c.length, 0),
    2 * MIB,
  );
});

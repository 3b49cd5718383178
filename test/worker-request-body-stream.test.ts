// requestBodyStream (worker/uws-io.ts): a body streamed upstream (over 16 KiB or chunked) waits
// in the stream's queue while the upstream does not read, and the client is paused when the
// queue is full. Each uWS read is one queued Buffer (~80 bytes of heap besides its bytes), so a
// client that drips its body a byte per read makes the edge hold ~80x what the queue's bound
// counts: the bound is kept at 16 KiB (256 KiB before: ~20 MB a connection, 1.3 MB now).
import t from 'tap';
import { SyntheticRequest } from '../worker/explain-exchange.js';
import {
  BLOCKED_BODY_BYTES,
  EDGE_BLOCKED_BODY_BYTES,
  openExchange,
  queuedWhileBlocked,
  releaseQueued,
  requestBodyStream,
} from '../worker/uws-io.js';
import { DrippingResponse } from './helpers/dripping-response.js';

function open(declared: number) {
  const res = new DrippingResponse();
  const req = new SyntheticRequest('POST', '/x', [
    ['host', 'h'],
    ['content-length', String(declared)],
  ]);
  const ex = openExchange(res, req);
  const stream = requestBodyStream(ex);
  return { res, ex, stream };
}

/** One byte as uWS hands it: an ArrayBuffer overwritten after the call. */
function drip(res: DrippingResponse, byte: number, isLast: boolean): void {
  const data = new ArrayBuffer(1);
  new Uint8Array(data)[0] = byte;
  res.handler!(data, isLast);
  new Uint8Array(data)[0] = 0xee;
}

t.test('a client dripping bytes to a stalled upstream is paused at 16 KiB queued', async (t) => {
  const DECLARED = 1024 * 1024;
  const { res, stream } = open(DECLARED);
  let dripped = 0;
  // Nobody reads the stream: the upstream is stalled. The client sends until it is paused.
  while (!res.paused && dripped < 300_000) drip(res, dripped++ & 0xff, false);
  t.ok(res.paused, `paused after ${dripped} one-byte reads`);
  t.ok(dripped <= 16 * 1024 + 1, `at most 16 KiB queued (${stream.readableLength} bytes)`);
  t.equal(stream.readableLength, dripped, 'every byte is in the queue');
  // The upstream reads again: the client is resumed and the bytes come out in order.
  const out: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => out.push(chunk));
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(res.resumes >= 1, 'resumed once the queue drained');
  t.notOk(res.paused);
  const got = Buffer.concat(out);
  t.equal(got.length, dripped);
  t.ok(
    got.every((b, i) => b === (i & 0xff)),
    'the bytes as sent (copies, not uWS memory)',
  );
  stream.destroy();
});

t.test('large reads: one over the bound pauses at once, the body still whole', async (t) => {
  const { res, stream } = open(3 * 64 * 1024);
  const piece = (fill: number) => {
    const data = new ArrayBuffer(64 * 1024);
    new Uint8Array(data).fill(fill);
    return data;
  };
  res.handler!(piece(1), false);
  t.ok(res.paused, 'a 64 KiB read fills the queue: paused');
  const out: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => out.push(chunk));
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(res.paused, 'resumed');
  res.handler!(piece(2), false);
  res.handler!(piece(3), true);
  await new Promise((resolve) => stream.once('end', resolve));
  const got = Buffer.concat(out);
  t.equal(got.length, 3 * 64 * 1024);
  t.equal(got[0], 1);
  t.equal(got[64 * 1024], 2);
  t.equal(got[3 * 64 * 1024 - 1], 3);
});

// While an answer waits for its client's socket, uWS reads that socket anyway (uws-io.ts
// pauseBody): a streamed body's queue then passes its 16 KiB bound. One connection is cut past
// BLOCKED_BODY_BYTES; all of an edge's together past EDGE_BLOCKED_BODY_BYTES (before, N clients
// made an edge hold N x 64 MiB). `blocked` is what a refused write of the answer sets.
const MIB = 1024 * 1024;
const piece = (): ArrayBuffer => new ArrayBuffer(MIB);

t.test("an edge's bodies read while their answers wait are bounded together", async (t) => {
  const base = queuedWhileBlocked();
  const opened = Array.from({ length: 8 }, () => open(1024 * MIB));
  for (const o of opened) o.ex.blocked = true;
  let peak = 0;
  const cutAt: number[] = [];
  for (let round = 0; round < 80; round++) {
    for (const o of opened) {
      if (o.stream.destroyed) continue;
      const before = o.stream.readableLength;
      o.res.handler!(piece(), false);
      if (o.stream.destroyed) cutAt.push(before);
    }
    let held = 0;
    for (const o of opened) if (!o.stream.destroyed) held += o.stream.readableLength;
    peak = Math.max(peak, held);
  }
  t.ok(peak <= EDGE_BLOCKED_BODY_BYTES, `held at most ${peak / MIB} MiB at once`);
  t.ok(peak >= EDGE_BLOCKED_BODY_BYTES - 8 * MIB, 'up to the bound');
  t.equal(cutAt.length, 8, 'every connection cut in the end (80 MiB sent each)');
  t.ok(
    cutAt.filter((queued) => queued < BLOCKED_BODY_BYTES - MIB).length >= 4,
    `cut before their own bound: ${cutAt.map((q) => q / MIB).join(', ')} MiB queued`,
  );
  for (const o of opened) {
    t.ok(o.res.answer().closed, 'connection cut');
    releaseQueued(o.ex);
  }
  t.equal(queuedWhileBlocked(), base, 'nothing left counted once they ended');
});

t.test("a body read at its upstream's pace is never cut by the edge's bound", async (t) => {
  const base = queuedWhileBlocked();
  // Fill the edge's count to just under its bound with blocked bodies.
  const full = Array.from({ length: 4 }, () => open(1024 * MIB));
  for (const o of full) o.ex.blocked = true;
  for (let i = 0; i < 62; i++) for (const o of full) o.res.handler!(piece(), false);
  t.equal(queuedWhileBlocked() - base, 248 * MIB, 'the edge is nearly full');
  t.notOk(
    full.some((o) => o.stream.destroyed),
    'none cut yet (62 MiB each)',
  );
  // A body whose answer does not wait: paused at its bound, never cut.
  const paced = open(1024 * MIB);
  paced.res.handler!(piece(), false);
  t.ok(paced.res.paused, 'paused at its bound');
  t.notOk(paced.stream.destroyed, 'not cut');
  // A blocked body the upstream reads as it comes (from the next tick: 64 KiB queue first).
  const read = open(1024 * MIB);
  read.ex.blocked = true;
  read.stream.on('data', () => undefined);
  for (let i = 0; i < 8; i++) read.res.handler!(new ArrayBuffer(8 * 1024), false);
  t.notOk(read.stream.destroyed, 'a blocked body its upstream reads is not cut');
  // A new blocked body passes the edge's bound well before its own: that connection is cut.
  const late = open(1024 * MIB);
  late.ex.blocked = true;
  let sent = 0;
  while (!late.stream.destroyed && sent < 64) {
    late.res.handler!(piece(), false);
    sent++;
  }
  t.ok(late.stream.destroyed && sent <= 9, `the body that passed the bound is cut (${sent} MiB)`);
  t.notOk(
    full.some((o) => o.stream.destroyed),
    'the others are not',
  );
  for (const o of [...full, paced, read, late]) {
    o.stream.destroy();
    releaseQueued(o.ex);
  }
  t.equal(queuedWhileBlocked(), base);
});

t.test('a body cut with no reader left does not end the process', async (t) => {
  const { res, ex, stream } = open(1024 * MIB);
  ex.blocked = true;
  // No 'data' or 'error' listener: as after h1-client detached from a failed upstream.
  for (let i = 0; i <= BLOCKED_BODY_BYTES / MIB && !stream.destroyed; i++)
    res.handler!(piece(), false);
  t.ok(stream.destroyed, 'cut past its own bound');
  await new Promise((resolve) => setImmediate(resolve));
  t.match(
    String((stream.errored as { cause?: unknown } | null)?.cause),
    /64 MiB/,
    'destroyed with its error, which nobody threw',
  );
  t.ok(res.answer().closed, 'connection cut');
  releaseQueued(ex);
});

t.test(
  'the count follows the upstream reading, and an ended exchange gives its part back',
  async (t) => {
    const base = queuedWhileBlocked();
    const { res, ex, stream } = open(1024 * MIB);
    ex.blocked = true;
    for (let i = 0; i < 8; i++) res.handler!(piece(), false);
    t.equal(queuedWhileBlocked() - base, 8 * MIB, '8 MiB counted');
    // The upstream takes it all: below the bound, the count follows.
    stream.on('data', () => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(queuedWhileBlocked(), base, 'nothing counted once it was read below its bound');
    stream.pause();
    for (let i = 0; i < 4; i++) res.handler!(piece(), false);
    t.ok(queuedWhileBlocked() - base >= 3 * MIB, 'counted again');
    // The exchange ends with its body still queued (an upstream failed): released for good.
    releaseQueued(ex);
    t.equal(queuedWhileBlocked(), base, 'released');
    res.handler!(piece(), false);
    t.equal(queuedWhileBlocked(), base, 'not counted after its end');
    stream.destroy();
  },
);

// requestBodyStream (worker/uws-io.ts): a body streamed upstream (over 16 KiB or chunked) waits
// in the stream's queue while the upstream does not read, and the client is paused when the
// queue is full. Each uWS read is one queued Buffer (~80 bytes of heap besides its bytes), so a
// client that drips its body a byte per read makes the edge hold ~80x what the queue's bound
// counts: the bound is kept at 16 KiB (256 KiB before: ~20 MB a connection, 1.3 MB now).
import t from 'tap';
import { RecordingResponse, SyntheticRequest } from '../worker/explain-exchange.js';
import { openExchange, requestBodyStream } from '../worker/uws-io.js';

type OnData = (chunk: ArrayBuffer, isLast: boolean) => void;

/** A response that hands its body handler to the test and counts pauses and resumes. */
class DrippingResponse extends RecordingResponse {
  handler: OnData | undefined;
  pauses = 0;
  resumes = 0;
  paused = false;
  constructor() {
    super('127.0.0.1', undefined);
  }
  override onData(handler: OnData): this {
    this.handler = handler;
    return this;
  }
  override pause(): void {
    this.pauses++;
    this.paused = true;
  }
  override resume(): void {
    this.resumes++;
    this.paused = false;
  }
}

function open(declared: number) {
  const res = new DrippingResponse();
  const req = new SyntheticRequest('POST', '/x', [
    ['host', 'h'],
    ['content-length', String(declared)],
  ]);
  const stream = requestBodyStream(openExchange(res, req));
  return { res, stream };
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

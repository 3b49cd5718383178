// Attack on the streamed body's 16 KiB queue (worker/uws-io.ts requestBodyStream): uWS stalls a
// socket that is resumed when it was not paused, so resume() must follow a pause() one for one,
// and never come after the client left. Cases: a read of exactly 16 KiB + 1, a chunked upload
// in many reads, a client that aborts while paused, a consumer that stops (early answer).
import t from 'tap';
import { RecordingResponse, SyntheticRequest } from '../worker/explain-exchange.js';
import { endProxied, openExchange, requestBodyStream } from '../worker/uws-io.js';

type OnData = (chunk: ArrayBuffer, isLast: boolean) => void;

/** Fails the test on a resume() without a pause() before it, or any call after the abort. */
class StrictResponse extends RecordingResponse {
  handler: OnData | undefined;
  aborted: (() => void) | undefined;
  paused = false;
  gone = false;
  faults: string[] = [];
  pauses = 0;
  constructor() {
    super('127.0.0.1', undefined);
  }
  override onData(handler: OnData): this {
    this.handler = handler;
    return this;
  }
  override onAborted(handler?: () => void): this {
    this.aborted = handler;
    return this;
  }
  override pause(): void {
    if (this.gone) this.faults.push('pause after abort');
    this.pauses++;
    this.paused = true;
  }
  override resume(): void {
    if (this.gone) this.faults.push('resume after abort');
    if (!this.paused) this.faults.push('resume while not paused');
    this.paused = false;
  }
  abort(): void {
    this.gone = true;
    this.aborted?.();
  }
}

function open(headers: [string, string][]) {
  const res = new StrictResponse();
  const ex = openExchange(res, new SyntheticRequest('POST', '/x', [['host', 'h'], ...headers]));
  return { res, ex, stream: requestBodyStream(ex) };
}

function bytes(n: number, fill: number): ArrayBuffer {
  const data = new ArrayBuffer(n);
  new Uint8Array(data).fill(fill);
  return data;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('a read of exactly 16 KiB + 1: one pause, one resume, the body whole', async (t) => {
  const size = 16 * 1024 + 1;
  const { res, stream } = open([['content-length', String(size + 1)]]);
  res.handler!(bytes(size, 1), false);
  t.ok(res.paused, 'over the bound: paused');
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  await tick();
  t.notOk(res.paused, 'resumed once read');
  res.handler!(bytes(1, 2), true);
  await new Promise((resolve) => stream.once('end', resolve));
  t.equal(Buffer.concat(out).length, size + 1);
  t.same(res.faults, []);
});

t.test('16 KiB - 1 queued does not pause, 16 KiB does', async (t) => {
  const { res, stream } = open([['content-length', String(16 * 1024 + 10)]]);
  res.handler!(bytes(16 * 1024 - 1, 1), false);
  t.notOk(res.paused, 'below the bound');
  res.handler!(bytes(1, 1), false);
  t.ok(res.paused, 'at the bound: paused (push returned false)');
  stream.resume();
  await tick();
  t.notOk(res.paused);
  t.same(res.faults, []);
  stream.destroy();
});

t.test('a chunked upload in uneven reads, read slowly: whole, resumes match pauses', async (t) => {
  const { res, stream } = open([['transfer-encoding', 'chunked']]);
  const sizes = [1, 5000, 16 * 1024, 16 * 1024 + 1, 3, 70_000, 1];
  let expected = 0;
  const out: Buffer[] = [];
  for (const [i, n] of sizes.entries()) {
    // The client sends only while not paused, as uWS does.
    while (res.paused) {
      const c = stream.read() as Buffer | null;
      if (c !== null) out.push(c);
      await tick();
    }
    res.handler!(bytes(n, i + 1), i === sizes.length - 1);
    expected += n;
  }
  stream.on('data', (c: Buffer) => out.push(c));
  await new Promise((resolve) => stream.once('end', resolve));
  t.equal(Buffer.concat(out).length, expected);
  t.ok(res.pauses >= 2, `${res.pauses} pauses`);
  t.same(res.faults, []);
});

t.test('a client that aborts while paused is never resumed', async (t) => {
  const { res, stream } = open([['content-length', String(1024 * 1024)]]);
  res.handler!(bytes(64 * 1024, 1), false);
  t.ok(res.paused);
  res.abort();
  // The upstream reads on (undici drains what was queued), then the answer ends.
  stream.resume();
  await tick();
  t.same(res.faults, [], 'no resume on a socket uWS already closed');
  stream.destroy();
});

t.test(
  'the consumer stops (an early answer): the end resumes the paused upload once',
  async (t) => {
    const { res, ex, stream } = open([['content-length', String(1024 * 1024)]]);
    res.handler!(bytes(20 * 1024, 1), false);
    t.ok(res.paused);
    stream.destroy();
    endProxied(ex);
    t.notOk(res.paused, 'resumed so the rest of the body is read');
    // uWS then hands the rest; the destroyed stream takes no more and nothing pauses again.
    res.handler!(bytes(20 * 1024, 2), false);
    t.notOk(res.paused, 'not paused once the answer was sent');
    t.same(res.faults, []);
  },
);

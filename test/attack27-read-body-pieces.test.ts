// readBody (worker/uws-io.ts) gathers a body that arrives in several reads into one buffer that
// grows (test/attack27-drip-memory.test.ts has why). The bytes must come out as they went in,
// whatever the split: uWS's ArrayBuffers (reused after each call) and held Buffers, declared
// and chunked lengths, at and over the limit.
import t from 'tap';
import { RecordingResponse, SyntheticRequest } from '../worker/explain-exchange.js';
import { openExchange, readBody } from '../worker/uws-io.js';
import { seededRandom } from './helpers/seeded-random.js';

type OnData = (chunk: ArrayBuffer, isLast: boolean) => void;

/** A response whose body handler is fed `pieces` at once, each overwritten after its call. */
class PiecedResponse extends RecordingResponse {
  readonly #pieces: Buffer[];
  constructor(pieces: Buffer[]) {
    super('127.0.0.1', undefined);
    this.#pieces = pieces;
  }
  override onData(handler: OnData): this {
    const n = this.#pieces.length;
    for (let i = 0; i < n; i++) {
      const piece = this.#pieces[i]!;
      const data = new ArrayBuffer(piece.length);
      new Uint8Array(data).set(piece);
      handler(data, i === n - 1);
      // uWS reuses its memory after each call: what was not copied is overwritten.
      new Uint8Array(data).fill(0xee);
    }
    return this;
  }
}

function exchangeOf(pieces: Buffer[], framing: [string, string]) {
  const req = new SyntheticRequest('POST', '/x', [['host', 'h'], framing]);
  return openExchange(new PiecedResponse(pieces), req);
}

function split(body: Buffer, random: () => number, small: boolean): Buffer[] {
  const pieces: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const n = small ? 1 + Math.floor(random() * 3) : 1 + Math.floor(random() * 9000);
    pieces.push(body.subarray(at, at + n));
    at += n;
  }
  return pieces.length > 0 ? pieces : [Buffer.alloc(0)];
}

t.test('bodies split every way come out whole', async (t) => {
  const random = seededRandom(27);
  for (const size of [1, 2, 1023, 1024, 1025, 4096, 16383, 16384, 30000]) {
    const body = Buffer.from(Array.from({ length: size }, () => Math.floor(random() * 256)));
    for (const small of [false, true]) {
      const pieces = split(body, random, small);
      const declared = await readBody(exchangeOf(pieces, ['content-length', String(size)]), size);
      t.ok(declared.equals(body), `${size} B in ${pieces.length} pieces, content-length`);
      const chunked = await readBody(
        exchangeOf(pieces, ['transfer-encoding', 'chunked']),
        64 * 1024,
      );
      t.ok(chunked.equals(body), `${size} B in ${pieces.length} pieces, chunked`);
    }
  }
});

t.test('an empty last piece, an empty first one', async (t) => {
  const body = Buffer.from('hello world');
  const pieces = [Buffer.alloc(0), body.subarray(0, 5), body.subarray(5), Buffer.alloc(0)];
  const got = await readBody(exchangeOf(pieces, ['transfer-encoding', 'chunked']), 100);
  t.equal(got.toString(), 'hello world');
});

t.test('over the limit: BODY_TOO_LARGE, whatever the split', async (t) => {
  const body = Buffer.alloc(5000, 0x61);
  for (const small of [false, true]) {
    const pieces = split(body, seededRandom(1), small);
    await t.rejects(readBody(exchangeOf(pieces, ['transfer-encoding', 'chunked']), 4999), {
      code: 'BODY_TOO_LARGE',
    });
  }
  await t.rejects(readBody(exchangeOf([body], ['content-length', '5000']), 4999), {
    code: 'BODY_TOO_LARGE',
  });
});

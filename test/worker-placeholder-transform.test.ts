// The CSRF page transform on its own, against a fake relay: which responses it takes and what
// their head then says, identity and compressed bodies, backpressure both ways, bounded memory
// (a large page, a "zip bomb"), corrupt and truncated bodies; and the feature's compile rule.

import { randomBytes } from 'node:crypto';
import {
  brotliCompressSync,
  brotliDecompressSync,
  deflateRawSync,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateRawSync,
  inflateSync,
} from 'node:zlib';
import t from 'tap';
import { parseConfig } from '../conf/parse.js';
import type { Logger } from '../shared/log.js';
import { bodyCoding, deflateFraming, rewritableAcceptEncoding } from '../worker/content-coding.js';
import { type BodySink, compileRoutePipeline, type ResponseHeaders } from '../worker/pipeline.js';
import {
  isHtml,
  PAGE_CACHE_CONTROL,
  PlaceholderTransform,
} from '../worker/placeholder-transform.js';
import { MAX_RECODED_BODIES, recodedBodiesInFlight } from '../worker/recoded-body.js';
import { ROUTE_FEATURES } from '../worker/route-features.js';
import { csrfPlaceholders } from '../worker/steps/csrf-placeholders.js';

const TOKEN = 'K'.repeat(44);
const PAGE = '<form><input value="{{ csrf_token }}">{{csrf_token}}</form>';
const DONE =
  '<form><input value="KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK">KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK</form>';

const warnings: string[] = [];
const log: Logger = {
  debug: () => {},
  info: () => {},
  warn: (msg, fields) => warnings.push(`${msg} ${JSON.stringify(fields)}`),
  error: () => {},
};

/** A relay stand-in: records output; `full` makes writes report a full client. */
class FakeSink implements BodySink {
  chunks: Buffer[] = [];
  written = 0;
  /** Calls of write: pieces of one chunk go in one. */
  writes = 0;
  full = false;
  ended = false;
  readies = 0;
  failure: Error | undefined;
  onReady: (() => void) | undefined;
  readonly finished: Promise<void>;
  #finish!: () => void;

  constructor() {
    this.finished = new Promise((resolve) => {
      this.#finish = resolve;
    });
  }

  write(chunk: Buffer | readonly Buffer[]): boolean {
    if (this.ended || this.failure) throw new Error('write after the end');
    for (const piece of Array.isArray(chunk) ? chunk : [chunk as Buffer]) {
      this.chunks.push(piece);
      this.written += piece.length;
    }
    this.writes++;
    return !this.full;
  }
  end(): void {
    this.ended = true;
    this.#finish();
  }
  ready(): void {
    this.readies++;
    this.onReady?.();
  }
  fail(cause: Error): void {
    this.failure = cause;
    this.#finish();
  }
  body(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function transform(sink: BodySink, minted = { count: 0 }): PlaceholderTransform {
  return new PlaceholderTransform(
    () => {
      minted.count++;
      return TOKEN;
    },
    sink,
    log,
  );
}

function html(extra: ResponseHeaders = {}): ResponseHeaders {
  return { 'content-type': 'text/html; charset=utf-8', ...extra };
}

/** Feeds `chunks` as the relay would: waits for `ready` whenever push says so. */
async function feed(tr: PlaceholderTransform, sink: FakeSink, chunks: Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    if (!tr.push(chunk)) await new Promise<void>((r) => (sink.onReady = r));
  }
  tr.end();
  await sink.finished;
}

function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

t.test('content types: text/html in any case, with parameters; nothing else', async (t) => {
  for (const v of ['text/html', 'TEXT/HTML', ' text/html ; charset=utf-8', 'Text/Html;q']) {
    t.ok(isHtml(v), v);
  }
  for (const v of [undefined, '', 'text/htmlx', 'text/plain', 'application/xhtml+xml', 'html']) {
    t.notOk(isHtml(v), String(v));
  }
  t.notOk(isHtml(['text/html', 'text/html']), 'two Content-Type fields: ambiguous, left alone');
});

t.test('codings: what the gateway can undo, and Accept-Encoding upstream', async (t) => {
  t.equal(bodyCoding(undefined), 'identity');
  t.equal(bodyCoding(''), 'identity');
  t.equal(bodyCoding('Identity'), 'identity');
  t.equal(bodyCoding(' GZIP '), 'gzip');
  t.equal(bodyCoding('x-gzip'), 'gzip');
  t.equal(bodyCoding('deflate'), 'deflate');
  t.equal(bodyCoding('br'), 'br');
  for (const v of ['zstd', 'compress', 'gzip, br', 'gzip,gzip', 'bogus']) {
    t.equal(bodyCoding(v), undefined, v);
  }
  t.equal(bodyCoding(['gzip', 'br']), undefined, 'two fields are stacked codings');
  const accept: [string, string][] = [
    ['gzip, deflate, br', 'gzip, deflate, br'],
    ['gzip, deflate, br, zstd', 'gzip, deflate, br'],
    ['br;q=1.0, zstd;q=0.9, gzip;q=0.5', 'br;q=1.0, gzip;q=0.5'],
    ['*', 'identity'],
    ['zstd, compress', 'identity'],
    ['identity;q=0, zstd', 'identity;q=0'],
    ['X-GZIP', 'X-GZIP'],
    ['', ''],
  ];
  for (const [sent, kept] of accept) t.equal(rewritableAcceptEncoding(sent), kept, sent);
  const deflated = deflateSync(Buffer.from('x'));
  t.equal(deflateFraming(deflated[0]!, deflated[1]!), 'zlib');
  const raw = deflateRawSync(Buffer.from('x'));
  t.equal(deflateFraming(raw[0]!, raw[1]!), 'raw');
});

t.test('start: which responses, and the head of a rewritten one', async (t) => {
  const sink = new FakeSink();
  t.notOk(transform(sink).start(200, { 'content-type': 'text/plain' }));
  t.notOk(transform(sink).start(206, html()), '206: a part of a page is left alone');
  const untouched = html({ 'content-encoding': 'zstd', etag: '"a"' });
  t.notOk(transform(sink).start(200, untouched));
  t.equal(untouched.etag, '"a"', 'a declined head is not edited');
  t.notOk(transform(sink).start(200, html({ 'content-encoding': 'zstd' })));
  t.notOk(transform(sink).start(200, html({ 'content-encoding': 'gzip, br' })));
  t.equal(warnings.length, 2, 'each unknown coding logged once');
  t.match(warnings[0], /"coding":"zstd"/);
  const headers = html({
    etag: '"1"',
    'content-md5': 'x',
    digest: 'sha-256=x',
    'repr-digest': 'sha-256=:x:',
    'content-digest': 'sha-256=:x:',
    'accept-ranges': 'bytes',
    expires: 'never',
    'cache-control': 'public, max-age=60',
    'last-modified': 'then',
    'x-other': 'kept',
  });
  t.ok(transform(sink).start(404, headers), 'any status with a body');
  t.same(headers, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': PAGE_CACHE_CONTROL,
    'last-modified': 'then',
    'x-other': 'kept',
  });
});

t.test('identity: chunks pass at once, backpressure passes through, one token', async (t) => {
  const sink = new FakeSink();
  const minted = { count: 0 };
  const tr = transform(sink, minted);
  t.ok(tr.start(200, html()));
  t.ok(tr.push(Buffer.from(PAGE.slice(0, 25))), 'room at the client');
  t.equal(sink.written, 20, 'held back only the start of the placeholder');
  sink.full = true;
  t.notOk(tr.push(Buffer.from(PAGE.slice(25))), 'a full client pauses the upstream');
  tr.drained();
  t.equal(sink.readies, 1, 'drained: reading resumes');
  tr.end();
  t.ok(sink.ended);
  t.equal(sink.body().toString(), DONE);
  t.equal(sink.writes, 2, 'one write per upstream chunk, whatever its pieces');
  t.equal(minted.count, 1);
  const plain = new FakeSink();
  const untouched = transform(plain, minted);
  untouched.start(200, html());
  const chunk = Buffer.from('<p>no placeholder</p>');
  untouched.push(chunk);
  untouched.end();
  t.equal(plain.chunks[0], chunk, 'the same buffer');
  t.equal(minted.count, 1, 'a page without a placeholder mints nothing');
});

const CODECS: [string, string, (b: Buffer) => Buffer, (b: Buffer) => Buffer][] = [
  ['gzip', 'gzip', (b) => gzipSync(b), gunzipSync],
  ['x-gzip', 'x-gzip', (b) => gzipSync(b), gunzipSync],
  ['deflate', 'deflate', (b) => deflateSync(b), inflateSync],
  ['raw deflate', 'deflate', (b) => deflateRawSync(b), inflateRawSync],
  ['br', 'br', (b) => brotliCompressSync(b), brotliDecompressSync],
];

for (const [name, coding, encode, decode] of CODECS) {
  t.test(`${name}: decoded, rewritten, encoded again, any chunking`, async (t) => {
    const body = encode(Buffer.from(PAGE));
    for (const size of [1, 3, 7, body.length]) {
      const sink = new FakeSink();
      const tr = transform(sink);
      t.ok(tr.start(200, html({ 'content-encoding': coding })));
      await feed(tr, sink, pieces(body, size));
      t.notOk(sink.failure, `${size}: no failure`);
      t.equal(decode(sink.body()).toString(), DONE, `${name} in chunks of ${size}`);
    }
  });
}

t.test('an empty compressed body stays empty; a one-byte deflate body is refused', async (t) => {
  const sink = new FakeSink();
  const tr = transform(sink);
  tr.start(200, html({ 'content-encoding': 'gzip' }));
  tr.end();
  await sink.finished;
  t.ok(sink.ended);
  t.equal(sink.written, 0);
  const one = new FakeSink();
  const deflate = transform(one);
  deflate.start(200, html({ 'content-encoding': 'deflate' }));
  deflate.push(Buffer.from([0x78]));
  deflate.end();
  await one.finished;
  t.ok(one.failure, 'a truncated body is a failure, not a page');
});

t.test('corrupt and truncated bodies fail, once, with the reason', async (t) => {
  const cases: [string, string, Buffer][] = [
    ['gzip', 'garbage', Buffer.from('not gzip at all, not at all')],
    ['gzip', 'truncated', gzipSync(Buffer.from(PAGE.repeat(20))).subarray(0, 30)],
    // Not random bytes: about 4% of random 64-byte buffers are a valid brotli stream (measured).
    ['br', 'garbage', Buffer.alloc(64, 0xff)],
    ['deflate', 'garbage', Buffer.from([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff])],
  ];
  for (const [coding, what, body] of cases) {
    const sink = new FakeSink();
    const tr = transform(sink);
    tr.start(200, html({ 'content-encoding': coding }));
    await feed(tr, sink, [body]);
    t.notOk(sink.ended, `${coding} ${what}: never ends as complete`);
    t.match(sink.failure?.message, new RegExp(`^corrupt ${coding} body from the upstream \\(`));
  }
});

t.test('destroy: nothing more reaches the sink', async (t) => {
  const sink = new FakeSink();
  const tr = transform(sink);
  tr.start(200, html({ 'content-encoding': 'gzip' }));
  tr.push(gzipSync(Buffer.from(PAGE.repeat(1000))));
  tr.destroy();
  tr.end();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(sink.written, 0);
  t.notOk(sink.ended);
  t.notOk(sink.failure);
});

/**
 * Pushes `body` in 64 KiB chunks into a transform whose client never drains, until the
 * transform refuses more and stays quiet; returns how far it got.
 */
async function stall(
  body: Buffer,
): Promise<{ sink: FakeSink; tr: PlaceholderTransform; read: number }> {
  const sink = new FakeSink();
  sink.full = true;
  const tr = transform(sink);
  tr.start(200, html({ 'content-encoding': 'gzip' }));
  let read = 0;
  const chunks = pieces(body, 65536);
  let i = 0;
  for (;;) {
    while (i < chunks.length) {
      const chunk = chunks[i++]!;
      read += chunk.length;
      if (!tr.push(chunk)) break;
    }
    const resumed = await Promise.race([
      new Promise<boolean>((r) => (sink.onReady = () => r(true))),
      new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
    ]);
    if (!resumed || i === chunks.length) break;
  }
  return { sink, tr, read };
}

t.test('a client that does not drain: input and output stop, memory stays bounded', async (t) => {
  const page = Buffer.from(`{{ csrf_token }}${randomBytes(6 * 1024 * 1024).toString('base64')}`);
  const body = gzipSync(page, { level: 1 });
  const { sink, tr, read } = await stall(body);
  t.ok(read < 1024 * 1024, `the upstream was read ${read} of ${body.length} bytes, then paused`);
  t.ok(sink.written < 1024 * 1024, `${sink.written} bytes went to the full client`);
  // The client drains from now on: everything arrives.
  sink.full = false;
  const rest = pieces(body.subarray(read), 65536);
  tr.drained();
  await feed(tr, sink, rest);
  const out = gunzipSync(sink.body());
  t.equal(out.length, page.length - 16 + TOKEN.length);
  t.ok(out.subarray(TOKEN.length).equals(page.subarray(16)), 'every byte, in order');
});

t.test('a zip bomb is inflated no faster than the client reads', async (t) => {
  const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 });
  t.ok(bomb.length < 512 * 1024, `256 MiB in ${bomb.length} bytes`);
  const before = process.memoryUsage().arrayBuffers;
  const { sink, tr, read } = await stall(bomb);
  const grown = process.memoryUsage().arrayBuffers - before;
  t.notOk(sink.ended, `stalled after reading ${read} bytes, ${sink.written} sent`);
  t.ok(grown < 32 * 1024 * 1024, `memory grew by ${grown} bytes, not by the inflated size`);
  tr.destroy();
});

t.test('the feature compiles only with session_cookie and csrf_token', async (t) => {
  const files = { config: '/v/config.json', routes: '/v/routes.yml' };
  const route = { prefix: '/x', target: 'http://127.0.0.1:1' };
  const cases: [Record<string, unknown>, boolean][] = [
    [{}, false],
    [{ session_cookie: true }, true],
    [{ session_cookie: true, csrf_token: false }, false],
  ];
  for (const [extra, on] of cases) {
    const { config, routes } = parseConfig(
      { secret: 's'.repeat(64), users: [], ...extra },
      { routes: [route] },
      files,
    );
    const full = compileRoutePipeline(routes[0]!, config, ROUTE_FEATURES);
    const alone = compileRoutePipeline(routes[0]!, config, [csrfPlaceholders]);
    t.equal(full.transform !== undefined, on, `${JSON.stringify(extra)}: transform`);
    t.equal(alone.steps.length, on ? 1 : 0, `${JSON.stringify(extra)}: Accept-Encoding step`);
  }
});

t.test('compressed pages rewritten at once are capped: one more is refused 503', async (t) => {
  const gz = gzipSync(Buffer.from(PAGE));
  const started = recodedBodiesInFlight();
  const open: PlaceholderTransform[] = [];
  for (let i = started; i < MAX_RECODED_BODIES; i++) {
    const tr = transform(new FakeSink());
    t.ok(tr.start(200, html({ 'content-encoding': 'gzip' })));
    tr.push(gz.subarray(0, 10)); // the zlib streams open at the first byte
    open.push(tr);
  }
  t.equal(recodedBodiesInFlight(), MAX_RECODED_BODIES, 'at the cap');
  const sink = new FakeSink();
  const over = transform(sink);
  t.ok(over.start(200, html({ 'content-encoding': 'gzip' })), 'the head is still accepted');
  over.push(gz);
  over.end();
  t.match(sink.failure, { code: 'OVERLOADED', status: 503 }, 'refused, nothing written');
  t.equal(sink.written, 0);
  t.notOk(sink.ended);
  over.destroy();
  t.equal(recodedBodiesInFlight(), MAX_RECODED_BODIES, 'the refused one held no place');
  // A page that ends frees its place; so does one abandoned (client gone).
  open.pop()!.destroy();
  const done = new FakeSink();
  const next = transform(done);
  t.ok(next.start(200, html({ 'content-encoding': 'gzip' })));
  await feed(next, done, [gz]);
  t.equal(gunzipSync(done.body()).toString(), DONE, 'with a place free, a page is rewritten');
  t.equal(recodedBodiesInFlight(), MAX_RECODED_BODIES - 1, 'a finished page freed its place');
  for (const tr of open) tr.destroy();
  t.equal(recodedBodiesInFlight(), started, 'every place given back');
});

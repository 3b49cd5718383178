/*
 * The conformance suite's table (test/upstream-client-conformance.test.ts): what a hostile or
 * sloppy upstream answers to the first request of a case, and what the upstream client must
 * make of it. Grouped as issue 13 lists them; RFC 9110/9112 sections cited where a case is a
 * judgement call.
 */

import type { Dispatcher } from 'undici';
import type { HostileChunk, HostileScript } from './hostile-upstream.js';

/** worker/h1-client.ts's options (issue 13's fixed interface). */
export interface H1PoolOptions {
  origin: string;
  keepAlive: boolean;
  maxIdle: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  keepAliveMaxMs: number;
}

/** A connection that ended or failed before the answer was complete. */
const CUT = ['UND_ERR_SOCKET', 'ECONNRESET'];
const OVERFLOW = ['UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE'];

export interface OkExpect {
  status: number;
  statusMessage?: string;
  /** Exact values; `undefined` asserts the header is absent. */
  headers?: Record<string, string | string[] | undefined>;
  body?: string | Buffer;
  /** Trailers as passed to onResponseEnd: these, or none at all (ignored). */
  trailers?: Record<string, string>;
  /** Whether the second request went on the same connection (unset: not asserted). */
  reuse?: boolean;
}

/**
 * `ok`: onResponseEnd once with this answer. `error`: onResponseError once, no end, and the
 * connection not reused; `codes` lists the allowed codes (unset: any string for undici, `HPE_*`
 * or {@link KNOWN_CODES} for h1). `either`: that error, or exactly that answer (for answers the
 * RFCs let a recipient accept or refuse).
 */
export type Expect =
  | ({ kind: 'ok' } & OkExpect)
  | ErrorExpect
  | { kind: 'either'; ok: OkExpect; codes?: readonly string[] };

export interface ErrorExpect {
  kind: 'error';
  codes?: readonly string[];
  /** The head was bad: onResponseStart must not have been called at all. */
  head?: boolean;
  /** onRequestUpgrade instead of an error is as good. */
  upgrade?: boolean;
}

export interface TableCase {
  name: string;
  /** The upstream's answer to the first request: bytes to write, or a whole script. */
  answer: HostileChunk[] | HostileScript;
  request?: Partial<Dispatcher.DispatchOptions>;
  pool?: Partial<H1PoolOptions>;
  expect: Expect;
  /**
   * `lenient`: undici accepts what a proxy must not; `stricter`: undici refuses what is valid.
   * Either way `expect` is asserted for h1 only, and `undiciDoes` for undici.
   */
  undici?: 'lenient' | 'stricter';
  undiciDoes?: Expect;
  /** Wait this long after the first answer before the second request (default 20 ms). */
  pauseMs?: number;
}

export const SECOND = 'HTTP/1.1 200 OK\r\ncontent-length: 6\r\nx-answer: second\r\n\r\nsecond';

/** A complete answer with a Content-Length body. */
export function answer(status: string, body = '', headers: string[] = []): string {
  const lines = headers.map((h) => `${h}\r\n`).join('');
  return `HTTP/1.1 ${status}\r\n${lines}content-length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;
}

/** A head with the given header lines and nothing after the blank line. */
export function head(statusLine: string, headers: string[] = []): string {
  return `${statusLine}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
}

const OK_HELLO: Expect = { kind: 'ok', status: 200, body: 'hello', reuse: true };

function ok(status: number, body: string, more: Partial<OkExpect> = {}): Expect {
  return { kind: 'ok', status, body, ...more };
}
const ERROR: Expect = { kind: 'error' };
/** An error found in the status line or header section: no onResponseStart before it. */
const HEAD_ERROR: Expect = { kind: 'error', head: true };

function byteByByte(s: string): HostileChunk[] {
  return [...s].map((c) => ({ data: c, delayMs: 1 }));
}

const statusLine: TableCase[] = [
  { name: '200 with a reason phrase', answer: [answer('200 OK', 'hello')], expect: OK_HELLO },
  {
    name: '200 without a reason phrase (space kept)',
    answer: [answer('200 ', 'hello')],
    expect: OK_HELLO,
  },
  {
    name: '200 without a reason phrase or its space',
    answer: ['HTTP/1.1 200\r\ncontent-length: 5\r\n\r\nhello'],
    expect: OK_HELLO,
  },
  {
    name: 'HTTP/1.0 200 without keep-alive: ok, connection not reused',
    answer: { chunks: ['HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello'], after: 'keep' },
    expect: ok(200, 'hello', { reuse: false }),
  },
  {
    // undici (llhttp in loose mode) reads an HTTP/2.0 status line as HTTP/1.x; an HTTP/2
    // answer on an HTTP/1.1 connection is never valid.
    name: 'HTTP/2.0 200',
    answer: [answer('200 OK', 'hello').replace('1.1', '2.0')],
    expect: HEAD_ERROR,
    undici: 'lenient',
    undiciDoes: ok(200, 'hello'),
  },
  { name: 'two-digit status 20', answer: [answer('20 OK', 'hello')], expect: HEAD_ERROR },
  { name: 'four-digit status 2000', answer: [answer('2000 X', 'hello')], expect: HEAD_ERROR },
  {
    // undici calls onResponseStart with 99 (the relay skips it: below 200), then fails an
    // internal assert (ERR_ASSERTION). A status below 100 is not a status (RFC 9110 section 15).
    name: 'status 099',
    answer: [answer('099 X', 'hello')],
    expect: HEAD_ERROR,
    undici: 'lenient',
    undiciDoes: { kind: 'error', codes: ['ERR_ASSERTION'] },
  },
  {
    // undici passes 600 on; RFC 9110 section 15: status codes are 100-599, and a client
    // cannot map 600 to a class, so a proxy has nothing valid to relay.
    name: 'status 600',
    answer: [answer('600 X', 'hello')],
    expect: HEAD_ERROR,
    undici: 'lenient',
    undiciDoes: ok(600, 'hello', { reuse: true }),
  },
  {
    name: 'obs-text in the reason phrase',
    answer: [
      Buffer.concat([
        Buffer.from('HTTP/1.1 200 O'),
        Buffer.from([0xe9]),
        Buffer.from('K\r\ncontent-length: 5\r\n\r\nhello'),
      ]),
    ],
    expect: OK_HELLO,
  },
  {
    name: 'lower-case http/1.1',
    answer: [answer('200 OK', 'hello').replace('HTTP', 'http')],
    expect: HEAD_ERROR,
  },
  {
    name: 'leading spaces before the status line',
    answer: [`  ${answer('200 OK', 'hello')}`],
    expect: HEAD_ERROR,
  },
  {
    name: 'garbage before the status line',
    answer: [`xyz${answer('200 OK', 'hello')}`],
    expect: HEAD_ERROR,
  },
  {
    // undici accepts a NUL in the reason phrase (llhttp in loose mode); RFC 9112 section 4:
    // reason-phrase is HTAB, SP, VCHAR and obs-text only.
    name: 'NUL in the reason phrase',
    answer: [answer('200 O\0K', 'hello')],
    expect: HEAD_ERROR,
    undici: 'lenient',
    undiciDoes: ok(200, 'hello', { reuse: true }),
  },
  {
    name: 'NUL in the version',
    answer: [answer('200 OK', 'hello').replace('1.1', '1\0.1')],
    expect: HEAD_ERROR,
  },
  {
    name: 'answer written byte by byte',
    answer: byteByByte(answer('200 OK', 'hello', ['x-a: 1'])),
    expect: { kind: 'ok', status: 200, body: 'hello', headers: { 'x-a': '1' }, reuse: true },
  },
  // Near misses of 'HTTP/1.1 200 OK', which the h1 client recognises without its RegExp.
  {
    name: "'HTTP/1.1 200 OK ' (trailing space): the reason phrase keeps it",
    answer: [answer('200 OK ', 'hello')],
    expect: ok(200, 'hello', { statusMessage: 'OK ', reuse: true }),
  },
  {
    name: "'HTTP/1.1 200 OKX'",
    answer: [answer('200 OKX', 'hello')],
    expect: ok(200, 'hello', { statusMessage: 'OKX', reuse: true }),
  },
  {
    name: "'HTTP/1.1 200 OK' then a NUL",
    answer: [answer('200 OK\0', 'hello')],
    expect: HEAD_ERROR,
    undici: 'lenient',
    undiciDoes: ok(200, 'hello', { reuse: true }),
  },
  {
    name: "'HTTP/1.1 200 OK' then a bare CR",
    answer: ['HTTP/1.1 200 OK\r\r\ncontent-length: 5\r\n\r\nhello'],
    expect: HEAD_ERROR,
  },
];

const manyHeaders = Array.from({ length: 200 }, (_, i) => `x-h-${i}: v${i}`);

const headerSyntax: TableCase[] = [
  {
    name: 'space before the colon',
    answer: [answer('200 OK', 'hello', ['x-a : 1'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'obs-fold continuation line',
    answer: [answer('200 OK', 'hello', ['x-a: 1', '  2'])],
    // RFC 9112 section 5.2: a proxy receiving obs-fold in a response must reject it (502) or
    // replace each fold by a space; nothing else.
    expect: { kind: 'either', ok: { status: 200, body: 'hello', headers: { 'x-a': '1 2' } } },
  },
  { name: 'empty header name', answer: [answer('200 OK', 'hello', [': x'])], expect: HEAD_ERROR },
  {
    name: 'header name with a space',
    answer: [answer('200 OK', 'hello', ['x a: 1'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'header name with non-token characters',
    answer: [answer('200 OK', 'hello', ['x(a): 1'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'header line without a colon',
    answer: [answer('200 OK', 'hello', ['x-a 1'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'NUL in a value',
    answer: [answer('200 OK', 'hello', ['x-a: 1\0 2'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'bare CR in a value',
    answer: [answer('200 OK', 'hello', ['x-a: 1\r2'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'control character 0x01 in a value',
    answer: [answer('200 OK', 'hello', ['x-a: 1\x012'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'DEL in a value',
    answer: [answer('200 OK', 'hello', ['x-a: 1\x7f2'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'tab inside a value is kept',
    answer: [answer('200 OK', 'hello', ['x-a: 1\t2'])],
    expect: ok(200, 'hello', { headers: { 'x-a': '1\t2' }, reuse: true }),
  },
  {
    name: 'bare LF line endings',
    answer: ['HTTP/1.1 200 OK\nx-a: 1\ncontent-length: 5\n\nhello'],
    // RFC 9112 section 2.2: a recipient MAY take a bare LF as a line end.
    expect: { kind: 'either', ok: { status: 200, body: 'hello', headers: { 'x-a': '1' } } },
  },
  {
    name: 'obs-text bytes in a value arrive latin1-decoded',
    answer: [
      Buffer.concat([
        Buffer.from('HTTP/1.1 200 OK\r\nx-a: caf'),
        Buffer.from([0xe9, 0x20, 0x80, 0xff]),
        Buffer.from('\r\ncontent-length: 5\r\n\r\nhello'),
      ]),
    ],
    expect: ok(200, 'hello', { headers: { 'x-a': 'caf\u00e9 \u0080\u00ff' }, reuse: true }),
  },
  {
    name: '200 headers',
    answer: [answer('200 OK', 'hello', manyHeaders)],
    expect: ok(200, 'hello', {
      headers: { 'x-h-0': 'v0', 'x-h-99': 'v99', 'x-h-199': 'v199' },
      reuse: true,
    }),
  },
  {
    name: 'a 17 KiB head is too large',
    answer: [answer('200 OK', 'hello', [`x-big: ${'a'.repeat(17 * 1024)}`])],
    expect: { kind: 'error', codes: OVERFLOW },
  },
  {
    name: 'a 17 KiB head in 200 headers is too large',
    answer: [
      answer(
        '200 OK',
        'hello',
        Array.from({ length: 200 }, (_, i) => `x-h-${i}: ${'b'.repeat(85)}`),
      ),
    ],
    expect: { kind: 'error', codes: OVERFLOW },
  },
  {
    name: 'repeated set-cookie is an array',
    answer: [answer('200 OK', 'hello', ['set-cookie: a=1', 'Set-Cookie: b=2'])],
    expect: ok(200, 'hello', { headers: { 'set-cookie': ['a=1', 'b=2'] }, reuse: true }),
  },
  {
    name: 'header names are lower-cased',
    answer: [answer('200 OK', 'hello', ['X-Mixed-Case: v'])],
    expect: ok(200, 'hello', { headers: { 'x-mixed-case': 'v' } }),
  },
  {
    name: 'one name in three cases is one header',
    answer: [answer('200 OK', 'hello', ['X-A: 1', 'x-a: 2', 'x-A: 3'])],
    expect: ok(200, 'hello', { headers: { 'x-a': ['1', '2', '3'] }, reuse: true }),
  },
  {
    name: "all tchar punctuation, digits and letters in a name ('!#$%&'*+-.^_`|~')",
    answer: [answer('200 OK', 'hello', ["!#$%&'*+-.^_`|~09AZaz: v"])],
    expect: ok(200, 'hello', { headers: { "!#$%&'*+-.^_`|~09azaz": 'v' }, reuse: true }),
  },
  { name: "'@' in a name", answer: [answer('200 OK', 'hello', ['x@a: v'])], expect: HEAD_ERROR },
  {
    name: 'DEL in a name',
    answer: [answer('200 OK', 'hello', ['x\x7fa: v'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'obs-text (0x80, 0xff) in a name',
    answer: [
      Buffer.from('HTTP/1.1 200 OK\r\nx\x80\xffa: v\r\ncontent-length: 5\r\n\r\nhello', 'latin1'),
    ],
    expect: HEAD_ERROR,
  },
  {
    name: 'tab before the colon',
    answer: [answer('200 OK', 'hello', ['x-a\t: 1'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'leading and trailing tabs around a value are not part of it',
    answer: [answer('200 OK', 'hello', ['x-a:\t \t1\t2 \t'])],
    expect: ok(200, 'hello', { headers: { 'x-a': '1\t2' }, reuse: true }),
    // RFC 9110 section 5.5: OWS around a value is not part of it; undici keeps the trailing.
    undici: 'lenient',
    undiciDoes: ok(200, 'hello', { headers: { 'x-a': '1\t2 \t' }, reuse: true }),
  },
  {
    name: 'control character 0x1f at the end of a value',
    answer: [answer('200 OK', 'hello', ['x-a: 1\x1f'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'bare CR at the end of a value (before CRLF)',
    answer: ['HTTP/1.1 200 OK\r\nx-a: 1\r\r\ncontent-length: 5\r\n\r\nhello'],
    expect: HEAD_ERROR,
  },
  {
    name: 'a line of one CR inside the head',
    answer: ['HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\r\ncontent-length: 5\r\n\r\nhello'],
    expect: HEAD_ERROR,
  },
  {
    name: 'CRLF and bare LF mixed',
    answer: ['HTTP/1.1 200 OK\nx-a: 1\r\ncontent-length: 5\nx-b: 2\r\n\nhello'],
    expect: {
      kind: 'either',
      ok: { status: 200, body: 'hello', headers: { 'x-a': '1', 'x-b': '2' } },
    },
  },
];

const chunked = (body: string, extra: string[] = []): string =>
  `${head('HTTP/1.1 200 OK', ['transfer-encoding: chunked', ...extra])}${body}`;

const framing: TableCase[] = [
  {
    name: 'Content-Length exact, binary body',
    answer: [
      Buffer.concat([
        Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n'),
        Buffer.from([0, 0xff, 0x0d, 0x0a]),
      ]),
    ],
    expect: ok(200, '\0\xff\r\n', { reuse: true }),
  },
  {
    name: 'two equal Content-Length headers',
    answer: [answer('200 OK', 'hello', ['content-length: 5'])],
    // RFC 9110 section 8.6: a recipient MAY take identical repeats as one value.
    expect: { kind: 'either', ok: { status: 200, body: 'hello' } },
  },
  {
    name: 'two different Content-Length headers',
    answer: [answer('200 OK', 'hello', ['content-length: 3'])],
    expect: HEAD_ERROR,
  },
  {
    name: 'Content-Length: 1,2',
    answer: [head('HTTP/1.1 200 OK', ['content-length: 1,2']), 'hel'],
    expect: HEAD_ERROR,
  },
  {
    name: 'Content-Length: 5,5',
    answer: [head('HTTP/1.1 200 OK', ['content-length: 5,5']), 'hello'],
    expect: { kind: 'either', ok: { status: 200, body: 'hello' } },
  },
  {
    name: 'Content-Length: +5',
    answer: [head('HTTP/1.1 200 OK', ['content-length: +5']), 'hello'],
    expect: HEAD_ERROR,
  },
  {
    name: 'Content-Length: -1',
    answer: [head('HTTP/1.1 200 OK', ['content-length: -1']), 'hello'],
    expect: HEAD_ERROR,
  },
  {
    name: 'Content-Length with surrounding whitespace',
    answer: [head('HTTP/1.1 200 OK', ['content-length:  5  ']), 'hello'],
    expect: OK_HELLO,
  },
  {
    name: 'Content-Length with leading zeros',
    answer: [head('HTTP/1.1 200 OK', ['content-length: 005']), 'hello'],
    expect: OK_HELLO,
  },
  {
    name: 'Content-Length: 0x5',
    answer: [head('HTTP/1.1 200 OK', ['content-length: 0x5']), 'hello'],
    expect: HEAD_ERROR,
  },
  {
    name: 'Content-Length: 99999999999999999999',
    answer: [head('HTTP/1.1 200 OK', ['content-length: 99999999999999999999']), 'hello'],
    expect: HEAD_ERROR,
  },
  {
    name: 'Content-Length and Transfer-Encoding: chunked (smuggling)',
    answer: [chunked('5\r\nhello\r\n0\r\n\r\n', ['content-length: 5'])],
    expect: HEAD_ERROR,
  },
  {
    // undici de-chunks once and accepts. RFC 9112 section 6.1: chunked is never applied twice,
    // so another hop may frame this answer differently (de-chunk twice, or refuse).
    name: 'Transfer-Encoding: chunked, chunked',
    answer: [
      `${head('HTTP/1.1 200 OK', ['transfer-encoding: chunked, chunked'])}5\r\nhello\r\n0\r\n\r\n`,
    ],
    expect: ERROR,
    undici: 'lenient',
    undiciDoes: ok(200, 'hello', { reuse: true }),
  },
  {
    name: 'Transfer-Encoding: gzip, chunked',
    answer: [
      `${head('HTTP/1.1 200 OK', ['transfer-encoding: gzip, chunked'])}5\r\nhello\r\n0\r\n\r\n`,
    ],
    // The chunked framing is sound; the gzip coding is the upstream's to explain. Relaying the
    // de-chunked bytes is what undici does; refusing is as safe.
    expect: { kind: 'either', ok: { status: 200, body: 'hello' } },
  },
  {
    name: 'Transfer-Encoding: chunked, gzip (chunked not last)',
    answer: {
      chunks: [`${head('HTTP/1.1 200 OK', ['transfer-encoding: chunked, gzip'])}5\r\nhello`],
      after: 'end',
    },
    // RFC 9112 section 6.3: then the body runs to the close; it must never be de-chunked.
    expect: { kind: 'either', ok: { status: 200, body: '5\r\nhello', reuse: false } },
  },
  {
    name: 'Transfer-Encoding: xchunked',
    answer: {
      chunks: [`${head('HTTP/1.1 200 OK', ['transfer-encoding: xchunked'])}5\r\nhello`],
      after: 'end',
    },
    expect: { kind: 'either', ok: { status: 200, body: '5\r\nhello', reuse: false } },
  },
  {
    name: 'Transfer-Encoding: Chunked (case-insensitive), upper-case hex size',
    answer: [
      `${head('HTTP/1.1 200 OK', ['Transfer-Encoding: Chunked'])}A\r\nhelloworld\r\n0\r\n\r\n`,
    ],
    expect: ok(200, 'helloworld', { reuse: true }),
  },
  { name: 'chunk size zz', answer: [chunked('zz\r\nhello\r\n0\r\n\r\n')], expect: ERROR },
  { name: 'chunk size -1', answer: [chunked('-1\r\nhello\r\n0\r\n\r\n')], expect: ERROR },
  { name: 'chunk size 0x10', answer: [chunked('0x10\r\nhello\r\n0\r\n\r\n')], expect: ERROR },
  {
    name: 'chunk size of 17 hex digits',
    answer: [chunked('10000000000000005\r\nhello\r\n0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'chunk size with a leading space',
    answer: [chunked(' 5\r\nhello\r\n0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'chunk size with a space inside',
    answer: [chunked('1 0\r\nhello\r\n0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'chunk size with a trailing space',
    answer: [chunked('5 \r\nhello\r\n0\r\n\r\n')],
    // RFC 9112 section 7.1.1 allows whitespace (BWS) only before a `;` extension.
    expect: { kind: 'either', ok: { status: 200, body: 'hello' } },
  },
  {
    name: 'chunk longer than its size',
    answer: [chunked('3\r\nhello\r\n0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'chunk shorter than its size',
    answer: { chunks: [chunked('9\r\nhello\r\n0\r\n\r\n')], after: 'end' },
    expect: ERROR,
  },
  {
    name: 'no CRLF after chunk data',
    answer: [chunked('5\r\nhello0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'chunk extension name=value',
    answer: [chunked('5;name=value\r\nhello\r\n0;last\r\n\r\n')],
    expect: OK_HELLO,
  },
  {
    name: 'chunk extension with a quoted value',
    answer: [chunked('5;name="a b;c"\r\nhello\r\n0\r\n\r\n')],
    expect: OK_HELLO,
  },
  {
    name: 'chunk extension with a bare CR',
    answer: [chunked('5;a\rb\r\nhello\r\n0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'chunk extension with a bare LF',
    answer: [chunked('5;a\nb\r\nhello\r\n0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'chunk extension with an unterminated quote',
    answer: [chunked('5;a="x\r\nhello\r\n0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'trailers are passed or ignored',
    answer: [chunked('5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n')],
    expect: ok(200, 'hello', { trailers: { 'x-t': '1' }, reuse: true }),
  },
  {
    name: 'malformed trailer line',
    answer: [chunked('5\r\nhello\r\n0\r\nbad trailer\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'trailer with a NUL',
    answer: [chunked('5\r\nhello\r\n0\r\nx-t: 1\0\r\n\r\n')],
    expect: ERROR,
  },
  {
    name: 'last chunk without the final CRLF, then close',
    answer: { chunks: [chunked('5\r\nhello\r\n0\r\n')], after: 'end' },
    expect: { kind: 'error', codes: CUT },
  },
  {
    name: 'chunked body cut before the last chunk, then close',
    answer: { chunks: [chunked('5\r\nhello\r\n')], after: 'end' },
    expect: { kind: 'error', codes: CUT },
  },
  {
    name: 'chunked body split byte by byte',
    answer: byteByByte(chunked('5;e=1\r\nhello\r\n0\r\nx-t: 1\r\n\r\n')),
    expect: ok(200, 'hello', { trailers: { 'x-t': '1' }, reuse: true }),
  },
];

const FORGED = 'HTTP/1.1 200 OK\r\ncontent-length: 6\r\nx-answer: forged\r\n\r\nforged';

const body: TableCase[] = [
  {
    name: 'fewer bytes than Content-Length, then close',
    answer: { chunks: [head('HTTP/1.1 200 OK', ['content-length: 10']), 'hello'], after: 'end' },
    expect: { kind: 'error', codes: CUT },
  },
  {
    name: 'more bytes than Content-Length, in the same write: connection dropped',
    answer: [answer('200 OK', 'hello') + FORGED],
    expect: ok(200, 'hello', { reuse: false }),
  },
  {
    // The extra bytes come while the connection is idle (no request in flight): they can only
    // be a desync, and the connection must go before the next request is written on it.
    name: 'more bytes than Content-Length, written while idle: connection dropped',
    answer: [answer('200 OK', 'hello'), { data: FORGED, delayMs: 30 }],
    pauseMs: 300,
    expect: ok(200, 'hello', { reuse: false }),
  },
  {
    name: 'no length and not chunked: read until close',
    answer: { chunks: [head('HTTP/1.1 200 OK'), 'until ', 'close'], after: 'end' },
    expect: ok(200, 'until close', { reuse: false }),
  },
  {
    // undici closes every connection after a HEAD (client-h1.js: against servers that send a
    // body anyway, undici issue 258) and says `connection: close` on it. The h1 client may keep
    // it: the cases below check that a body sent anyway never becomes the next answer.
    name: 'HEAD answer with a Content-Length and no body',
    request: { method: 'HEAD' },
    answer: [head('HTTP/1.1 200 OK', ['content-length: 5'])],
    expect: ok(200, '', { headers: { 'content-length': '5' }, reuse: true }),
    undici: 'stricter',
    undiciDoes: ok(200, '', { headers: { 'content-length': '5' }, reuse: false }),
  },
  {
    // RFC 9110 section 8.6: a server must not send Content-Length on a 204; either way there
    // is no body. undici reads the Content-Length as a promise of 5 bytes and fails.
    name: '204 with a Content-Length: no body read',
    answer: [head('HTTP/1.1 204 No Content', ['content-length: 5'])],
    expect: { kind: 'either', ok: { status: 204, body: '', reuse: true } },
  },
  {
    // RFC 9110 section 8.6 lets a 304 carry the Content-Length the 200 would have had, and
    // section 15.4.5: a 304 has no content. undici fails it (UND_ERR_RES_CONTENT_LENGTH_MISMATCH,
    // client-h1.js onMessageComplete compares the bytes read with the header for every method
    // but HEAD), so the gateway answers 502 to such revalidations today.
    name: '304 with a Content-Length: no body read',
    answer: [head('HTTP/1.1 304 Not Modified', ['content-length: 5'])],
    expect: ok(304, '', { reuse: true }),
    undici: 'stricter',
    undiciDoes: { kind: 'error', codes: ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH'] },
  },
  {
    name: 'a body sent on a 204 is not the next answer',
    answer: [head('HTTP/1.1 204 No Content') + FORGED],
    expect: ok(204, '', { reuse: false }),
  },
  {
    name: 'a body sent on a 204 while idle is not the next answer',
    answer: [head('HTTP/1.1 204 No Content'), { data: FORGED, delayMs: 30 }],
    pauseMs: 300,
    expect: ok(204, '', { reuse: false }),
  },
  {
    name: 'a body sent on a 304 is not the next answer',
    answer: [head('HTTP/1.1 304 Not Modified') + FORGED],
    expect: ok(304, '', { reuse: false }),
  },
  {
    name: 'a body sent on a HEAD answer is not the next answer',
    request: { method: 'HEAD' },
    answer: [head('HTTP/1.1 200 OK', ['content-length: 6']) + FORGED],
    expect: ok(200, '', { reuse: false }),
  },
  {
    name: 'a body sent on a HEAD answer while idle is not the next answer',
    request: { method: 'HEAD' },
    answer: [head('HTTP/1.1 200 OK', ['content-length: 6']), { data: FORGED, delayMs: 30 }],
    pauseMs: 300,
    expect: ok(200, '', { reuse: false }),
  },
];

const interim: TableCase[] = [
  {
    name: '100 Continue then 200',
    answer: ['HTTP/1.1 100 Continue\r\n\r\n', answer('200 OK', 'hello')],
    expect: OK_HELLO,
  },
  {
    name: '100 Continue and 200 in one write',
    answer: [`HTTP/1.1 100 Continue\r\n\r\n${answer('200 OK', 'hello')}`],
    expect: OK_HELLO,
  },
  {
    name: '102 Processing then 200',
    answer: ['HTTP/1.1 102 Processing\r\n\r\n', answer('200 OK', 'hello')],
    expect: OK_HELLO,
  },
  {
    name: '103 with headers then 200: the hints do not leak into the final head',
    answer: [
      'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n',
      answer('200 OK', 'hello'),
    ],
    expect: ok(200, 'hello', { headers: { link: undefined }, reuse: true }),
  },
  {
    name: 'several 1xx then 200',
    answer: [
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n',
      'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n',
      answer('200 OK', 'hello'),
    ],
    expect: OK_HELLO,
  },
  {
    name: '101 Switching Protocols on a plain GET',
    answer: [
      head('HTTP/1.1 101 Switching Protocols', ['upgrade: websocket', 'connection: upgrade']),
    ],
    // An error, or onRequestUpgrade (the socket then is the handler's); never a normal answer.
    expect: { kind: 'error', head: true, upgrade: true },
  },
  {
    name: '103 with a Content-Length: the 1xx has no body',
    answer: [head('HTTP/1.1 103 Early Hints', ['content-length: 5']), answer('200 OK', 'hello')],
    expect: OK_HELLO,
  },
  {
    name: '100 with a Content-Length: the 1xx has no body',
    answer: [head('HTTP/1.1 100 Continue', ['content-length: 5']), answer('200 OK', 'hello')],
    expect: OK_HELLO,
  },
];

const connection: TableCase[] = [
  {
    name: 'connection: close answer: next request on a new connection',
    answer: [answer('200 OK', 'hello', ['connection: close'])],
    expect: ok(200, 'hello', { reuse: false }),
  },
  ...['Close', ' close ', 'CLOSE', 'keep-alive, close', 'close,keep-alive'].map(
    (value): TableCase => ({
      name: `connection: ${JSON.stringify(value)}: next request on a new connection`,
      answer: [answer('200 OK', 'hello', [`connection: ${value}`])],
      expect: ok(200, 'hello', { reuse: false }),
    }),
  ),
  {
    name: "connection: 'closed' is not close",
    answer: [answer('200 OK', 'hello', ['connection: closed'])],
    expect: OK_HELLO,
  },
  // RFC 9112 has no Keep-Alive header; the hint's timeout (seconds) is what undici honours.
  ...['timeout=0', 'timeout=00', 'max=5, timeout=0'].map(
    (value): TableCase => ({
      name: `keep-alive: ${value}: no idle time left, next request on a new connection`,
      answer: [answer('200 OK', 'hello', [`keep-alive: ${value}`])],
      expect: ok(200, 'hello', { reuse: false }),
    }),
  ),
  {
    // Parameter names are case-insensitive (RFC 9110 section 5.6.6); undici's is not.
    name: 'keep-alive: Timeout=0: next request on a new connection',
    answer: [answer('200 OK', 'hello', ['keep-alive: Timeout=0'])],
    expect: ok(200, 'hello', { reuse: false }),
    undici: 'lenient',
    undiciDoes: OK_HELLO,
  },
  ...['timeout=abc', 'TIMEOUT=5', 'max=5', ''].map(
    (value): TableCase => ({
      name: `keep-alive: ${JSON.stringify(value)}: connection reused`,
      answer: [answer('200 OK', 'hello', [`keep-alive: ${value}`])],
      expect: OK_HELLO,
    }),
  ),
  {
    name: 'HTTP/1.0 answer with a keep-alive: connection kept or not, answer intact',
    answer: ['HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 5\r\n\r\nhello'],
    expect: ok(200, 'hello'),
  },
  {
    name: 'reset mid-head',
    answer: { chunks: ['HTTP/1.1 200 OK\r\ncontent-le'], after: 'destroy' },
    expect: { kind: 'error', codes: CUT },
  },
  {
    name: 'closed mid-head',
    answer: { chunks: ['HTTP/1.1 200 OK\r\ncontent-le'], after: 'end' },
    expect: { kind: 'error', codes: CUT },
  },
  {
    name: 'reset mid-body',
    answer: { chunks: [head('HTTP/1.1 200 OK', ['content-length: 10']), 'hel'], after: 'destroy' },
    expect: { kind: 'error', codes: CUT },
  },
  {
    name: 'never answers: headers timeout',
    pool: { headersTimeoutMs: 300 },
    answer: { chunks: [], after: 'hang' },
    expect: { kind: 'error', codes: ['UND_ERR_HEADERS_TIMEOUT'] },
  },
  {
    name: 'stalls mid-head: headers timeout',
    pool: { headersTimeoutMs: 300 },
    answer: { chunks: ['HTTP/1.1 200 OK\r\n'], after: 'hang' },
    expect: { kind: 'error', codes: ['UND_ERR_HEADERS_TIMEOUT'] },
  },
  {
    name: 'stalls mid-body: body timeout',
    pool: { bodyTimeoutMs: 300 },
    answer: { chunks: [head('HTTP/1.1 200 OK', ['content-length: 10']), 'hel'], after: 'hang' },
    expect: { kind: 'error', codes: ['UND_ERR_BODY_TIMEOUT'] },
  },
];

export const table: [string, TableCase[]][] = [
  ['status line', statusLine],
  ['header syntax', headerSyntax],
  ['framing', framing],
  ['body', body],
  ['1xx', interim],
  ['connection handling', connection],
];

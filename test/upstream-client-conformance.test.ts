/*
 * Conformance of the gateway's upstream HTTP/1.1 client (issue 13): every case runs against
 * undici's Pool, the reference the gateway used so far (with the gateway's connector, which
 * drops unsolicited `100 Continue`), and against worker/h1-client.ts's H1Pool when that module
 * exists. The upstream is a raw TCP server answering with scripted bytes
 * (test/helpers/hostile-upstream.ts).
 *
 * Each table case sends a first request, asserts what the client made of the answer, then
 * sends a second request on the same pool that the upstream answers correctly: after an
 * error the second request must go on a new connection, and in every case it must get the
 * upstream's real second answer (bytes left over from the first answer must never become it).
 *
 * `undici: 'lenient'` marks answers undici accepts that a proxy must not relay: the strict
 * outcome is asserted for the h1 client only, and what undici does is asserted too
 * (`undiciDoes`), so a change of undici's behaviour shows up here.
 */

import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import type { Dispatcher } from 'undici';
import { Pool } from 'undici';
import { interimTolerantConnector } from '../worker/upstream-connector.js';
import { freePort } from './helpers/free-port.js';
import {
  type HostileChunk,
  type HostileScript,
  type HostileUpstream,
  startHostileUpstream,
} from './helpers/hostile-upstream.js';
import {
  type DispatcherLike,
  type Hooks,
  type Outcome,
  send,
} from './helpers/recording-handler.js';

/** worker/h1-client.ts's options (issue 13's fixed interface). */
interface H1PoolOptions {
  origin: string;
  keepAlive: boolean;
  maxIdle: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  keepAliveMaxMs: number;
}

interface Client {
  name: 'undici' | 'h1';
  /** Why this client's side is skipped, when it is. */
  skip: string | false;
  make: (options: H1PoolOptions) => DispatcherLike;
}

/** The gateway's undici pool (worker/upstream-pools.ts createPool), from the h1 options. */
function undiciPool(o: H1PoolOptions): DispatcherLike {
  return new Pool(o.origin, {
    connections: null,
    pipelining: o.keepAlive ? 1 : 0,
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
    connect: interimTolerantConnector({ timeout: o.connectTimeoutMs }),
    keepAliveTimeout: o.keepAliveTimeoutMs,
    keepAliveMaxTimeout: o.keepAliveMaxMs,
  });
}

/** The h1 client when worker/h1-client.ts exists; a module that fails to load fails the suite. */
async function h1Client(): Promise<Client> {
  if (!existsSync(new URL('../worker/h1-client.ts', import.meta.url))) {
    return {
      name: 'h1',
      skip: 'worker/h1-client.ts does not exist yet',
      make: () => {
        throw new Error('no h1 client');
      },
    };
  }
  // A variable specifier: the module may not exist when this file is type-checked.
  const specifier = '../worker/h1-client.js';
  const mod = (await import(specifier)) as {
    H1Pool: new (options: H1PoolOptions) => DispatcherLike;
  };
  return { name: 'h1', skip: false, make: (o) => new mod.H1Pool(o) };
}

const clients: Client[] = [{ name: 'undici', skip: false, make: undiciPool }, await h1Client()];

/** Codes an h1 client error may carry besides `HPE_*` (the undici codes the gateway maps). */
const KNOWN_CODES = [
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE',
  'UND_ERR_HEADERS_OVERFLOW',
];
/** A connection that ended or failed before the answer was complete. */
const CUT = ['UND_ERR_SOCKET', 'ECONNRESET'];
const OVERFLOW = ['UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE'];

interface OkExpect {
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
type Expect =
  | ({ kind: 'ok' } & OkExpect)
  | ErrorExpect
  | { kind: 'either'; ok: OkExpect; codes?: readonly string[] };

interface ErrorExpect {
  kind: 'error';
  codes?: readonly string[];
  /** The head was bad: onResponseStart must not have been called at all. */
  head?: boolean;
  /** onRequestUpgrade instead of an error is as good. */
  upgrade?: boolean;
}

interface TableCase {
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

const SECOND = 'HTTP/1.1 200 OK\r\ncontent-length: 6\r\nx-answer: second\r\n\r\nsecond';

/** A complete answer with a Content-Length body. */
function answer(status: string, body = '', headers: string[] = []): string {
  const lines = headers.map((h) => `${h}\r\n`).join('');
  return `HTTP/1.1 ${status}\r\n${lines}content-length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;
}

/** A head with the given header lines and nothing after the blank line. */
function head(statusLine: string, headers: string[] = []): string {
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

const table: [string, TableCase[]][] = [
  ['status line', statusLine],
  ['header syntax', headerSyntax],
  ['framing', framing],
  ['body', body],
  ['1xx', interim],
  ['connection handling', connection],
];

const BASE_OPTIONS: Omit<H1PoolOptions, 'origin'> = {
  keepAlive: true,
  maxIdle: 8,
  headersTimeoutMs: 3_000,
  bodyTimeoutMs: 3_000,
  connectTimeoutMs: 2_000,
  keepAliveTimeoutMs: 4_000,
  keepAliveMaxMs: 10_000,
};

/** Late timers are allowed for: the h1 client's may be up to about a second coarse. */
const TIMER_SLACK_MS = 1_200;

function scriptOf(a: TableCase['answer']): HostileScript {
  return Array.isArray(a) ? { chunks: a } : a;
}

const settle = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An upstream answering the first request as scripted and every later one with SECOND. */
async function upstreamFor(t: Test, first: HostileScript): Promise<HostileUpstream> {
  const upstream = await startHostileUpstream((req) =>
    req.seq === 0 ? first : { chunks: [SECOND] },
  );
  t.teardown(() => upstream.close());
  return upstream;
}

function poolFor(
  t: Test,
  client: Client,
  origin: string,
  more: Partial<H1PoolOptions> = {},
): DispatcherLike {
  const pool = client.make({ ...BASE_OPTIONS, origin, ...more });
  t.teardown(() => pool.destroy());
  return pool;
}

function describe(o: Outcome): string {
  const err = o.error ? ` ${String(o.error.code)} ${o.error.message}` : '';
  return `${o.events.join(',')} status=${o.status}${err}${o.hung ? ' HUNG' : ''}`;
}

/** Asserts an error outcome: exactly one onResponseError, no end, an allowed string code. */
function assertError(
  t: Test,
  client: Client,
  o: Outcome,
  codes?: readonly string[],
  head?: boolean,
): void {
  t.notOk(o.hung, `settles (${describe(o)})`);
  t.equal(o.events.filter((e) => e === 'error').length, 1, 'onResponseError once');
  t.notOk(o.events.includes('end'), 'no onResponseEnd');
  if (head)
    t.same(
      o.starts.filter((s) => s < 102 || s >= 200),
      [],
      'no answer was started',
    );
  const code = o.error?.code;
  // undici 7.30.2's parser errors carry no code: client-h1.js builds HTTPParserError with
  // `constants.ERROR[ret]`, a name-to-number map indexed by a number. The gateway maps a
  // missing code to its generic upstream failure; the h1 client must give a string.
  if (client.name === 'undici' && code === undefined && o.error?.name === 'HTTPParserError') {
    t.equal(codes, undefined, 'a parser error where a parser error is expected');
    return;
  }
  t.type(code, 'string', 'the error has a string code');
  if (typeof code !== 'string') return;
  if (codes !== undefined) {
    t.ok(codes.includes(code), `code ${code} is one of ${codes.join(', ')}`);
  } else if (client.name === 'h1') {
    t.ok(code.startsWith('HPE_') || KNOWN_CODES.includes(code), `code ${code} is HPE_* or known`);
  }
}

function assertOk(t: Test, o: Outcome, e: OkExpect): void {
  t.notOk(o.hung, `settles (${describe(o)})`);
  t.notOk(o.error, `no error (${describe(o)})`);
  // onResponseStart may come first for 102 and 103 (undici reports them there; the gateway's
  // relay skips any status below 200), then once for the final answer.
  const starts = o.starts.length;
  t.same(
    o.events.filter((x) => x !== 'data'),
    ['requestStart', ...Array<string>(starts).fill('responseStart'), 'end'],
    'requestStart, responseStart, end',
  );
  t.ok(starts >= 1, 'onResponseStart for the final answer');
  t.same(
    o.starts.slice(0, -1).filter((s) => s < 102 || s > 199),
    [],
    'earlier onResponseStart calls were interim answers other than 100 and 101',
  );
  t.equal(o.status, e.status, 'status');
  if (e.statusMessage !== undefined) t.equal(o.statusMessage, e.statusMessage, 'status message');
  if (e.body !== undefined) {
    const expected = typeof e.body === 'string' ? Buffer.from(e.body, 'latin1') : e.body;
    t.same(o.body, expected, 'body bytes');
  }
  for (const [name, value] of Object.entries(e.headers ?? {})) {
    t.same(o.headers?.[name], value, `header ${name}`);
  }
  if (e.trailers !== undefined && o.trailers !== undefined && Object.keys(o.trailers).length > 0) {
    t.same({ ...o.trailers }, e.trailers, 'trailers passed as sent');
  }
}

/** Sends the second request and checks it got the upstream's real second answer. */
async function assertSecond(
  t: Test,
  pool: DispatcherLike,
  upstream: HostileUpstream,
  reuse: boolean | undefined,
): Promise<void> {
  const o = await send(pool, { method: 'GET', path: '/second' });
  t.notOk(o.error, `the next request succeeds (${describe(o)})`);
  t.equal(o.headers?.['x-answer'], 'second', 'the next request gets the real second answer');
  t.same(o.body.toString('latin1'), 'second', 'with its body');
  const first = upstream.requests.find((r) => r.target === '/first');
  const second = upstream.requests.find((r) => r.target === '/second');
  t.equal(
    upstream.requests.filter((r) => r.target === '/first').length,
    first ? 1 : 0,
    'the first request was sent at most once',
  );
  if (first === undefined || second === undefined || reuse === undefined) return;
  if (reuse) t.equal(second.connection, first.connection, 'the connection was reused');
  else t.not(second.connection, first.connection, 'the next request went on a new connection');
}

async function runCase(t: Test, client: Client, c: TableCase): Promise<void> {
  const upstream = await upstreamFor(t, scriptOf(c.answer));
  const pool = poolFor(t, client, upstream.origin, c.pool);
  const expect = client.name === 'undici' && c.undiciDoes ? c.undiciDoes : c.expect;
  const o = await send(pool, { method: 'GET', path: '/first', ...c.request });
  await settle(c.pauseMs);
  if (process.env.CONFORMANCE_TRACE) t.comment(`${client.name}: ${describe(o)}`);
  const failed = o.error !== undefined;
  if (expect.kind === 'error' && expect.upgrade && o.events.includes('upgrade')) {
    t.same(o.events, ['requestStart', 'upgrade'], 'onRequestUpgrade, nothing else');
    await assertSecond(t, pool, upstream, false);
    return;
  }
  if (expect.kind === 'error' || (expect.kind === 'either' && failed)) {
    assertError(t, client, o, expect.codes, expect.kind === 'error' && expect.head);
    if (expect.codes?.some((code) => code.endsWith('_TIMEOUT'))) {
      const timeout = c.pool?.headersTimeoutMs ?? c.pool?.bodyTimeoutMs ?? 0;
      const limit = timeout + TIMER_SLACK_MS;
      t.ok(o.elapsedMs < limit, `timed out in ${Math.round(o.elapsedMs)} ms (< ${limit})`);
      // The upstream's first bytes come at once, so the timer cannot have fired early.
      t.ok(o.elapsedMs >= timeout - 20, `not before ${timeout} ms`);
    }
    await assertSecond(t, pool, upstream, upstream.requests.length > 0 ? false : undefined);
    return;
  }
  const okExpect = expect.kind === 'ok' ? expect : expect.ok;
  assertOk(t, o, okExpect);
  await assertSecond(t, pool, upstream, okExpect.reuse);
}

for (const [group, cases] of table) {
  t.test(group, async (t) => {
    for (const c of cases) {
      t.test(c.name, async (t) => {
        for (const client of clients) {
          await t.test(client.name, { skip: client.skip }, (t) => runCase(t, client, c));
        }
      });
    }
  });
}

/*
 * Cases that need more than one answer and a follow-up: connection lifecycle, what the
 * upstream receives, and the handler's controller.
 */

interface SpecialCase {
  name: string;
  run: (t: Test, client: Client) => Promise<void>;
}

/** Codes the gateway's relay takes for a stale pooled connection (upstream-relay.ts). */
const STALE = ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'];

/** Checks the second request: the upstream's real answer. */
async function assertServed(t: Test, pool: DispatcherLike, path: string): Promise<void> {
  const o = await send(pool, { method: 'GET', path });
  t.notOk(o.error, `${path} succeeds (${describe(o)})`);
  t.equal(o.headers?.['x-answer'], 'second', `${path} gets the upstream's answer`);
}

/** A request the client must refuse before writing anything. */
async function assertRefused(
  t: Test,
  client: Client,
  options: Dispatcher.DispatchOptions,
): Promise<void> {
  const upstream = await upstreamFor(t, { chunks: [SECOND] });
  const pool = poolFor(t, client, upstream.origin);
  const o = await send(pool, options);
  await settle(50);
  const refused = o.thrown !== undefined || o.error !== undefined;
  t.ok(refused, `refused (${describe(o)}${o.thrown ? ` thrown ${String(o.thrown)}` : ''})`);
  t.notOk(o.events.includes('responseStart'), 'no answer');
  t.same(upstream.requests, [], 'no request reached the upstream');
  t.same(
    upstream.connections.map((c) => c.pending()),
    upstream.connections.map(() => 0),
    'no byte of it was written',
  );
  await assertServed(t, pool, '/after');
}

const lifecycle: SpecialCase[] = [
  {
    name: 'the upstream closes an idle keep-alive connection: next request on a new one',
    run: async (t, client) => {
      const upstream = await startHostileUpstream((req) =>
        req.seq === 0
          ? { chunks: [answer('200 OK', 'hello')], after: 'end', afterDelayMs: 50 }
          : { chunks: [SECOND] },
      );
      t.teardown(() => upstream.close());
      const pool = poolFor(t, client, upstream.origin);
      const first = await send(pool, { method: 'GET', path: '/first' });
      t.equal(first.body.toString(), 'hello');
      await upstream.closedConnections(1);
      await settle(200);
      await assertServed(t, pool, '/second');
      t.equal(upstream.connections[0]?.closed, 'server', 'the upstream closed the first one');
      t.equal(upstream.requests[1]?.connection, 1, 'the next request went on a new connection');
    },
  },
  {
    name: 'the upstream closes a kept connection on the next request: a stale-connection error or a retry',
    run: async (t, client) => {
      // The first request that comes as the second on its connection gets a FIN, no answer.
      let closed: number | undefined;
      const upstream = await startHostileUpstream((req) => {
        if (closed !== undefined || req.indexOnConnection === 0) return { chunks: [SECOND] };
        closed = req.connection;
        return { chunks: [], after: 'end' };
      });
      t.teardown(() => upstream.close());
      const pool = poolFor(t, client, upstream.origin);
      await send(pool, { method: 'GET', path: '/first' });
      await settle();
      const o = await send(pool, { method: 'GET', path: '/second' });
      t.not(closed, undefined, 'the kept connection was used and closed');
      t.notOk(o.events.includes('end') && o.error, 'end or error, not both');
      if (o.error) {
        t.ok(STALE.includes(String(o.error.code)), `a code the gateway retries: ${o.error.code}`);
        t.notOk(o.events.includes('responseStart'), 'no answer was started');
      } else {
        t.equal(o.headers?.['x-answer'], 'second', 'retried on a new connection');
      }
      await assertServed(t, pool, '/third');
      const third = upstream.requests.find((r) => r.target === '/third');
      t.not(third?.connection, closed, 'never on the closed connection');
    },
  },
  {
    name: 'connection refused: ECONNREFUSED, onRequestStart not called',
    run: async (t, client) => {
      const port = await freePort();
      const pool = poolFor(t, client, `http://127.0.0.1:${port}`);
      const o = await send(pool, { method: 'GET', path: '/' });
      t.equal(o.error?.code, 'ECONNREFUSED', describe(o));
      t.same(o.events, ['error'], 'only onResponseError');
    },
  },
  {
    name: 'close(): the request in flight finishes, later ones are refused, sockets closed',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [{ data: answer('200 OK', 'late'), delayMs: 100 }],
      });
      const pool = poolFor(t, client, upstream.origin);
      const inFlight = send(pool, { method: 'GET', path: '/first' });
      await settle(30);
      const closed = pool.close();
      const later = await send(pool, { method: 'GET', path: '/later' });
      t.ok(
        later.thrown !== undefined || later.error !== undefined,
        'a request after close() fails',
      );
      t.notOk(later.events.includes('responseStart'), 'and gets no answer');
      const o = await inFlight;
      t.notOk(o.error, describe(o));
      t.equal(o.body.toString(), 'late', 'the request in flight finished');
      await closed;
      await upstream.closedConnections(1);
      t.equal(upstream.connections[0]?.closed, 'client', 'the client closed its connection');
      t.same(
        upstream.requests.map((r) => r.target),
        ['/first'],
        'nothing else was sent',
      );
    },
  },
  {
    name: 'destroy(): the request in flight fails and its socket is cut',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [`${head('HTTP/1.1 200 OK', ['content-length: 10'])}hel`],
        after: 'hang',
      });
      const pool = poolFor(t, client, upstream.origin);
      let dataSeen: () => void = () => {};
      const seen = new Promise<void>((resolve) => {
        dataSeen = resolve;
      });
      const inFlight = send(
        pool,
        { method: 'GET', path: '/first' },
        { onResponseData: () => dataSeen() },
      );
      await seen;
      await pool.destroy();
      const o = await inFlight;
      await settle();
      t.same(
        o.events.filter((e) => e === 'error' || e === 'end'),
        ['error'],
        `onResponseError once, no end (${describe(o)})`,
      );
      await upstream.closedConnections(1);
      t.equal(upstream.connections[0]?.closed, 'client', 'the client cut the connection');
    },
  },
];

const requestSide: SpecialCase[] = [
  {
    name: 'the head has the given headers, host and connection: keep-alive',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      await send(pool, {
        method: 'GET',
        path: '/p?q=1',
        headers: { 'x-one': '1', 'X-Two': 'two words' },
      });
      const req = upstream.requests[0];
      t.equal(req?.head.split('\r\n')[0], 'GET /p?q=1 HTTP/1.1', 'request line');
      t.same(
        req?.headers.map(([n]) => n).sort(),
        ['connection', 'host', 'x-one', 'x-two'],
        'exactly these headers',
      );
      const get = (name: string) => req?.headers.find(([n]) => n === name)?.[1];
      t.equal(get('host'), `127.0.0.1:${upstream.port}`);
      t.equal(get('connection'), 'keep-alive');
      t.equal(get('x-two'), 'two words');
    },
  },
  {
    name: 'keepAlive false: connection: close, one request per connection',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin, { keepAlive: false });
      await assertServed(t, pool, '/first');
      await assertServed(t, pool, '/second');
      t.same(
        upstream.requests.map((r) => r.headers.find(([n]) => n === 'connection')?.[1]),
        ['close', 'close'],
        'connection: close on each',
      );
      t.same(
        upstream.requests.map((r) => r.connection),
        [0, 1],
        'a connection each',
      );
    },
  },
  {
    name: 'reset: true sends connection: close and the connection is not reused',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [answer('200 OK', 'hello')] });
      const pool = poolFor(t, client, upstream.origin);
      const o = await send(pool, { method: 'GET', path: '/first', reset: true });
      t.equal(o.body.toString(), 'hello');
      await assertServed(t, pool, '/second');
      const first = upstream.requests[0];
      t.equal(first?.headers.find(([n]) => n === 'connection')?.[1], 'close');
      t.equal(upstream.requests[1]?.connection, 1, 'the next request on a new connection');
    },
  },
  {
    name: 'a Buffer body is sent with its content-length',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      const payload = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x0d, 0x0a, 0x41]);
      await assertServed(t, pool, '/warm');
      await settle();
      const o = await send(pool, { method: 'POST', path: '/post', body: payload });
      t.notOk(o.error, describe(o));
      const req = upstream.requests[1];
      t.equal(req?.headers.find(([n]) => n === 'content-length')?.[1], String(payload.length));
      t.notOk(
        req?.headers.some(([n]) => n === 'transfer-encoding'),
        'not chunked',
      );
      t.same(req?.body, payload, 'body bytes');
      t.equal(req?.connection, 0, 'on the kept connection');
    },
  },
  {
    name: 'a Readable body with a content-length header is sent as is',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      const o = await send(pool, {
        method: 'PUT',
        path: '/put',
        headers: { 'content-length': '11' },
        body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      });
      t.notOk(o.error, describe(o));
      const req = upstream.requests[0];
      t.equal(req?.headers.find(([n]) => n === 'content-length')?.[1], '11');
      t.notOk(
        req?.headers.some(([n]) => n === 'transfer-encoding'),
        'not chunked',
      );
      t.equal(req?.rawBody.toString(), 'hello world', 'the bytes as given');
    },
  },
  {
    name: 'a Readable body without a content-length is sent chunked',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, { chunks: [SECOND] });
      const pool = poolFor(t, client, upstream.origin);
      const parts = [Buffer.from('first part, '), Buffer.alloc(0), Buffer.from('second\r\n0\r\n')];
      const o = await send(pool, { method: 'POST', path: '/post', body: Readable.from(parts) });
      t.notOk(o.error, describe(o));
      const req = upstream.requests[0];
      t.equal(req?.headers.find(([n]) => n === 'transfer-encoding')?.[1], 'chunked');
      t.notOk(
        req?.headers.some(([n]) => n === 'content-length'),
        'no content-length',
      );
      t.equal(req?.body.toString(), 'first part, second\r\n0\r\n', 'decoded by the upstream');
      await settle();
      await assertServed(t, pool, '/after');
      t.equal(upstream.requests[1]?.connection, 0, 'the connection is still in sync');
    },
  },
  ...(
    [
      ['CR LF in a header value', { 'x-a': 'a\r\nx-injected: 1' }],
      ['bare LF in a header value', { 'x-a': 'a\nx-injected: 1' }],
      ['bare CR in a header value', { 'x-a': 'a\rb' }],
      ['NUL in a header value', { 'x-a': 'a\0b' }],
      ['a space in a header name', { 'x a': '1' }],
      ['CR LF in a header name', { 'x-a\r\nx-injected': '1' }],
    ] as const
  ).map(
    ([what, headers]): SpecialCase => ({
      name: `${what} is refused, nothing written`,
      run: (t, client) => assertRefused(t, client, { method: 'GET', path: '/', headers }),
    }),
  ),
];

const controller: SpecialCase[] = [
  {
    name: 'pause() in onResponseData holds the data until resume()',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [
          `${head('HTTP/1.1 200 OK', ['content-length: 10'])}hello`,
          { data: 'world', delayMs: 50 },
        ],
      });
      const pool = poolFor(t, client, upstream.origin);
      let pausedAt = 0;
      let resumedAt = 0;
      const dataAt: number[] = [];
      const hooks: Hooks = {
        onResponseData(ctl) {
          dataAt.push(performance.now());
          if (pausedAt !== 0) return;
          pausedAt = performance.now();
          ctl.pause();
          setTimeout(() => {
            resumedAt = performance.now();
            ctl.resume();
          }, 300);
        },
      };
      const o = await send(pool, { method: 'GET', path: '/first' }, hooks);
      t.notOk(o.error, describe(o));
      t.equal(o.body.toString(), 'helloworld', 'the whole body');
      t.ok(resumedAt > 0, 'resumed');
      t.same(
        dataAt.slice(1).filter((at) => at < resumedAt),
        [],
        'no data between pause() and resume()',
      );
      await assertServed(t, pool, '/second');
    },
  },
  {
    name: 'abort() during the body: onResponseError with the reason, connection not reused',
    run: async (t, client) => {
      const upstream = await upstreamFor(t, {
        chunks: [`${head('HTTP/1.1 200 OK', ['content-length: 10'])}hel`],
        after: 'hang',
      });
      const pool = poolFor(t, client, upstream.origin);
      const reason = Object.assign(new Error('client went away'), { code: 'TEST_ABORT' });
      const o = await send(
        pool,
        { method: 'GET', path: '/first' },
        { onResponseData: (ctl) => ctl.abort(reason) },
      );
      await settle();
      t.equal(o.error, reason, 'the abort reason itself');
      t.same(
        o.events.filter((e) => e === 'error' || e === 'end'),
        ['error'],
        'onResponseError once, no end',
      );
      await assertServed(t, pool, '/second');
      t.equal(upstream.requests[1]?.connection, 1, 'the next request on a new connection');
    },
  },
];

const special: [string, SpecialCase[]][] = [
  ['connection lifecycle', lifecycle],
  ['request side', requestSide],
  ['controller', controller],
];

for (const [group, cases] of special) {
  t.test(group, async (t) => {
    for (const c of cases) {
      t.test(c.name, async (t) => {
        for (const client of clients) {
          await t.test(client.name, { skip: client.skip }, (t) => c.run(t, client));
        }
      });
    }
  });
}

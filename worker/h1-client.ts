import { connect, isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { type ConnectionOptions, type SecureContext, connect as tlsConnect } from 'node:tls';
import type { Dispatcher } from 'undici';
import { CodedError } from '../shared/coded-error.js';

/*
 * The gateway's own HTTP/1.1 client for plain-http upstreams (RFC 9112), in place of undici's
 * Pool on the hot path. Measured on this 2-core machine with the bench's method (CPU time of
 * the proxy processes per request, wrk -c64, the bench's upstream): uWS + undici Pool.dispatch
 * and nothing else cost 68 us/request, uWS + a bare keep-alive client on net.Socket 40 us; the
 * whole gateway on undici cost 81. undici's cost is its generality: a Request object and its
 * header validation per request, the llhttp wasm parser with a JS callback per header, its
 * writable-stream path and a setImmediate before each write.
 *
 * It speaks undici's dispatch-handler API (onRequestStart, onResponseStart, onResponseData,
 * onResponseEnd, onResponseError; a controller with pause/resume/abort) and undici's error codes,
 * so worker/upstream-relay.ts, its retry rules and worker/upstream-error.ts are shared by both
 * clients. https upstreams and routes through a forward proxy stay on undici.
 *
 * What it accepts from an upstream is at least as strict as undici (llhttp), and stricter where a
 * proxy must be (test/upstream-client-conformance.test.ts runs the same hostile answers through
 * both):
 * - status line `HTTP/1.0` or `HTTP/1.1`, a 3-digit code 100-599, a reason without controls;
 * - header lines `token ":" OWS value OWS` with CRLF or LF endings; no obs-fold, no whitespace
 *   before the colon, no control character but HTAB in a value (bytes 0x80-0xff pass, decoded
 *   as latin1 as undici does); the head at most 16 KiB (undici's default);
 * - framing: Transfer-Encoding exactly `chunked` (anything else, or with a Content-Length, is
 *   refused: a response framed two ways is a desync attempt); Content-Length digits only, repeated
 *   only with the same value; chunk sizes hex digits only, extensions well formed, the CRLF after
 *   each chunk's data checked, trailers parsed like headers and bounded;
 * - 1xx answers other than 101 are skipped (RFC 9110 section 15.2, unsolicited 100 included);
 *   101 is an error (the gateway never asks for an upgrade here);
 * - a connection is reused only after a complete answer framed by length or chunks, with no byte
 *   beyond it, to a request written whole, without `Connection: close`, HTTP/1.1; any byte that
 *   arrives on an idle connection closes it. So no byte of one answer can become another's.
 */

/** TLS to an `https` origin (the route's `ca`, `cert`, `tls_verify`: worker/connection-profile.ts). */
export interface H1Tls {
  /** undefined: Node's default roots, no client certificate. */
  readonly secureContext: SecureContext | undefined;
  /** False only with `tls_verify: false`. */
  readonly rejectUnauthorized: boolean;
}

/** Settings of one pool (one origin, one way of connecting). Durations in milliseconds. */
export interface H1PoolOptions {
  /** `http://host:port` or `https://host:port`: the upstream's origin. */
  readonly origin: string;
  /** For an `https` origin; undefined means Node's defaults (verified against its roots). */
  readonly tls?: H1Tls | undefined;
  /** false: one request per connection, each sent with `connection: close`. */
  readonly keepAlive: boolean;
  /** Idle connections kept open for reuse (routes.yml `max_idle_per_host`). */
  readonly maxIdle: number;
  /** From the request written whole... to the answer's head complete. */
  readonly headersTimeoutMs: number;
  /** Longest silence allowed between bytes of an answer's body. */
  readonly bodyTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** How long an idle connection is kept when the upstream gives no `Keep-Alive: timeout`. */
  readonly keepAliveTimeoutMs: number;
  /** Upper bound of the idle time, whatever the upstream's hint says. */
  readonly keepAliveMaxMs: number;
}

/** A failure of the client, with undici's code for the same condition (`HPE_*`: a malformed answer). */
export class UpstreamClientError extends CodedError {}

/** undici's `maxHeaderSize` default (Node's `--max-http-header-size`). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** A chunk-size line (size and extensions). */
const MAX_CHUNK_LINE = 4096;
/** All trailer lines of a chunked body. */
const MAX_TRAILER_BYTES = 16 * 1024;
/** Chunk sizes up to 2^52 - 1: 13 hex digits. */
const MAX_CHUNK_DIGITS = 13;
/** A Buffer body at most this long leaves copied behind its head, in one write (see #send). */
const JOINED_BODY_BYTES = 64 * 1024;

/** How often deadlines (connect, head, body, idle) are checked: timeouts may be this late. */
const SWEEP_MS = 250;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** 1 for the chars of TOKEN (RFC 9110 section 5.6.2 tchar), by char code below 0x80. */
const TCHAR = new Uint8Array(0x80);
for (let c = 0; c < 0x80; c++) if (TOKEN.test(String.fromCharCode(c))) TCHAR[c] = 1;
/** What scanToken found: not a token, a token without upper case, a token with some. */
const NOT_TOKEN = 0;
const LOWER_TOKEN = 1;
const MIXED_TOKEN = 2;

/**
 * Whether `text` from `start` to `end` is a token (TOKEN's chars, at least one), and whether it
 * holds A-Z (it then needs lower-casing). A loop over TCHAR, not TOKEN.test: callgrind counted
 * ~350 instructions per RegExp#test call, and header names are checked once per line.
 */
function scanToken(text: string, start: number, end: number): number {
  if (end <= start) return NOT_TOKEN;
  let found = LOWER_TOKEN;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f || TCHAR[c] === 0) return NOT_TOKEN;
    if (c >= 0x41 && c <= 0x5a) found = MIXED_TOKEN;
  }
  return found;
}

/**
 * Response header names common enough to be recognised in place (see knownName). Lower case;
 * each is a token, so a name matched against one needs no other check. Exported for tests.
 */
export const KNOWN_RESPONSE_HEADERS: readonly string[] = [
  'accept-ranges',
  'access-control-allow-credentials',
  'access-control-allow-headers',
  'access-control-allow-methods',
  'access-control-allow-origin',
  'access-control-expose-headers',
  'access-control-max-age',
  'age',
  'alt-svc',
  'cache-control',
  'connection',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-range',
  'content-security-policy',
  'content-type',
  'cross-origin-embedder-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'date',
  'etag',
  'expires',
  'keep-alive',
  'last-modified',
  'link',
  'location',
  'permissions-policy',
  'pragma',
  'proxy-connection',
  'referrer-policy',
  'retry-after',
  'server',
  'set-cookie',
  'strict-transport-security',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'vary',
  'via',
  'www-authenticate',
  'x-content-type-options',
  'x-frame-options',
  'x-powered-by',
  'x-request-id',
  'x-xss-protection',
];
/** KNOWN_RESPONSE_HEADERS by length (index: the length; empty lists for the other lengths). */
const KNOWN_BY_LENGTH: (readonly string[])[] = Array.from({ length: 33 }, () => []);
for (const name of KNOWN_RESPONSE_HEADERS) (KNOWN_BY_LENGTH[name.length] as string[]).push(name);

/**
 * The KNOWN_RESPONSE_HEADERS entry that `text` from `start` to `end` spells in any case, or
 * undefined. Measured (callgrind, 5 header lines per answer): a name sliced out, scanned,
 * lower-cased and then used as a key cost ~1,000 instructions, most of it V8 looking the fresh
 * string up in its string table (KeyedLoadIC_Megamorphic); the constant returned here is already
 * internalised. Only ASCII letters fold: any other byte must equal the name's own, so no control
 * or non-token byte can pass for a known name.
 */
function knownName(text: string, start: number, end: number): string | undefined {
  const length = end - start;
  if (length >= KNOWN_BY_LENGTH.length) return undefined;
  const candidates = KNOWN_BY_LENGTH[length]!;
  next: for (let k = 0; k < candidates.length; k++) {
    const name = candidates[k]!;
    for (let i = 0; i < length; i++) {
      const want = name.charCodeAt(i);
      const c = text.charCodeAt(start + i);
      if (c !== want && !(want >= 0x61 && want <= 0x7a && c === want - 0x20)) continue next;
    }
    return name;
  }
  return undefined;
}
/** A request target: not empty; no controls, no space, nothing above U+00FF (undici's check). */
function isRequestTarget(path: string): boolean {
  if (path.length === 0) return false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x21 || c > 0xff) return false;
  }
  return true;
}
/** Response-side values and reason phrases: controls other than HTAB, and DEL. */
const BAD_RESPONSE_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5][0-9][0-9])(?: (.*))?$/;
const OK_STATUS_LINE = 'HTTP/1.1 200 OK';
/** STATUS_LINE's match of OK_STATUS_LINE (the line, minor version, code, reason). */
const OK_STATUS_PARTS: readonly (string | undefined)[] = ['HTTP/1.1 200 OK', '1', '200', 'OK'];
const CHUNK_EXT =
  /^(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout=(\d{1,9})/i;
/** Request headers the client writes itself, or that would change the message's framing. */
const OWN_REQUEST_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'expect',
  'te',
  'trailer',
  'proxy-connection',
]);

type Headers = Record<string, string | string[] | undefined>;

/**
 * A parsed head's header record: an object with no inherited property at all (its prototype is
 * an empty object without a prototype), so any upstream name, `__proto__` or `constructor`
 * included, is an own property and an absent one reads undefined, as with
 * `Object.create(null)`. Not `Object.create(null)` itself: V8 makes such an object a
 * dictionary from the start, and every store, load and for-in over it goes through a hash
 * table; this one keeps hidden classes (an upstream sends the same names every time). Used
 * while a head's names are all known ones (#onHead; dictionaryOf says why not for others).
 * Measured: building a 7-header record, a for-in over it and 3 loads, 960-990 ns with
 * `Object.create(null)`, 370-390 ns with this (micro-benchmark, node 20, 2026-12-02).
 */
const HeaderRecord = function HeaderRecord() {} as unknown as new () => Headers;
HeaderRecord.prototype = Object.create(null) as object;

function error(code: string, message: string, cause?: unknown): UpstreamClientError {
  return new UpstreamClientError(code, message, cause === undefined ? undefined : { cause });
}

// --- Deadlines: one coarse sweep for every connection instead of a timer per request. -------

/**
 * Date.now() as of the last sweep (or the first connection): per-request code reads this. Every
 * live connection is in `watched` from its creation to its end, so setting a deadline is two
 * field writes (measured: adding to and removing from the set at each deadline was 0.5% of an
 * edge's busy time).
 */
let coarseNow = Date.now();
const watched = new Set<Connection>();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  coarseNow = Date.now();
  for (const conn of watched) if (conn.deadline <= coarseNow) conn.expire();
  if (watched.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function watch(conn: Connection): void {
  watched.add(conn);
  if (sweeper === undefined) {
    coarseNow = Date.now();
    sweeper = setInterval(sweep, SWEEP_MS).unref();
  }
}

// --- One request: its handler, and the controller undici's API hands the handler. ----------

enum Stage {
  /** Waiting for a connection. */
  Queued,
  /** Written (or being written); no answer byte yet. */
  Sent,
  /** Some answer byte arrived. */
  Answering,
  /** onResponseEnd or onResponseError was called. */
  Over,
}

class UpstreamRequest implements Dispatcher.DispatchController {
  readonly handler: Dispatcher.DispatchHandler;
  readonly head: string;
  readonly body: Buffer | Readable | null;
  /** The declared length of a streamed body; -1: sent chunked. */
  readonly streamLength: number;
  readonly noBody: boolean;
  readonly closeAfter: boolean;
  stage = Stage.Queued;
  conn: Connection | undefined;
  /** The request left whole (head and body). */
  written = false;
  #paused = false;
  #reason: Error | null = null;

  constructor(
    handler: Dispatcher.DispatchHandler,
    head: string,
    body: Buffer | Readable | null,
    streamLength: number,
    noBody: boolean,
    closeAfter: boolean,
  ) {
    this.handler = handler;
    this.head = head;
    this.body = body;
    this.streamLength = streamLength;
    this.noBody = noBody;
    this.closeAfter = closeAfter;
  }

  /** Ended (answered or failed): nothing more reaches the handler. */
  get over(): boolean {
    return this.stage === Stage.Over;
  }

  get aborted(): boolean {
    return this.#reason !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  abort(reason: Error): void {
    if (this.stage === Stage.Over) return;
    this.#reason = reason;
    const conn = this.conn;
    if (conn === undefined) this.fail(reason);
    else conn.failRequest(reason);
  }

  pause(): void {
    if (this.stage === Stage.Over || this.#paused) return;
    this.#paused = true;
    this.conn?.pauseReading();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.stage !== Stage.Over) this.conn?.resumeReading();
  }

  /** Ends the request with `err` (once). */
  fail(err: Error): void {
    if (this.stage === Stage.Over) return;
    this.stage = Stage.Over;
    this.handler.onResponseError?.(this, err);
  }
}

// --- One connection and its answer parser. --------------------------------------------------

enum Phase {
  Idle,
  Head,
  /** Body framed by Content-Length: `remaining` bytes to go. */
  Length,
  /** Body until the upstream closes. */
  UntilClose,
  ChunkSize,
  ChunkData,
  /** The CRLF after a chunk's data. */
  ChunkEnd,
  Trailers,
}

const EMPTY = Buffer.alloc(0);

/**
 * Every plain-http upstream socket reads into this one buffer (net's `onread`), and each read is
 * parsed before the next can land in it: no Buffer, no ArrayBuffer and no Readable push per read.
 * Callgrind, one edge, authenticated GETs (3 windows of 2,000): 88.7-90.7k user-space
 * instructions a request with 'data' events, 80.9-84.1k with this buffer and views handed to the
 * relay, 83.5-86.5k when every body piece is copied. So what outlives a read is copied (an
 * incomplete head or line, a backlog while paused, a piece for a handler that keeps it) and the
 * relay, which copies only what it keeps, gets views (BorrowingHandler).
 */
const READ_BUFFER = Buffer.allocUnsafe(65536);

/**
 * A dispatch handler that takes `onResponseData` chunks as views of the client's read buffer,
 * valid only until it returns: it copies whatever it keeps (queued for a slow client, pushed to
 * a stream). Other handlers get chunks of their own, as undici gives them.
 */
export interface BorrowingHandler extends Dispatcher.DispatchHandler {
  readonly borrowsResponseData?: boolean;
}

class Connection {
  readonly pool: H1Pool;
  readonly socket: Socket;
  request: UpstreamRequest | undefined;
  /** Date.now() after which `expire` runs; Infinity when nothing is timed. */
  deadline = Number.POSITIVE_INFINITY;
  #deadlineCode = '';
  #connected = false;
  #phase = Phase.Idle;
  /** Bytes of an incomplete head, chunk line or trailer section. */
  #partial: Buffer = EMPTY;
  /** Bytes received while the handler had paused reading. */
  #backlog: Buffer | undefined;
  #remaining = 0;
  #reusable = true;
  #idleMs: number;
  #trailerBytes = 0;
  #dead = false;
  /** The upstream closed; what it sent before is still to be parsed (the handler paused). */
  #eof = false;
  /** Read chunks are views of READ_BUFFER: copy whatever outlives the read. */
  readonly #borrowed: boolean;

  constructor(pool: H1Pool, connectTimeoutMs: number) {
    this.pool = pool;
    this.#idleMs = pool.keepAliveTimeoutMs;
    this.#borrowed = !pool.https;
    const socket = pool.openSocket((n: number) => {
      this.#onData(READ_BUFFER.subarray(0, n));
      return true;
    });
    this.socket = socket;
    watch(this);
    this.#setDeadline(connectTimeoutMs, 'UND_ERR_CONNECT_TIMEOUT');
    socket.once(pool.https ? 'secureConnect' : 'connect', () => {
      this.#connected = true;
      const request = this.request;
      if (request === undefined) this.#toIdle();
      else this.#send(request);
    });
    if (!this.#borrowed) socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: Error) => this.#onClose(err));
    socket.on('close', () => this.#onClose(undefined));
  }

  #setDeadline(ms: number, code: string): void {
    this.deadline = coarseNow + ms;
    this.#deadlineCode = code;
  }

  #clearDeadline(): void {
    this.deadline = Number.POSITIVE_INFINITY;
  }

  /** Called by the sweep when the deadline passed. */
  expire(): void {
    this.deadline = Number.POSITIVE_INFINITY;
    const code = this.#deadlineCode;
    if (this.request === undefined) {
      this.destroy(); // idle time over
      return;
    }
    const message =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'connect timeout'
        : code === 'UND_ERR_HEADERS_TIMEOUT'
          ? 'headers timeout'
          : 'body timeout';
    this.failRequest(error(code, message));
  }

  /** Takes `request` on this (connected, idle) connection. */
  start(request: UpstreamRequest): void {
    this.request = request;
    request.conn = this;
    if (this.#connected) this.#send(request);
  }

  #send(request: UpstreamRequest): void {
    request.stage = Stage.Sent;
    this.#phase = Phase.Head;
    this.#partial = EMPTY;
    this.#reusable = this.pool.keepAlive && !request.closeAfter;
    request.handler.onRequestStart?.(request, undefined);
    // The handler may abort at once (its client left).
    if (request.over || this.request !== request) return;
    const socket = this.socket;
    const body = request.body;
    this.#setDeadline(this.pool.headersTimeoutMs, 'UND_ERR_HEADERS_TIMEOUT');
    if (body === null) {
      socket.write(request.head, 'latin1');
      request.written = true;
      return;
    }
    if (Buffer.isBuffer(body)) {
      const head = request.head;
      if (body.byteLength <= JOINED_BODY_BYTES) {
        // One buffer, one write. Measured (callgrind, a 1 KiB POST): cork + two writes go
        // through the stream's writev path, ~10k instructions a request; this copy ~1k.
        const joined = Buffer.allocUnsafe(head.length + body.byteLength);
        joined.write(head, 0, 'latin1');
        joined.set(body, head.length);
        socket.write(joined);
      } else {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      }
      request.written = true;
      return;
    }
    socket.write(request.head, 'latin1');
    this.#stream(request, body);
  }

  /** Writes a streamed request body: with its declared length, else chunked. */
  #stream(request: UpstreamRequest, body: Readable): void {
    const socket = this.socket;
    const chunked = request.streamLength < 0;
    let sent = 0;
    const onDrain = () => body.resume();
    const detach = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      socket.off('drain', onDrain);
    };
    const onData = (chunk: Buffer) => {
      if (this.request !== request || request.over) {
        detach();
        return;
      }
      sent += chunk.byteLength;
      if (!chunked && sent > request.streamLength) {
        detach();
        this.failRequest(error('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'request body too long'));
        return;
      }
      if (chunk.byteLength === 0) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.byteLength.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else ok = socket.write(chunk);
      if (!ok) body.pause();
    };
    const onEnd = () => {
      detach();
      if (this.request !== request || request.over) return;
      if (!chunked && sent !== request.streamLength) {
        this.failRequest(error('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'request body too short'));
        return;
      }
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      request.written = true;
      // The head timer counts from the request written whole.
      if (this.#phase === Phase.Head && request.stage === Stage.Sent)
        this.#setDeadline(this.pool.headersTimeoutMs, 'UND_ERR_HEADERS_TIMEOUT');
    };
    const onError = (err: Error) => {
      detach();
      if (this.request === request) this.failRequest(err);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    socket.on('drain', onDrain);
    // While the body streams, the head timer does not run: a slow upload is not the upstream's.
    this.#clearDeadline();
  }

  pauseReading(): void {
    this.#clearDeadline();
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.#eof) this.socket.resume();
    if (this.#phase !== Phase.Head && this.#phase !== Phase.Idle && !this.#eof)
      this.#setDeadline(this.pool.bodyTimeoutMs, 'UND_ERR_BODY_TIMEOUT');
    // Handlers resume from their own callbacks (uWS's onWritable): what waits is parsed after.
    queueMicrotask(() => this.#afterResume());
  }

  #afterResume(): void {
    const request = this.request;
    if (request === undefined || request.paused || (this.#dead && !this.#eof)) return;
    const backlog = this.#backlog;
    this.#backlog = undefined;
    if (backlog !== undefined) this.#parse(backlog, 0);
    else if (this.#phase === Phase.Length && this.#remaining === 0) this.#parse(EMPTY, 0);
    if (this.#eof && this.request === request && !request.paused) this.#atEof();
  }

  #onData(chunk: Buffer): void {
    if (this.#dead && !this.#eof) return;
    const request = this.request;
    if (request === undefined || this.#phase === Phase.Idle) {
      // Bytes nobody asked for: this connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    // While paused, and after a resume until what waited is parsed (a resumed socket may emit
    // before #afterResume runs), new bytes queue behind the old ones: order is the framing.
    // (A socket with `onread` stops reading at pause() and its backlog is parsed before its next
    // read, so a borrowed chunk does not reach this today: the copy guards a Node that would.)
    if (request.paused || this.#backlog !== undefined) {
      this.#backlog =
        this.#backlog === undefined
          ? this.#borrowed
            ? Buffer.from(chunk)
            : chunk
          : Buffer.concat([this.#backlog, chunk]);
      return;
    }
    this.#parse(chunk, 0);
  }

  /** Parses `chunk` from `at` for the current request. */
  #parse(chunk: Buffer, at: number): void {
    const request = this.request!;
    let pos = at;
    while ((!this.#dead || this.#eof) && this.request === request) {
      if (request.paused) {
        // Paused by a handler callback (onResponseStart included): the rest waits, first; a
        // copy, as `chunk` may be a view of READ_BUFFER (the next read of any socket reuses it).
        if (pos < chunk.length) {
          const rest = this.#borrowed ? Buffer.from(chunk.subarray(pos)) : chunk.subarray(pos);
          const kept = this.#backlog;
          this.#backlog = kept === undefined ? rest : Buffer.concat([rest, kept]);
        }
        return;
      }
      switch (this.#phase) {
        case Phase.Head: {
          if (pos >= chunk.length) return;
          if (request.stage === Stage.Sent) {
            request.stage = Stage.Answering;
            request.handler.onResponseStarted?.();
            if (this.request !== request || request.over) return;
          }
          const next = this.#head(chunk, pos);
          if (next < 0) return;
          pos = next;
          break;
        }
        case Phase.Length: {
          const remaining = this.#remaining;
          if (remaining === 0) {
            if (pos < chunk.length) this.#reusable = false;
            this.#complete(undefined);
            return;
          }
          if (pos >= chunk.length) return;
          const take = Math.min(remaining, chunk.length - pos);
          this.#remaining = remaining - take;
          const piece =
            pos === 0 && take === chunk.length ? chunk : chunk.subarray(pos, pos + take);
          pos += take;
          if (!this.#data(request, piece, chunk, pos)) return;
          break;
        }
        case Phase.UntilClose: {
          if (pos >= chunk.length) return;
          const piece = pos === 0 ? chunk : chunk.subarray(pos);
          pos = chunk.length;
          if (!this.#data(request, piece, chunk, pos)) return;
          break;
        }
        case Phase.ChunkSize: {
          const next = this.#chunkSize(chunk, pos);
          if (next < 0) return;
          pos = next;
          break;
        }
        case Phase.ChunkData: {
          if (pos >= chunk.length) return;
          const take = Math.min(this.#remaining, chunk.length - pos);
          this.#remaining -= take;
          const piece = chunk.subarray(pos, pos + take);
          pos += take;
          if (this.#remaining === 0) this.#phase = Phase.ChunkEnd;
          if (!this.#data(request, piece, chunk, pos)) return;
          break;
        }
        case Phase.ChunkEnd: {
          const next = this.#line(chunk, pos, 2);
          if (next === -1) return;
          if (next === -2 || this.#lineText !== '') {
            this.#malformed('HPE_STRICT', 'no CRLF after chunk data');
            return;
          }
          pos = next;
          this.#phase = Phase.ChunkSize;
          break;
        }
        case Phase.Trailers: {
          const next = this.#trailer(chunk, pos);
          if (next < 0) return;
          pos = next;
          break;
        }
        default:
          return;
      }
    }
  }

  /**
   * Hands a body piece to the handler. Returns false when parsing must stop here: the request
   * ended (the handler aborted) or the handler paused (the rest of `chunk` from `pos` waits).
   */
  #data(request: UpstreamRequest, piece: Buffer, chunk: Buffer, pos: number): boolean {
    this.#setDeadline(this.pool.bodyTimeoutMs, 'UND_ERR_BODY_TIMEOUT');
    const handler = request.handler as BorrowingHandler;
    handler.onResponseData?.(
      request,
      this.#borrowed && handler.borrowsResponseData !== true ? Buffer.from(piece) : piece,
    );
    if (this.request !== request || request.over) return false;
    if (request.paused) {
      if (pos < chunk.length)
        this.#backlog = this.#borrowed ? Buffer.from(chunk.subarray(pos)) : chunk.subarray(pos);
      this.#clearDeadline();
      return false;
    }
    return true;
  }

  /**
   * Finds one line of at most `max` bytes (with its LF) in `#partial` + `chunk` from `pos`.
   * Returns the index after its LF, the line in `#line`; -1 when more bytes are needed (kept in
   * `#partial`); -2 when the line is too long.
   */
  #lineText = '';
  #line(chunk: Buffer, pos: number, max: number): number {
    const lf = chunk.indexOf(0x0a, pos);
    const partial = this.#partial;
    if (lf === -1) {
      if (partial.length + chunk.length - pos > max) return -2;
      this.#partial =
        partial.length === 0
          ? Buffer.from(chunk.subarray(pos))
          : Buffer.concat([partial, chunk.subarray(pos)]);
      return -1;
    }
    if (partial.length + lf + 1 - pos > max) return -2;
    let text: string;
    if (partial.length === 0) text = chunk.toString('latin1', pos, lf);
    else {
      text = partial.toString('latin1', 0, partial.length) + chunk.toString('latin1', pos, lf);
      this.#partial = EMPTY;
    }
    // CRLF or a bare LF end a line; a CR anywhere else is refused by the callers' checks.
    this.#lineText = text.endsWith('\r') ? text.slice(0, -1) : text;
    return lf + 1;
  }

  /** Parses a head (interim or final) from `pos`; returns the index in `chunk` after it, or -1. */
  #head(chunk: Buffer, pos: number): number {
    const partial = this.#partial;
    // The usual case: the whole head in this read, and no earlier bytes.
    const buf = partial.length === 0 ? chunk : Buffer.concat([partial, chunk.subarray(pos)]);
    const start = partial.length === 0 ? pos : 0;
    const end = endOfHead(buf, start);
    if (end === -1 || end - start > MAX_HEAD_BYTES) {
      if (end !== -1 || buf.length - start > MAX_HEAD_BYTES) {
        this.#malformed('UND_ERR_HEADERS_OVERFLOW', 'upstream response head too large');
        return -1;
      }
      this.#partial = buf === chunk ? Buffer.from(chunk.subarray(pos)) : buf;
      return -1;
    }
    this.#partial = EMPTY;
    if (!this.#onHead(buf.toString('latin1', start, end))) return -1;
    return buf === chunk ? end : pos + end - partial.length;
  }

  /** Acts on one complete head's text (status line to the blank line); false: stop parsing. */
  #onHead(text: string): boolean {
    const request = this.request!;
    // Lines by indexOf, not split('\n'): callgrind counted String#split (a runtime call for a
    // string V8 has not seen before) at ~1,350 instructions per head. The text ends with the
    // blank line: the last LF before it ends the last header line.
    let lf = text.indexOf('\n');
    const statusText = stripCr(text.slice(0, lf));
    // The most common status line is known good: no RegExp#exec (~1,000 instructions with its
    // result array, callgrind).
    const status = statusText === OK_STATUS_LINE ? OK_STATUS_PARTS : STATUS_LINE.exec(statusText);
    if (
      status === null ||
      (status !== OK_STATUS_PARTS && status[3] !== undefined && BAD_RESPONSE_VALUE.test(status[3]))
    ) {
      this.#malformed('HPE_INVALID_CONSTANT', 'malformed upstream status line');
      return false;
    }
    // A record with hidden classes while every name is a known one (see HeaderRecord), a
    // dictionary from the first other name on (see dictionaryOf).
    let headers = new HeaderRecord();
    let shaped = true;
    for (let start = lf + 1; ; start = lf + 1) {
      lf = text.indexOf('\n', start);
      if (lf === -1) break; // not reached: a head ends with a blank line (endOfHead)
      // CRLF or a bare LF ends a line; a CR anywhere else is refused by addHeader's checks.
      const end = lf > start && text.charCodeAt(lf - 1) === 0x0d ? lf - 1 : lf;
      if (end === start) break;
      let added = addHeader(headers, text, start, end, shaped);
      if (added === OTHER_NAME) {
        headers = dictionaryOf(headers);
        shaped = false;
        added = addHeader(headers, text, start, end, false);
      }
      if (added !== ADDED) {
        this.#malformed('HPE_INVALID_HEADER_TOKEN', 'malformed upstream header line');
        return false;
      }
    }
    const code = Number(status[2]);
    if (code < 200) {
      if (code === 101) {
        this.#malformed('HPE_UNEXPECTED_UPGRADE', 'upstream switched protocols unasked');
        return false;
      }
      // Interim (RFC 9110 section 15.2): the final answer follows; its timer keeps running.
      return true;
    }
    const http10 = status[1] === '0';
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    let length = -1;
    if (cl !== undefined) {
      length = contentLength(cl);
      if (length < 0) {
        this.#malformed('HPE_INVALID_CONTENT_LENGTH', 'malformed upstream Content-Length');
        return false;
      }
    }
    let chunked = false;
    if (te !== undefined) {
      if (typeof te !== 'string' || te.toLowerCase() !== 'chunked' || http10) {
        this.#malformed('HPE_INVALID_TRANSFER_ENCODING', 'unsupported upstream Transfer-Encoding');
        return false;
      }
      if (cl !== undefined) {
        this.#malformed('HPE_UNEXPECTED_CONTENT_LENGTH', 'Content-Length with Transfer-Encoding');
        return false;
      }
      chunked = true;
    }
    if (http10 || hasToken(headers.connection, 'close')) this.#reusable = false;
    const hint = headers['keep-alive'];
    if (typeof hint === 'string') {
      const ms = keepAliveMs(hint);
      if (ms !== null) {
        if (ms < 1000) this.#reusable = false;
        else this.#idleMs = Math.min(ms, this.pool.keepAliveMaxMs);
      }
    }
    const noBody = request.noBody || code === 204 || code === 304;
    if (noBody) {
      this.#phase = Phase.Length;
      this.#remaining = 0;
    } else if (chunked) {
      this.#phase = Phase.ChunkSize;
      this.#trailerBytes = 0;
    } else if (length >= 0) {
      this.#phase = Phase.Length;
      this.#remaining = length;
    } else {
      this.#phase = Phase.UntilClose;
      this.#reusable = false;
    }
    this.#setDeadline(this.pool.bodyTimeoutMs, 'UND_ERR_BODY_TIMEOUT');
    request.handler.onResponseStart?.(request, code, headers, status[3] ?? '');
    return this.request === request && !request.over;
  }

  #chunkSize(chunk: Buffer, pos: number): number {
    const next = this.#line(chunk, pos, MAX_CHUNK_LINE);
    if (next === -1) return -1;
    if (next === -2) {
      this.#malformed('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'upstream chunk-size line too long');
      return -1;
    }
    const line = this.#lineText;
    let digits = 0;
    let size = 0;
    while (digits < line.length) {
      const c = line.charCodeAt(digits);
      const v =
        c >= 0x30 && c <= 0x39
          ? c - 0x30
          : c >= 0x61 && c <= 0x66
            ? c - 0x57
            : c >= 0x41 && c <= 0x46
              ? c - 0x37
              : -1;
      if (v < 0) break;
      size = size * 16 + v;
      digits++;
    }
    if (digits === 0 || digits > MAX_CHUNK_DIGITS) {
      this.#malformed('HPE_INVALID_CHUNK_SIZE', 'malformed upstream chunk size');
      return -1;
    }
    if (digits < line.length && !CHUNK_EXT.test(line.slice(digits))) {
      this.#malformed('HPE_INVALID_CHUNK_SIZE', 'malformed upstream chunk extension');
      return -1;
    }
    if (size === 0) this.#phase = Phase.Trailers;
    else {
      this.#phase = Phase.ChunkData;
      this.#remaining = size;
    }
    return next;
  }

  #trailerHeaders: Headers | undefined;
  #trailer(chunk: Buffer, pos: number): number {
    const next = this.#line(chunk, pos, MAX_TRAILER_BYTES - this.#trailerBytes);
    if (next === -1) return -1;
    if (next === -2) {
      this.#malformed('UND_ERR_HEADERS_OVERFLOW', 'upstream trailers too large');
      return -1;
    }
    const line = this.#lineText;
    this.#trailerBytes += line.length + 2;
    if (line === '') {
      const trailers = this.#trailerHeaders ?? (Object.create(null) as Headers);
      this.#trailerHeaders = undefined;
      if (next < chunk.length) this.#reusable = false;
      this.#complete(trailers);
      return -1;
    }
    this.#trailerHeaders ??= Object.create(null) as Headers;
    if (addHeader(this.#trailerHeaders, line, 0, line.length, false) !== ADDED) {
      this.#malformed('HPE_INVALID_HEADER_TOKEN', 'malformed upstream trailer line');
      return -1;
    }
    return next;
  }

  /** The answer is complete: the handler is told, the connection reused or closed. */
  #complete(trailers: Headers | undefined): void {
    const request = this.request!;
    this.#clearDeadline();
    this.request = undefined;
    this.#phase = Phase.Idle;
    request.stage = Stage.Over;
    request.conn = undefined;
    const reusable = this.#reusable && request.written && !this.#dead;
    if (!request.written && request.body !== null && !Buffer.isBuffer(request.body)) {
      // An answer before the upload ended: the rest of the client's body is read and dropped,
      // so the client is not cut mid-upload (the connection to the upstream closes).
      const body = request.body;
      body.removeAllListeners('data');
      body.on('data', () => {});
      body.resume();
    }
    if (reusable) this.#toIdle();
    else this.destroy();
    request.handler.onResponseEnd?.(request, trailers ?? EMPTY_HEADERS);
  }

  #toIdle(): void {
    this.#phase = Phase.Idle;
    if (!this.pool.release(this)) {
      this.destroy();
      return;
    }
    this.#setDeadline(this.#idleMs, 'idle');
  }

  #malformed(code: string, message: string): void {
    this.failRequest(error(code, message));
  }

  /** Ends the current request with `err` and closes the connection (its framing is lost). */
  failRequest(err: Error): void {
    const request = this.request;
    this.request = undefined;
    this.destroy();
    if (request !== undefined) {
      request.conn = undefined;
      request.fail(err);
    }
  }

  #onClose(err: Error | undefined): void {
    if (this.#dead) return;
    const request = this.request;
    if (err === undefined && request !== undefined && (request.paused || this.#backlog)) {
      // The upstream closed after bytes the handler has not taken yet: they come first.
      this.#eof = true;
      this.#dead = true;
      this.#forget();
      return;
    }
    this.#dead = true;
    this.#forget();
    this.socket.destroy();
    if (request === undefined) return;
    if (err === undefined) {
      this.#eof = true;
      this.#atEof();
      return;
    }
    this.request = undefined;
    request.conn = undefined;
    request.fail(err);
  }

  /**
   * The upstream closed and every byte before it was parsed: a body delimited by the close is
   * complete; any other answer in progress failed.
   */
  #atEof(): void {
    const request = this.request;
    if (request === undefined) return;
    if (this.#phase === Phase.UntilClose) {
      this.#reusable = false;
      this.#complete(undefined);
      return;
    }
    this.request = undefined;
    request.conn = undefined;
    request.fail(error('UND_ERR_SOCKET', 'upstream closed the connection'));
  }

  /** Closes the connection (no request is told: callers do that). */
  destroy(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#forget();
    this.socket.destroy();
  }

  get dead(): boolean {
    return this.#dead;
  }

  #forget(): void {
    this.#clearDeadline();
    watched.delete(this);
    this.pool.forget(this);
  }
}

const EMPTY_HEADERS: Headers = Object.freeze(Object.create(null)) as Headers;

function stripCr(line: string): string {
  return line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line;
}

/**
 * The index after the blank line that ends a head starting at `from` (CRLF CRLF, LF LF or a
 * mix), or -1.
 */
function endOfHead(buf: Buffer, from: number): number {
  let lf = buf.indexOf(0x0a, from);
  while (lf !== -1) {
    const next = lf + 1;
    if (next < buf.length && buf[next] === 0x0a) return next + 1;
    if (next + 1 < buf.length && buf[next] === 0x0d && buf[next + 1] === 0x0a) return next + 2;
    lf = buf.indexOf(0x0a, next);
  }
  return -1;
}

/** addHeader's answers. */
const ADDED = 0;
const MALFORMED = 1;
const OTHER_NAME = 2;

/**
 * Adds the header line `text[start, end)` (no line ending) to `headers` (RFC 9112 section 5,
 * RFC 9110 section 5.5): ADDED, or MALFORMED; with `knownOnly`, OTHER_NAME (nothing added) for
 * a name outside KNOWN_RESPONSE_HEADERS. Works in place (no slice per line, per name): see
 * knownName for the measurement.
 */
function addHeader(
  headers: Headers,
  text: string,
  start: number,
  end: number,
  knownOnly: boolean,
): number {
  // Checked with loops, not TOKEN and BAD_RESPONSE_VALUE (same sets of chars): see scanToken.
  const colon = text.indexOf(':', start);
  if (colon <= start || colon >= end) return MALFORMED;
  let name = knownName(text, start, colon);
  if (name === undefined) {
    if (knownOnly) return OTHER_NAME;
    const token = scanToken(text, start, colon);
    if (token === NOT_TOKEN) return MALFORMED;
    const rawName = text.slice(start, colon);
    name = token === MIXED_TOKEN ? rawName.toLowerCase() : rawName;
  }
  let s = colon + 1;
  let e = end;
  while (s < e && (text.charCodeAt(s) === 0x20 || text.charCodeAt(s) === 0x09)) s++;
  while (e > s && (text.charCodeAt(e - 1) === 0x20 || text.charCodeAt(e - 1) === 0x09)) e--;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return MALFORMED;
  }
  const value = text.slice(s, e);
  const known = headers[name];
  if (known === undefined) headers[name] = value;
  else if (typeof known === 'string') headers[name] = [known, value];
  else known.push(value);
  return ADDED;
}

/**
 * A dictionary record (`Object.create(null)`) with `record`'s headers, for a head with a name
 * outside KNOWN_RESPONSE_HEADERS. Names that change from answer to answer (an object store's
 * per-object metadata headers, say) would give a HeaderRecord a new hidden class every time,
 * and V8's transitions from the shared root grow with each: measured (a client-side
 * micro-benchmark, 30,000 answers, 2026-12-02) 39-43 µs an answer with one fresh name in 8
 * against 22-23 µs as a dictionary, 93 against 54-56 µs with 24 fresh names. Known names are a
 * fixed set.
 */
function dictionaryOf(record: Headers): Headers {
  const dictionary = Object.create(null) as Headers;
  for (const name in record) dictionary[name] = record[name];
  return dictionary;
}

/** The last Keep-Alive hint read and what it gave: an upstream sends the same one every time. */
// Undefined until the first hint: no starting value a hint could equal (request-checks.ts's
// Host memory let an empty Host through that way).
let lastHint: string | undefined;
let lastHintMs: number | null = null;

/**
 * How long an idle connection may be kept after a `Keep-Alive: timeout=N` hint: N s less one
 * (a margin against the upstream's own timer, so `timeout=0` gives -1000: not reusable), or
 * null without a timeout in it. The last hint is remembered: callgrind counted ~600
 * instructions for the RegExp#exec on every answer.
 */
function keepAliveMs(hint: string): number | null {
  if (hint !== lastHint) {
    const m = KEEP_ALIVE_TIMEOUT.exec(hint);
    lastHintMs = m === null ? null : Number(m[1]) * 1000 - 1000;
    lastHint = hint;
  }
  return lastHintMs;
}

/** A Content-Length's value (repeated only with one value), or -1 when malformed. */
function contentLength(value: string | string[]): number {
  if (typeof value === 'string') return decimal(value);
  const first = value[0]!;
  for (const v of value) if (v !== first) return -1;
  return decimal(first);
}

/** `text` read as 1 to 15 decimal digits (`^[0-9]{1,15}$`), or -1; a loop, not a RegExp test. */
function decimal(text: string): number {
  if (text.length === 0 || text.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  const joined = typeof value === 'string' ? value : value.join(',');
  if (joined.length === token.length) return joined.toLowerCase() === token;
  // One token (`keep-alive` most often): no split (a runtime call, see #onHead), and no
  // lower-casing unless the lengths match.
  if (!joined.includes(',')) {
    const one = joined.trim();
    return one.length === token.length && one.toLowerCase() === token;
  }
  for (const part of joined.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

// --- The pool. ------------------------------------------------------------------------------

/**
 * Connections to one plain-http origin: a request takes the most recently used idle connection
 * or opens a new one (connections are not capped, as the gateway's undici pools: a cap would
 * queue requests behind long answers); at most `maxIdle` idle ones are kept.
 */
export class H1Pool {
  readonly keepAlive: boolean;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly keepAliveMaxMs: number;
  readonly #maxIdle: number;
  readonly #connectTimeoutMs: number;
  readonly #host: string;
  readonly #port: number;
  /** `connection: keep-alive` or `close`, and the `host` line: the same for every request. */
  readonly #headStart: string;
  readonly #headStartClose: string;
  readonly https: boolean;
  readonly #tls: H1Tls | undefined;
  /** The last TLS session the origin gave: new connections resume it (no full handshake). */
  #tlsSession: Buffer | undefined;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  #closed = false;
  #onEmpty: (() => void) | undefined;

  constructor(options: H1PoolOptions) {
    const url = new URL(options.origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`H1Pool: not an http(s) origin: ${options.origin}`);
    this.https = url.protocol === 'https:';
    this.#host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = url.port === '' ? (this.https ? 443 : 80) : Number(url.port);
    this.#tls = options.tls;
    this.keepAlive = options.keepAlive;
    this.#maxIdle = options.keepAlive ? options.maxIdle : 0;
    this.headersTimeoutMs = options.headersTimeoutMs;
    this.bodyTimeoutMs = options.bodyTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.keepAliveTimeoutMs = options.keepAliveTimeoutMs;
    this.keepAliveMaxMs = options.keepAliveMaxMs;
    // undici's Host: the origin's host and port (url.host leaves out a default port).
    this.#headStart = ` HTTP/1.1\r\nhost: ${url.host}\r\nconnection: keep-alive\r\n`;
    this.#headStartClose = ` HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n`;
  }

  /**
   * Sends `options` (path, method, flat or object headers, body: null, a Buffer or a Readable;
   * `reset`: close the connection after it) and reports to `handler` as undici does. An invalid
   * request (a header value with CR/LF, a header the client owns) fails through
   * `onResponseError` with `UND_ERR_INVALID_ARG`, nothing written. Returns true (never queues
   * behind a full pool).
   */
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    let request: UpstreamRequest;
    try {
      request = this.#build(options, handler);
    } catch (err) {
      queueMicrotask(() => handler.onResponseError?.(detachedController, err as Error));
      return true;
    }
    if (this.#closed) {
      queueMicrotask(() => request.fail(error('UND_ERR_CLOSED', 'upstream pool closed')));
      return true;
    }
    let conn = this.#idle.pop();
    while (conn?.dead) conn = this.#idle.pop();
    if (conn === undefined) {
      conn = new Connection(this, this.#connectTimeoutMs);
      this.#all.add(conn);
    }
    conn.start(request);
    return true;
  }

  #build(
    options: Dispatcher.DispatchOptions,
    handler: Dispatcher.DispatchHandler,
  ): UpstreamRequest {
    const method = options.method;
    const path = options.path;
    // Loops, not TOKEN and BAD_PATH (same sets of chars): see scanToken.
    if (scanToken(method, 0, method.length) === NOT_TOKEN)
      throw error('UND_ERR_INVALID_ARG', 'invalid request method');
    if (!isRequestTarget(path)) throw error('UND_ERR_INVALID_ARG', 'invalid request path');
    const closeAfter = options.reset === true || !this.keepAlive;
    let head = `${method} ${path}${closeAfter ? this.#headStartClose : this.#headStart}`;
    let declared = -1;
    const headers = options.headers;
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) {
        // The gateway passes strings: String() only for others (a builtin call each, callgrind).
        const rawName: unknown = headers[i];
        const rawValue: unknown = headers[i + 1];
        const name = typeof rawName === 'string' ? rawName : String(rawName);
        const value = typeof rawValue === 'string' ? rawValue : String(rawValue);
        declared = this.#checkHeader(name, value, declared);
        head += `${name}: ${value}\r\n`;
      }
    } else if (headers != null) {
      for (const [name, raw] of Object.entries(headers as Record<string, unknown>)) {
        if (raw === undefined) continue;
        for (const value of Array.isArray(raw) ? raw : [raw]) {
          declared = this.#checkHeader(name, String(value), declared);
          head += `${name}: ${String(value)}\r\n`;
        }
      }
    }
    const raw = options.body ?? null;
    let body: Buffer | Readable | null = null;
    let streamLength = -1;
    if (raw === null) {
      if (declared > 0) throw error('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'no request body');
    } else if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) {
      body = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      if (declared === -1) head += `content-length: ${body.byteLength}\r\n`;
      else if (declared !== body.byteLength)
        throw error('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'request body length mismatch');
    } else if (typeof raw === 'string') {
      body = Buffer.from(raw);
      if (declared === -1) head += `content-length: ${body.byteLength}\r\n`;
      else if (declared !== body.byteLength)
        throw error('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'request body length mismatch');
    } else if (typeof (raw as Readable).on === 'function') {
      body = raw as Readable;
      streamLength = declared;
      if (declared === -1) head += 'transfer-encoding: chunked\r\n';
    } else throw error('UND_ERR_INVALID_ARG', 'unsupported request body');
    head += '\r\n';
    const noBody = method === 'HEAD';
    return new UpstreamRequest(handler, head, body, streamLength, noBody, closeAfter);
  }

  /** Validates one request header; returns the declared Content-Length so far. */
  #checkHeader(name: string, value: string, declared: number): number {
    // Loops, not TOKEN and BAD_REQUEST_VALUE (same sets of chars): two RegExp tests per
    // forwarded header were the most of a request's ~12 (callgrind; see scanToken).
    const token = scanToken(name, 0, name.length);
    if (token === NOT_TOKEN) throw error('UND_ERR_INVALID_ARG', 'invalid request header ');
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff)
        throw error('UND_ERR_INVALID_ARG', `invalid request header ${name}`);
    }
    const lower = token === MIXED_TOKEN ? name.toLowerCase() : name;
    if (OWN_REQUEST_HEADERS.has(lower))
      throw error('UND_ERR_INVALID_ARG', `the client writes ${lower} itself`);
    if (lower === 'content-length') {
      const length = decimal(value);
      if (length < 0 || declared !== -1)
        throw error('UND_ERR_INVALID_ARG', 'invalid request content-length');
      return length;
    }
    return declared;
  }

  /** A new socket to the origin (TLS for https), with TCP keep-alive probes as undici sets them. */
  openSocket(onRead: (n: number) => boolean): Socket {
    const host = this.#host;
    const port = this.#port;
    if (!this.https) {
      return connect({
        host,
        port,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: 60_000,
        onread: { buffer: READ_BUFFER, callback: onRead },
      });
    }
    const tls = this.#tls;
    const options: ConnectionOptions = {
      host,
      port,
      // SNI carries names only (RFC 6066 section 3); the certificate is still checked against
      // an IP address origin.
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: tls?.rejectUnauthorized ?? true,
      ...(tls?.secureContext !== undefined ? { secureContext: tls.secureContext } : {}),
      ...(this.#tlsSession !== undefined ? { session: this.#tlsSession } : {}),
    };
    const socket = tlsConnect(options);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.on('session', (session: Buffer) => {
      this.#tlsSession = session;
    });
    return socket;
  }

  /** A connection finished a request and may be reused: false when it must close instead. */
  release(conn: Connection): boolean {
    if (this.#closed || this.#idle.length >= this.#maxIdle || conn.dead) return false;
    this.#idle.push(conn);
    return true;
  }

  forget(conn: Connection): void {
    this.#all.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    if (this.#all.size === 0) this.#onEmpty?.();
  }

  /** close() or destroy() was called: the pool takes no more requests (as undici's `closed`). */
  get closed(): boolean {
    return this.#closed;
  }

  /** No new requests; idle connections close; resolves once the requests in flight finished. */
  close(): Promise<void> {
    this.#closed = true;
    for (const conn of this.#idle.splice(0)) conn.destroy();
    if (this.#all.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onEmpty = resolve;
    });
  }

  /** Cuts every connection; requests in flight fail with `UND_ERR_DESTROYED`. */
  destroy(): Promise<void> {
    this.#closed = true;
    for (const conn of [...this.#all]) {
      conn.failRequest(error('UND_ERR_DESTROYED', 'upstream pool destroyed'));
      conn.destroy();
    }
    return Promise.resolve();
  }
}

/** The controller given with an error raised before a request existed (invalid options). */
const detachedController: Dispatcher.DispatchController = {
  aborted: false,
  paused: false,
  reason: null,
  abort() {},
  pause() {},
  resume() {},
};

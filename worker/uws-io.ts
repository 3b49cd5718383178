/*
 * Every uWebSockets.js call of the edge lives in this file, with the quirks it works around
 * (uwebsockets 3.0.6, measured):
 * - request data (headers, url, query) is only readable synchronously inside the handler;
 * - `onAborted` must be registered before returning from the handler, and nothing may touch
 *   `res` after it fired or after the response ended (uWS throws on a discarded response);
 * - writes outside the synchronous part of the handler must happen inside `res.cork`;
 * - `onData` chunks are views of memory uWS reuses: they are copied before being kept;
 * - `resume()` on a socket that was not paused stalls it, so pause state is tracked;
 * - `pause()` stops the socket's events both ways, and `resume()` while an answer's write waits
 *   for the socket to drain loses that wait; a refused write makes uWS read again, paused or
 *   not: pause and resume wait until the socket drained (see pauseBody);
 * - `endWithoutBody(n)` with a length leaves the connection waiting for n body bytes that never
 *   come (the next request on it gets nothing), and `endWithoutBody(undefined, …)` announces a
 *   length of 2^63: a bodiless answer writes its own `content-length` and calls it bare;
 * - uWS knows nothing of HEAD: a body given to `end()` is sent, so HEAD answers never pass one;
 * - a request already buffered behind one answered synchronously is still handed to the
 *   handler, even when that answer closes the connection (the close is then lost): a request
 *   whose framing is broken is answered on a later turn instead (dispatch.ts);
 * - its chunked decoder is lenient (a chunk size " 5" reads as 0; the CRLF after chunk data is
 *   not checked), so a refused request's connection is closed rather than reused;
 * - `end(…, closeConnection = true)` after `write()` (a chunked body) writes "Connection: close"
 *   and a blank line into the body, breaking its chunked framing: a proxied response never
 *   closes that way. It says `connection: close` in its head and ends normally; the body, if
 *   any, is still read (and discarded) to its end, so the client can read the whole answer
 *   instead of being reset mid-upload.
 */

import uws, { type HttpRequest, type HttpResponse } from 'uWebSockets.js';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { GatewayError, statusLine } from '../shared/errors.js';
import {
  connectionListed,
  isRelayedResponseHeader,
  isUpstreamCorsHeader,
  varyWithOrigin,
} from './upstream-headers.js';

export const SERVER_HEADER = 'ProxyAuth';

// --- The server. -------------------------------------------------------------------------

// uWS adds `uWebSockets: 20` to every answer unless told to be silent (an undocumented switch of
// this build, measured: the header is gone); the gateway announces itself with `server` only.
(uws as unknown as { _cfg?: (flag: string) => void })._cfg?.('silent');

/** What uWS calls for every request. */
export type RequestHandler = (res: HttpResponse, req: HttpRequest) => void;

/** A uWS app with the gateway's handler on every path. */
export type Server = uws.TemplatedApp;
/** A listening socket of a {@link Server}. */
export type Listener = uws.us_listen_socket;

/** The uWS socket context an upgrade handler is given, kept until the upgrade is accepted. */
export type UpgradeContext = uws.us_socket_context_t;

/** What uWS calls for a WebSocket handshake (a GET with `Upgrade: websocket` and a key). */
export type UpgradeHandler = (res: HttpResponse, req: HttpRequest, context: UpgradeContext) => void;

/** WebSocket handshakes and the limits of the client side of proxied WebSockets. */
export interface WebSocketOptions {
  readonly upgrade: UpgradeHandler;
  /** Largest message a client may send, in bytes (uWS closes the connection beyond, code 1009). */
  readonly maxMessageBytes: number;
  /** Bytes uWS may buffer towards a slow client before closing it (1009 + a log line). */
  readonly maxBufferedBytes: number;
}

/**
 * A plain or TLS app whose every request goes to `handler`, and every WebSocket handshake to
 * `webSocket.upgrade`. uWS hands a GET with `Upgrade: websocket` and a `Sec-WebSocket-Key` to
 * the WebSocket route and anything else (a POST with Upgrade, an Upgrade without a key,
 * `Upgrade: h2c`) to `handler` (measured, uwebsockets 3.0.6), which proxies it as a plain
 * request without its hop-by-hop Upgrade. uWS reads the certificate files here and throws
 * ("App construction failed") on an unusable pair.
 */
export function createServer(
  tls: { certFile: string; keyFile: string } | null,
  handler: RequestHandler,
  webSocket?: WebSocketOptions,
): Server {
  const app = tls
    ? uws.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile })
    : uws.App();
  if (webSocket) app.ws<PeerHolder>('/*', webSocketBehavior(webSocket));
  app.any('/*', handler);
  return app;
}

/** Listens on host:port (SO_REUSEPORT: edges share it); undefined when the bind failed. */
export function listen(
  server: Server,
  host: string,
  port: number,
): Promise<{ listener: Listener; port: number } | undefined> {
  return new Promise((resolve) => {
    server.listen(host, port, (listener) => {
      if (!listener) resolve(undefined);
      else
        resolve({
          listener,
          port: uws.us_socket_local_port(listener as unknown as uws.us_socket),
        });
    });
  });
}

/** Stops accepting: the kernel hands new connections to the other edges of the port. */
export function stopListening(listener: Listener): void {
  uws.us_listen_socket_close(listener);
}

/** Closes the app and every connection it still has. */
export function closeServer(server: Server): void {
  server.close();
}

// --- Requests. ---------------------------------------------------------------------------

/** A response header added by the gateway (decoration by a pipeline step, or an error's own). */
export type HeaderPair = readonly [name: string, value: string];

/** What the gateway keeps of a request: copied out of uWS before the first await. */
export interface Exchange {
  readonly res: HttpResponse;
  /**
   * The request line's method, path and query. Writable for forward-auth only
   * (worker/forward-auth.ts), which judges the request a trusted proxy describes with the same
   * steps: they read these fields.
   */
  method: string;
  url: string;
  query: string;
  /** Lower-case header names and their values, flat (`[name, value, name, value, ...]`), in arrival order. */
  readonly headers: string[];
  /** Size of the header lines (names, values, separators), for `max_header_bytes`. */
  readonly headBytes: number;
  /** The request announces a body (Content-Length above 0, or Transfer-Encoding). */
  readonly hasBody: boolean;
  /** Every Content-Length value, comma-joined in arrival order; undefined when absent. */
  readonly contentLength: string | undefined;
  /** How many Content-Length header lines the request has. */
  readonly contentLengthLines: number;
  /** Every Transfer-Encoding value, comma-joined in arrival order; undefined when absent. */
  readonly transferEncoding: string | undefined;
  /** The first Host value; undefined when absent. Forward-auth sets the original's. */
  host: string | undefined;
  /** How many Host header lines the request has (RFC 9112 section 3.2: exactly one). */
  readonly hostLines: number;
  readonly ip: string;
  readonly startedAt: number;
  /** Set once the client went away or the response ended: `res` must not be touched then. */
  done: boolean;
  /** The client went away (not the gateway cutting the connection itself). */
  aborted: boolean;
  /** The gateway cut the connection (an upstream failed after the head was sent). */
  cut: boolean;
  /** Why the gateway cut it, when the cut is the request's own end (see abortExchange). */
  cutCause: GatewayError | undefined;
  /**
   * The request body is not (yet) read to its end. uWS does not skip an unread body, so an
   * answer given before the end must close the connection or the next request never parses.
   */
  unreadBody: boolean;
  /** uWS's resume() on a socket that is not paused stalls it (uwebsockets 3.0.6): track it. */
  paused: boolean;
  /** A write of the answer was refused: uWS waits for the socket to drain (see pauseBody). */
  blocked: boolean;
  /** The body's reader asked for a pause while blocked: applied once the socket drained. */
  pauseWanted: boolean;
  /**
   * The bytes of this request's streamed body counted in the edge's total of bodies read while
   * answers wait (see queuedWhileBlocked); 0 when none, -1 once released (releaseQueued).
   */
  queuedCounted: number;
  /** The body is streamed upstream: it is read to its end whatever the answer. */
  bodyStreamed: boolean;
  /** That stream (requestBodyStream), for its end with the request's (endStreamedBody). */
  bodyStream: Readable | undefined;
  /** The body's last byte arrived while nobody read it (dropBody): nothing to linger for. */
  bodyDropped: boolean;
  /** The answer carries `connection: close` (draining). */
  closeConnection: boolean;
  /** The request's framing cannot be trusted: the connection is closed after the answer. */
  framingBroken: boolean;
  status: number;
  /**
   * Headers the pipeline adds to whatever answer this request gets (gateway's or upstream's), as
   * the head lines they become: `\r\nname: value` each, checked and encoded when added
   * (addResponseHeader), so that every answer's head appends them as they are. '' for none.
   */
  headLines: string;
  /** `headLines` has no char above 0x7f (a value with some is held as its UTF-8 bytes, see Head). */
  headLinesAscii: boolean;
  /**
   * Set when `cors_origins` is on (worker/cors.ts): the CORS headers of this request's origin
   * (none for an origin not listed). Every answer then also carries `Vary: Origin`, and an
   * upstream's own Access-Control-* headers are dropped. Undefined: CORS is off.
   */
  cors: readonly HeaderPair[] | undefined;
  /** Called once if the client goes away before the response ended. */
  abortListeners: (() => void)[] | undefined;
  /** Body chunks kept while the request waited (holdBody), for the reader that comes later. */
  held: HeldBody | undefined;
}

/** What holdBody kept: copies of the chunks that arrived, and whether the last one did. */
interface HeldBody {
  chunks: Buffer[];
  last: boolean;
}

type BodyHandler = (chunk: ArrayBuffer | Buffer, isLast: boolean) => void;

const MAPPED_V4_PREFIX = '0000:0000:0000:0000:0000:ffff:';

/**
 * A client address as logs and X-Forwarded-For show it. uWS writes IPv6 in full form
 * (`0000:...:0001`), and an IPv4 client of a dual-stack (`::`) listener as a mapped address:
 * the first becomes RFC 5952 text (`::1`), the second `127.0.0.1`, so that backends comparing
 * addresses as text see the usual spelling.
 */
export function clientIp(text: string): string {
  if (text.length !== 39) return text;
  if (text.startsWith(MAPPED_V4_PREFIX)) {
    const hi = Number.parseInt(text.slice(30, 34), 16);
    const lo = Number.parseInt(text.slice(35, 39), 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return compressIpv6(text);
}

/** 16 address bytes (IPv6, or IPv4-mapped IPv6) as {@link clientIp} shows a peer. */
export function ipv6Text(bytes: Uint8Array): string {
  let full = '';
  for (let i = 0; i < 16; i += 2) {
    if (i > 0) full += ':';
    full += ((bytes[i]! << 8) | bytes[i + 1]!).toString(16).padStart(4, '0');
  }
  return clientIp(full);
}

/** The last peer address read (its bytes, their count) and its text: see peerAddress. */
const lastPeer = new Uint8Array(16);
let lastPeerLength = -1;
let lastPeerText = '';

/**
 * A client address as {@link clientIp} shows it, from uWS's binary form (4 or 16 bytes;
 * anything else is ''). The last address read is remembered: the requests of one keep-alive
 * connection, and of one client, come from the same address. Measured (callgrind): uWS's text
 * form (inet_ntop and snprintf in uWS), its UTF-8 decoding and clientIp's parsing cost ~3,000
 * instructions per request; the bytes compared with the last ones, a few hundred. The memory it
 * holds is one address.
 */
export function peerAddress(raw: ArrayBuffer): string {
  const bytes = new Uint8Array(raw);
  const n = bytes.length;
  if (n === lastPeerLength) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (bytes[i] !== lastPeer[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastPeerText;
  }
  const text =
    n === 4 ? `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}` : n === 16 ? ipv6Text(bytes) : '';
  if (n <= 16) {
    lastPeer.set(bytes);
    lastPeerLength = n;
    lastPeerText = text;
  }
  return text;
}

/** RFC 5952 section 4: no leading zeros, the longest run of two or more zero groups as `::`. */
function compressIpv6(full: string): string {
  const groups = full.split(':').map((g) => Number.parseInt(g, 16).toString(16));
  if (groups.length !== 8 || groups.some((g) => g === 'NaN')) return full;
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const tail = groups.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

/**
 * Request header names browsers, API clients and proxies commonly send (uWS gives them lower
 * case). See internName.
 */
export const KNOWN_REQUEST_HEADERS: readonly string[] = [
  'accept',
  'accept-encoding',
  'accept-language',
  'authorization',
  'cache-control',
  'connection',
  'content-length',
  'content-type',
  'cookie',
  'dnt',
  'expect',
  'forwarded',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'keep-alive',
  'origin',
  'pragma',
  'priority',
  'proxy-connection',
  'range',
  'referer',
  'sec-ch-ua',
  'sec-ch-ua-mobile',
  'sec-ch-ua-platform',
  'sec-fetch-dest',
  'sec-fetch-mode',
  'sec-fetch-site',
  'sec-fetch-user',
  'te',
  'transfer-encoding',
  'upgrade',
  'upgrade-insecure-requests',
  'user-agent',
  'x-csrf-token',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'x-request-id',
  'x-requested-with',
];

/** KNOWN_REQUEST_HEADERS by length (index: the length; empty lists for the other lengths). */
const REQUEST_NAMES_BY_LENGTH: (readonly string[])[] = Array.from({ length: 26 }, () => []);
for (const name of KNOWN_REQUEST_HEADERS) {
  (REQUEST_NAMES_BY_LENGTH[name.length] as string[]).push(name);
}

/**
 * The interned constant equal to `name` when it is a known request header name, else `name`.
 * uWS hands every name as a fresh string, and V8 hashes a fresh string the first time it meets
 * a Set or Map (~20 instructions a character: the hop-by-hop and trusted-header sets look up
 * every name); a constant's hash is computed once. Comparing with the few candidates of the same
 * length costs less than that hash (callgrind, see the Performance section of the README).
 */
export function internName(name: string): string {
  const candidates = REQUEST_NAMES_BY_LENGTH[name.length];
  if (candidates !== undefined) {
    for (let i = 0; i < candidates.length; i++) if (candidates[i] === name) return candidates[i]!;
  }
  return name;
}

/** Copies what the gateway needs out of the uWS request; must run first in the handler. */
export function openExchange(res: HttpResponse, req: HttpRequest): Exchange {
  const headers: string[] = [];
  let headBytes = 0;
  let contentLength: string | undefined;
  let contentLengthLines = 0;
  let transferEncoding: string | undefined;
  let host: string | undefined;
  let hostLines = 0;
  req.forEach((raw, value) => {
    const key = internName(raw);
    headers.push(key, value);
    headBytes += key.length + value.length + 4;
    if (key === 'content-length') {
      contentLength = contentLength === undefined ? value : `${contentLength},${value}`;
      contentLengthLines++;
    } else if (key === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding},${value}`;
    } else if (key === 'host') {
      host ??= value;
      hostLines++;
    }
  });
  const hasBody =
    transferEncoding !== undefined || (contentLength !== undefined && contentLength !== '0');
  const exchange: Exchange = {
    res,
    // Methods are compared and forwarded upper-case: `get` is routed and sent as `GET`.
    method: req.getCaseSensitiveMethod().toUpperCase(),
    url: req.getUrl(),
    query: req.getQuery() ?? '',
    headers,
    headBytes,
    hasBody,
    contentLength,
    contentLengthLines,
    transferEncoding,
    host,
    hostLines,
    ip: peerAddress(res.getRemoteAddress()),
    startedAt: performance.now(),
    done: false,
    aborted: false,
    cut: false,
    cutCause: undefined,
    unreadBody: hasBody,
    paused: false,
    blocked: false,
    pauseWanted: false,
    queuedCounted: 0,
    bodyStreamed: false,
    bodyStream: undefined,
    bodyDropped: false,
    closeConnection: false,
    framingBroken: false,
    status: 0,
    headLines: '',
    headLinesAscii: true,
    cors: undefined,
    abortListeners: undefined,
    held: undefined,
  };
  res.onAborted(() => {
    exchange.done = true;
    // uWS reports the gateway's own close() here too: that one is not the client's doing.
    exchange.aborted = !exchange.cut;
    const listeners = exchange.abortListeners;
    exchange.abortListeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  });
  return exchange;
}

/** Calls `listener` if the client goes away before the response ended (at most once). */
export function onClientAbort(ex: Exchange, listener: () => void): void {
  if (ex.abortListeners === undefined) ex.abortListeners = [listener];
  else ex.abortListeners.push(listener);
}

/** First value of a header (names are lower case). */
export function header(ex: Exchange, name: string): string | undefined {
  const h = ex.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/**
 * The value of a singleton header (names are lower case): undefined when absent, null when it
 * appears more than once (which one another hop would read is a guess: callers refuse it).
 */
export function singleHeader(ex: Exchange, name: string): string | undefined | null {
  const h = ex.headers;
  let value: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== name) continue;
    if (value !== undefined) return null;
    value = h[i + 1];
  }
  return value;
}

/**
 * Adds a header to the answer this request will get, whoever produces it. `value` is the
 * gateway's own text, written as UTF-8; a value with a control char other than HTAB is dropped
 * (the same last defence as Head.add).
 */
export function addResponseHeader(ex: Exchange, name: string, value: string): void {
  if (hasControl(value)) return;
  if (isAscii(value)) ex.headLines += `\r\n${name}: ${value}`;
  else {
    ex.headLinesAscii = false;
    ex.headLines += `\r\n${name}: ${Buffer.from(value, 'utf8').toString('latin1')}`;
  }
}

/**
 * Adds a head line the gateway composed from its constants and numbers: `line` is
 * `\r\nname: value`, printable ASCII by construction, and is not scanned again. For the
 * per-request headers of the hot path (the rate limiter's RateLimit header): measured
 * (callgrind, 2026-12-02) the checked path, a [name, value] pair and its scans cost ~1,900
 * instructions a request. Anything that carries text from outside (config, client, upstream)
 * goes through addResponseHeader instead.
 */
export function addOwnHeadLine(ex: Exchange, line: string): void {
  ex.headLines += line;
}

/**
 * Writes the CORS headers (when on) and the pipeline's decoration with writeHeader calls: for
 * an upgrade's head, which uWS finishes itself. Other answers build their head with Head.
 */
function writeDecoration(ex: Exchange): void {
  const cors = ex.cors;
  if (cors !== undefined) {
    ex.res.writeHeader('vary', 'Origin');
    for (const [k, v] of cors) if (!hasControl(v)) ex.res.writeHeader(k, v);
  }
  const lines = ex.headLines;
  if (lines === '') return;
  // Each line is `\r\nname: value`, its value's chars the bytes to write (latin1).
  for (const line of lines.split('\r\n')) {
    const colon = line.indexOf(': ');
    if (colon <= 0) continue;
    ex.res.writeHeader(line.slice(0, colon), Buffer.from(line.slice(colon + 2), 'latin1'));
  }
}

/** A control char other than HTAB: such a gateway value is not written (see Head.add). */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/**
 * A response head built as one string and handed to uWS in one writeStatus call: the status
 * line, then `name: value` lines joined by CRLF (uWS writes the status verbatim between
 * `HTTP/1.1 ` and CRLF, then its own Date and framing headers). Measured (callgrind): each
 * writeHeader call cost ~1,700 instructions (two UTF-8 conversions and the native call), more
 * than the rest of the head's work; a head of N headers now costs one call instead of N + 1.
 *
 * The bytes are those the writeHeader calls wrote: the gateway's own values as UTF-8, relayed
 * upstream values as the latin1 bytes they arrived as (`relayed`). The text holds one char per
 * byte: a head with any char above 0x7f goes as a latin1 Buffer, and a gateway value with such
 * chars is added as its UTF-8 bytes. A value never holds CR or LF: upstream heads with control
 * bytes in a value are refused by the h1 client and undici, and the gateway's own values are
 * its constants, numbers, config values validated at load, and URLs it encodes itself (add()
 * drops one that is not).
 * Exported for tests.
 */
export class Head {
  text: string;
  ascii = true;

  constructor(statusLine: string) {
    this.text = `${statusLine}\r\nserver: ${SERVER_HEADER}`;
  }

  /**
   * A header of the gateway's own (written as UTF-8, as writeHeader writes a string). A value
   * with a control char (HTAB aside) is not written at all: the last defence should a config
   * value or a bug ever bring a CR or LF here (it would start a header of its own).
   */
  add(name: string, value: string): void {
    if (hasControl(value)) return;
    if (isAscii(value)) this.text += `\r\n${name}: ${value}`;
    else {
      this.ascii = false;
      this.text += `\r\n${name}: ${Buffer.from(value, 'utf8').toString('latin1')}`;
    }
  }

  /** A header relayed from an upstream: its value's chars are the bytes as received (latin1). */
  relayed(name: string, value: string): void {
    this.text += `\r\n${name}: ${value}`;
    if (this.ascii) this.ascii = isAscii(value);
  }

  /** The CORS headers (when on, `vary` its Vary value) and the pipeline's decoration. */
  decoration(ex: Exchange, vary: string): void {
    const cors = ex.cors;
    if (cors !== undefined) {
      this.relayed('vary', vary);
      for (const [k, v] of cors) this.add(k, v);
    }
    if (ex.headLines !== '') {
      this.text += ex.headLines;
      if (!ex.headLinesAscii) this.ascii = false;
    }
  }

  /**
   * Hands the head to uWS: the first write of the answer. uWS writes `200 OK` by itself before a
   * writeHeader that comes first, and then ignores writeStatus: the whole head would be lost.
   */
  write(res: HttpResponse): void {
    res.writeStatus(this.ascii ? this.text : Buffer.from(this.text, 'latin1'));
  }
}

/** No char of `value` is above 0x7f. A loop, not a RegExp test (~270 instructions a call). */
function isAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The answer tells the client to close: draining, or the request body is not read to its end. */
function mustClose(ex: Exchange): boolean {
  return ex.unreadBody || ex.closeConnection;
}

/**
 * Ends an answer that has no body on the wire: HEAD answers, 204 and 304. `length` is the
 * Content-Length to announce (a HEAD answer says what GET would send). `closeNow` closes the
 * connection; uWS offers no bodiless close, so `end('', true)` then announces a length of 0.
 */
function endBodiless(ex: Exchange, length: number | undefined, closeNow: boolean): void {
  const res = ex.res;
  ex.done = true;
  if (closeNow) {
    res.end(undefined, true);
    return;
  }
  if (length !== undefined) res.writeHeader('content-length', String(length));
  res.endWithoutBody();
}

/**
 * A JSON answer written by the gateway itself, with the request's decoration headers and
 * `extra`. HEAD gets the same head without the body. The connection is closed after it when the
 * request's framing is broken, or when the request body was left unread and nothing reads it on
 * (uWS skips a well-framed unread body itself, but its chunked decoder is lenient: a refused
 * request's connection carries nothing more). A body being streamed upstream is read to its end instead (the client
 * can then read the answer without being reset mid-upload) and the answer says
 * `connection: close`, as it does while draining.
 */
export function sendJson(
  ex: Exchange,
  status: number,
  body: string,
  extra?: readonly HeaderPair[],
): void {
  sendBody(ex, status, 'application/json', body, extra);
}

/** As sendJson, for any media type (HTML pages of session-cookie mode). Never cached. */
export function sendBody(
  ex: Exchange,
  status: number,
  contentType: string,
  body: string,
  extra?: readonly HeaderPair[],
): void {
  if (ex.done) return;
  ex.status = status;
  const res = ex.res;
  res.cork(() => {
    const head = new Head(statusLine(status));
    head.add('content-type', contentType);
    head.add('cache-control', 'no-store');
    if (extra) for (const [k, v] of extra) head.add(k, v);
    head.decoration(ex, 'Origin');
    const closeNow = ex.framingBroken || (ex.unreadBody && !ex.bodyStreamed);
    if (mustClose(ex) && !closeNow) head.add('connection', 'close');
    if (mustLinger(ex, closeNow)) {
      // All of it waits: a head without its Content-Length tells a client nothing yet, and a
      // request pipelined behind the body then gets a clean close (uWS drops the connection).
      linger(ex, () => {
        head.write(res);
        if (ex.method === 'HEAD') endBodiless(ex, Buffer.byteLength(body), closeNow);
        else res.end(body, closeNow);
      });
      return;
    }
    head.write(res);
    resumeBody(ex);
    if (ex.method === 'HEAD') {
      endBodiless(ex, Buffer.byteLength(body), closeNow);
      return;
    }
    ex.done = true;
    // uWS writes its own `Connection: close` when it closes.
    res.end(body, closeNow);
  });
}

/**
 * A 204 written by the gateway itself (CORS preflights), with the request's decoration headers
 * and `extra`. Callers answer only requests without a body (the body would go unread).
 */
export function sendNoContent(ex: Exchange, extra: readonly HeaderPair[]): void {
  if (ex.done) return;
  ex.status = 204;
  const res = ex.res;
  res.cork(() => {
    const head = new Head(statusLine(204));
    for (const [k, v] of extra) head.add(k, v);
    head.decoration(ex, 'Origin');
    if (ex.closeConnection) head.add('connection', 'close');
    head.write(res);
    endBodiless(ex, undefined, false);
  });
}

/** Drops the connection (used when an upstream fails after the response head was sent). */
export function abortExchange(ex: Exchange, cause?: GatewayError): void {
  if (ex.done) return;
  ex.done = true;
  ex.cut = true;
  ex.cutCause = cause;
  ex.res.close();
}

// --- Proxied responses: the relay (upstream-relay.ts) writes through these. -----------------

/** Runs `write` corked: everything it writes leaves in one syscall at its end. */
export function corked(ex: Exchange, write: () => void): void {
  ex.res.cork(write);
}

/**
 * Writes the status line, `server`, the upstream's relayed headers, the request's decoration
 * headers and, when the connection cannot be reused, `connection: close`: one Head, one uWS
 * call. Must run corked. Relayed values keep their bytes above 0x7f (see Head).
 */
export function writeProxiedHead(
  ex: Exchange,
  line: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): void {
  const head = new Head(line);
  const listed = connectionListed(headers);
  // With CORS on, the gateway's Vary and Access-Control-* replace the upstream's (cors.ts).
  const cors = ex.cors !== undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || !isRelayedResponseHeader(name, listed)) continue;
    if (cors && (name === 'vary' || isUpstreamCorsHeader(name))) continue;
    if (typeof value === 'string') head.relayed(name, value);
    else for (const v of value) head.relayed(name, v);
  }
  head.decoration(ex, cors ? varyWithOrigin(headers.vary) : 'Origin');
  if (mustClose(ex)) head.add('connection', 'close');
  head.write(ex.res);
}

/** Ends a proxied response with no body on the wire (HEAD, 204, 304); must run corked. */
export function endProxiedBodiless(ex: Exchange, length: number | undefined): void {
  if (mustLinger(ex, false)) {
    linger(ex, () => endBodiless(ex, length, false));
    return;
  }
  resumeBody(ex);
  endBodiless(ex, length, false);
}

/**
 * Ends a proxied response whose body was written with `writeChunk` (or is empty). Never closes
 * here (see the header comment: uWS would corrupt a chunked body); the head said so if needed.
 * An upload still paused for backpressure is resumed, so the rest of its body is read.
 */
export function endProxied(ex: Exchange): void {
  if (mustLinger(ex, false)) {
    linger(ex, () => ex.res.end());
    return;
  }
  resumeBody(ex);
  ex.done = true;
  ex.res.end();
}

/**
 * Ends a proxied response of known length whose whole body is `body`, written at once: one
 * end() call instead of tryEnd. Measured (callgrind): tryEnd cost ~3,800 instructions a call
 * (its [ok, done] result array, the offset bookkeeping), end ~1,500. What does not fit the
 * client's socket at once uWS keeps and sends as it drains: the same bytes the relay would hold
 * with tryEnd until then (one upstream read, bounded). Must run corked.
 */
export function endProxiedWith(ex: Exchange, body: Uint8Array): void {
  if (mustLinger(ex, false)) {
    // A copy: `body` may be a view of the upstream client's read buffer.
    const copy = Buffer.from(body);
    linger(ex, () => ex.res.end(copy));
    return;
  }
  resumeBody(ex);
  ex.done = true;
  ex.res.end(body);
}

/** Writes a chunk of a body of unknown length (chunked); false when the socket is full. */
export function writeChunk(ex: Exchange, chunk: Uint8Array): boolean {
  if (ex.res.write(chunk)) return true;
  ex.blocked = true;
  return false;
}

/**
 * Writes (part of) a body of known total length. Returns whether the chunk was taken whole;
 * the response is done once the total was written (`ex.done` is then set).
 */
export function tryEndChunk(ex: Exchange, chunk: Uint8Array, total: number): boolean {
  const last = ex.res.getWriteOffset() + chunk.byteLength >= total;
  if (last && mustLinger(ex, false)) {
    const copy = Buffer.from(chunk);
    linger(ex, () => endHeldChunk(ex.res, copy, total));
    return true;
  }
  // This write may end the response, after which `res` is off limits: an upload still paused
  // for backpressure is resumed first, so the rest of its body is read (and dropped).
  if (last && ex.paused) resumeBody(ex);
  const [ok, done] = ex.res.tryEnd(chunk, total);
  if (done) ex.done = true;
  else if (!ok) ex.blocked = true;
  return ok || done;
}

/** Calls `handler(offset)` each time the client socket drains; it returns false to keep waiting. */
export function onClientWritable(ex: Exchange, handler: (offset: number) => boolean): void {
  ex.res.onWritable((offset) => {
    const drained = handler(offset);
    if (drained && ex.blocked) unblock(ex);
    return drained;
  });
}

// --- Request bodies. ---------------------------------------------------------------------

/*
 * Past its limit a body is discarded, not buffered, up to this many bytes: most clients only
 * read the 413 once they have sent everything. Beyond it the connection is cut after the 413.
 */
const DISCARD_LIMIT = 1024 * 1024;

/**
 * Keeps the request body while the request waits for something (an async pipeline step): uWS
 * hands body chunks only to a handler set when they arrive, so a body left without one would
 * be lost. The chunks that arrive are copied and the socket is paused after the first, so at
 * most one read's worth is held; the reader that comes later (readBody, requestBodyStream)
 * gets them first, then the rest. No-op without a body or when already held.
 */
export function holdBody(ex: Exchange): void {
  if (!ex.unreadBody || ex.held !== undefined || ex.done) return;
  const held: HeldBody = { chunks: [], last: false };
  ex.held = held;
  ex.res.onData((chunk, isLast) => {
    held.chunks.push(own(chunk));
    if (isLast) {
      held.last = true;
      ex.unreadBody = false;
    } else pauseBody(ex);
  });
}

/** Sets the body handler, first replaying what holdBody kept (then resuming the socket). */
function onBody(ex: Exchange, handler: BodyHandler): void {
  ex.res.onData(handler);
  const held = ex.held;
  if (held === undefined) return;
  ex.held = undefined;
  const n = held.chunks.length;
  for (let i = 0; i < n; i++) handler(held.chunks[i]!, held.last && i === n - 1);
  if (!held.last) resumeBody(ex);
}

/** A chunk the gateway may keep: uWS's ArrayBuffer is only valid during the callback. */
function own(chunk: ArrayBuffer | Buffer): Buffer {
  return chunk instanceof ArrayBuffer ? copyOf(chunk) : chunk;
}

/**
 * A copy of uWS data (a body chunk, a WebSocket message) in a Buffer (pooled below 4 KiB, every
 * byte overwritten). Measured: allocUnsafe + set is 3x faster than Buffer.from(Uint8Array), and
 * ~10x faster than `ArrayBuffer#slice` for a 1 KiB chunk (384 vs 3,662 ns; equal at 64 KiB).
 */
function copyOf(data: ArrayBuffer): Buffer {
  const copy = Buffer.allocUnsafe(data.byteLength);
  copy.set(new Uint8Array(data));
  return copy;
}

const CLIENT_GONE = new GatewayError('BAD_REQUEST', { cause: 'client aborted' });

/**
 * Reads a whole body of at most `limit` bytes (bodies the gateway itself parses, like /auth;
 * small proxied bodies, worker/proxy-handler.ts). Rejects with BODY_TOO_LARGE when the limit is
 * crossed; memory stays bounded by `limit`, and by twice what the client sent (see gather).
 */
export function readBody(ex: Exchange, limit: number): Promise<Buffer> {
  const declared = Number(ex.contentLength ?? '0');
  if (declared > limit) return Promise.reject(new GatewayError('BODY_TOO_LARGE'));
  if (!ex.hasBody) return Promise.resolve(Buffer.alloc(0));
  if (ex.done) return Promise.reject(CLIENT_GONE);
  // A chunked body's length is unknown: it may grow to the limit.
  const capacity = declared > 0 ? declared : limit;
  return new Promise((resolve, reject) => {
    let body: Buffer | undefined;
    let size = 0;
    onClientAbort(ex, () => reject(CLIENT_GONE));
    onBody(ex, (chunk, isLast) => {
      const n = chunk.byteLength;
      if (isLast) ex.unreadBody = false;
      if (size + n <= limit) {
        // A body in one piece (most small ones) is copied once.
        if (isLast && size === 0) {
          resolve(own(chunk));
          return;
        }
        body = gather(body, size, chunk, capacity);
        size += n;
        if (isLast) resolve(body.subarray(0, size));
        return;
      }
      size += n;
      body = undefined;
      if (isLast || size > limit + DISCARD_LIMIT) reject(new GatewayError('BODY_TOO_LARGE'));
    });
  });
}

/** The first buffer of a body read in several pieces (see gather). */
const FIRST_GATHER_BYTES = 1024;

/**
 * `chunk` copied into `into` at `used`, into a new buffer twice as large (at most `capacity`)
 * when it does not fit. A body that arrives in many small reads (a client that sends it a byte
 * at a time) then costs at most twice its bytes: kept as a Buffer per read, it cost ~80 bytes
 * of heap per byte (test/attack27-drip-memory.test.ts: 100 connections dripping 3,000 bytes
 * each grew the edge by 23 MiB). Not pooled: a gathered body may be kept for a long time, and
 * would pin a whole 8 KiB pool slab.
 */
function gather(
  into: Buffer | undefined,
  used: number,
  chunk: ArrayBuffer | Buffer,
  capacity: number,
): Buffer {
  const needed = used + chunk.byteLength;
  let buf = into;
  if (buf === undefined || needed > buf.byteLength) {
    const doubled = Math.max(FIRST_GATHER_BYTES, 2 * (buf?.byteLength ?? 0));
    const next = Buffer.allocUnsafeSlow(Math.max(needed, Math.min(capacity, doubled)));
    if (buf !== undefined) buf.copy(next, 0, 0, used);
    buf = next;
  }
  buf.set(chunk instanceof ArrayBuffer ? new Uint8Array(chunk) : chunk, used);
  return buf;
}

/**
 * The request body as a Node stream with backpressure: when the consumer stops reading,
 * the client socket is paused, so a multi-GB upload holds at most a few chunks in memory.
 * The queue's bound is 16 KiB of bytes, and each uWS read is one queued Buffer: a client that
 * drips its body a byte per read towards a stalled upstream makes the edge hold ~80 bytes of
 * heap a byte, 1.3 MB a connection at most (with the 256 KiB bound before, ~20 MB). A 100 MB
 * upload took as long with either bound (test/integration-streaming.test.ts).
 */
export function requestBodyStream(ex: Exchange): Readable {
  const stream = new Readable({
    highWaterMark: 16 * 1024,
    read() {
      // The upstream takes the queue below its bound (this read's chunk is still in it).
      if (ex.queuedCounted > 0) countQueued(ex, 0);
      resumeBody(ex);
    },
  });
  // A cut body's error is for its reader: one that failed and left (h1-client detaches on an
  // upstream failure) must not leave it unhandled, which would end the edge's process.
  stream.on('error', ignoreError);
  ex.bodyStreamed = true;
  ex.bodyStream = stream;
  onBody(ex, (chunk, isLast) => {
    if (ex.bodyStream !== stream || stream.destroyed) {
      // Its request is over (endStreamedBody), or it was cut (below) while its answer's end
      // went on: the rest is read and dropped, not copied.
      if (isLast) ex.unreadBody = false;
      return;
    }
    const more = stream.push(own(chunk));
    if (isLast) {
      ex.unreadBody = false;
      stream.push(null);
    } else if (more) return;
    else if (ex.blocked) {
      // Read on while the answer waits (see pauseBody), and the upstream does not take it.
      const queued = stream.readableLength;
      countQueued(ex, queued);
      if (queued > BLOCKED_BODY_BYTES || queuedTotal > EDGE_BLOCKED_BODY_BYTES) {
        const cause = queued > BLOCKED_BODY_BYTES ? BODY_OVERRUN : EDGE_BODY_OVERRUN;
        releaseQueued(ex);
        stream.destroy(cause);
        // The upstream exchange ends with this cause (upstream-relay.ts), logged as such.
        abortExchange(ex, cause);
      }
    } else {
      if (ex.queuedCounted > 0) countQueued(ex, stream.readableLength);
      pauseBody(ex);
    }
  });
  return stream;
}

/**
 * Bytes queued in the edge's streamed bodies that were read while their answer waited for the
 * client (see pauseBody), as last counted: each body's queue length at its last arrival past its
 * bound, 0 once the upstream read it below its bound. A queue the upstream drains part of stays
 * counted at its last size until one of those (the count errs high, never low), and every
 * exchange's part is released when it ends (releaseQueued).
 */
let queuedTotal = 0;

/** A no-op listener: of a cut body's error, of a dropped body's data. */
function ignoreError(): void {}

function countQueued(ex: Exchange, queued: number): void {
  if (ex.queuedCounted < 0) return; // released: see releaseQueued
  queuedTotal += queued - ex.queuedCounted;
  ex.queuedCounted = queued;
}

/**
 * Takes an exchange's body out of the edge's count for good: at its end (dispatch.ts finish),
 * or when cut. A body still arriving after its exchange ended (read on to its end after a
 * refusal) is bounded by BLOCKED_BODY_BYTES alone.
 */
export function releaseQueued(ex: Exchange): void {
  if (ex.queuedCounted > 0) queuedTotal -= ex.queuedCounted;
  ex.queuedCounted = -1;
}

/**
 * The request is over (dispatch.ts finish): its body leaves the edge's count, and what is queued
 * or still arrives of it is dropped (as h1-client does after an answer that came before the
 * body's end). Nothing reads it any more: h1-client drains it after such an answer, but detaches
 * from it when the upstream fails mid-body, and uWS reads the body on to its end after the 502
 * (sendJson). Queued before this, one client whose upstream reset after 1 MiB made the edge hold
 * all it sent: +396 MiB for 400 MiB, with either framing, neither bound applying (the answer did
 * not wait, the count was released); test/attack29-upstream-gone-body.test.ts.
 */
export function endStreamedBody(ex: Exchange): void {
  releaseQueued(ex);
  const stream = ex.bodyStream;
  if (stream === undefined) return;
  ex.bodyStream = undefined;
  if (!ex.unreadBody || stream.destroyed) return;
  // What is queued drains to nobody; what arrives from now on is dropped as it comes.
  stream.removeAllListeners('data');
  stream.on('data', ignoreError);
  stream.resume();
}

/** The edge's count of body bytes read while answers wait (see releaseQueued), for tests. */
export function queuedWhileBlocked(): number {
  return queuedTotal;
}

/**
 * What a streamed body's queue may hold while the answer waits for the client's socket to
 * drain, when the socket is read anyway (see pauseBody): past it the connection is cut. Only a
 * client that keeps sending while it does not read the answer, to an upstream that stopped
 * reading the body while its answer waits, gets there (test/integration-lingering-close.test.ts).
 * Measured: a client sending 24 MiB as fast as loopback takes it, beside an 8 MiB answer it read,
 * to an upstream reading nothing until its answer was out, queued up to 20 MiB; with 4 MiB here,
 * a quarter of those exchanges were cut.
 */
export const BLOCKED_BODY_BYTES = 64 * 1024 * 1024;

/**
 * What all the streamed bodies of one edge may hold together while their answers wait: past it,
 * the connection whose body arrives is cut (one that is past its own 16 KiB bound and whose
 * answer waits: a body read at the upstream's pace is never cut by it). BLOCKED_BODY_BYTES alone
 * let N such clients make an edge hold N x 64 MiB (noted by the attack on the lingering close);
 * four of them reach this. A well-behaved exchange queued up to 20 MiB (above), so about a dozen
 * at once fit.
 */
export const EDGE_BLOCKED_BODY_BYTES = 256 * 1024 * 1024;

const BODY_OVERRUN = new GatewayError('BAD_REQUEST', {
  cause: 'the client sent 64 MiB of body while not reading the answer',
});

/** The edge's bound, not this client's: logged (dispatch.ts fail) as the edge being overloaded. */
const EDGE_BODY_OVERRUN = new GatewayError('OVERLOADED', {
  cause: 'the edge holds 256 MiB of request bodies read while their answers wait',
});

/*
 * uwebsockets 3.0.6, measured (a client sending a body without end, the answer's writes refused
 * while it does not read): `pause()` stops reading; a write refused after it makes uWS read again
 * (it polls the socket both ways to learn when it drains); `pause()` while a write waits stops
 * the socket both ways: the drain is never reported, and neither is the client's data; `resume()`
 * while a write waits stops it too. With the upstream reading the body in bursts while its answer
 * outran the client, an answer stalled in 2-5% of exchanges, 4 MB in (the size of the kernel's
 * buffers). So neither is called while a write waits: the socket reads on meanwhile (the body's
 * queue may grow past its bound by what the client sends before its socket drains), and the
 * reader's last wish is applied once uWS reports the drain.
 */

/** The body's reader has enough: stop reading the client's socket (now, or once it drained). */
function pauseBody(ex: Exchange): void {
  if (ex.done) return;
  if (ex.blocked) ex.pauseWanted = true;
  else if (!ex.paused) {
    ex.paused = true;
    ex.res.pause();
  }
}

/** The body's reader wants more: read the client's socket again (now, or once it drained). */
function resumeBody(ex: Exchange): void {
  ex.pauseWanted = false;
  if (!ex.paused || ex.done || ex.blocked) return;
  ex.paused = false;
  ex.res.resume();
}

/** The client's socket drained after a refused write; it has been read meanwhile. */
function unblock(ex: Exchange): void {
  ex.blocked = false;
  const wanted = ex.pauseWanted;
  ex.pauseWanted = false;
  if (ex.done) return;
  if (wanted) {
    // Paused before the wait or not: the refused write made uWS read again.
    ex.paused = true;
    ex.res.pause();
  } else if (ex.paused) {
    ex.paused = false;
    ex.res.resume();
  }
}

// --- Lingering close (RFC 9112 section 9.6). ---------------------------------------------

/*
 * A connection closed while the client is still sending is reset by the kernel (RFC 9293: a
 * close with unread data sends RST), and the RST discards whatever of the answer was not yet
 * sent: the client reads a truncated answer or ECONNRESET. uWS closes right after the answer
 * when the request said `Connection: close` (its own rule: the first Connection value is
 * `close`), and the gateway closes after refusing a body it did not read. Measured (uwebsockets
 * 3.0.6, an 8 MiB answer to a 32 MiB upload, Connection: close): 5 of 5 clients got 3.9-7.7 MB
 * and ECONNRESET; with keep-alive all got it whole. uWS has no half-close (shutdown of the write
 * side only), so the gateway does the staged close RFC 9112 asks for the other way round: the
 * end of the answer (its last write) waits while the rest of the body is read and dropped, and
 * is written once the body ended, the client was silent for LINGER_QUIET_MS, or after
 * LINGER_MAX_MS (nginx's lingering_time); the close then finds nothing unread. A client that
 * stops sending when it sees an answer waits LINGER_QUIET_MS for its end.
 */

/** Silence from the client after which the held end is written (the body stopped coming). */
export const LINGER_QUIET_MS = 1_000;
/** The longest the end of an answer waits for the body (nginx's lingering_time default). */
export const LINGER_MAX_MS = 30_000;

/**
 * Whether the end of this answer must wait for the rest of the request body: the body is still
 * arriving and the connection closes after the answer (`closeNow`: the gateway closes it; a
 * `close` token in the request's Connection header: uWS does). Not with broken framing: where
 * its body ends is unknown.
 */
function mustLinger(ex: Exchange, closeNow: boolean): boolean {
  return ex.unreadBody && !ex.bodyDropped && !ex.framingBroken && (closeNow || asksClose(ex));
}

/**
 * Drops the body of a request refused before anyone read it, noting when it ended: uWS drops
 * body bytes that arrive with no handler set, so without one the end of a body that arrived
 * while the refusal waited for its turn (dispatch.ts failLater) is never seen, and the answer
 * would linger for the client's silence. The body stays unread: the connection still closes
 * after the refusal. No-op when something else reads or holds the body.
 */
export function dropBody(ex: Exchange): void {
  if (!ex.unreadBody || ex.bodyStreamed || ex.held !== undefined || ex.done) return;
  ex.res.onData((_chunk, isLast) => {
    if (isLast) ex.bodyDropped = true;
  });
}

/**
 * The request's Connection header lists `close` (RFC 9110 section 7.6.1; any of its lines), or
 * uWS closes after the answer anyway: uwebsockets 3.0.6 compares only the length of the first
 * Connection value with that of `close` (measured: `Connection: xxxxx` closes, and an 8 MiB
 * answer to an upload not lingered on lost 3-4 MB to the reset). Its length in bytes: a value
 * with chars above 0x7f counts either way.
 */
function asksClose(ex: Exchange): boolean {
  const h = ex.headers;
  let first = true;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'connection') continue;
    const value = h[i + 1]!;
    if (first && (value.length === 5 || Buffer.byteLength(value) === 5)) return true;
    first = false;
    for (const token of value.split(',')) if (token.trim().toLowerCase() === 'close') return true;
  }
  return false;
}

/** Answers whose end is held by a lingering close: a drain waits for them (edge.ts). */
let lingering = 0;

/** How many answers wait for the rest of their request body (see linger). */
export function lingeringAnswers(): number {
  return lingering;
}

/**
 * Holds `finish` (the answer's last write; it runs corked) until the request body ended, the
 * client was silent for LINGER_QUIET_MS, or LINGER_MAX_MS passed; meanwhile the body is read
 * and dropped. The exchange is done for its callers from now on; only this owns `res`. The end
 * after the body's last chunk is written on the next turn: uWS may hand over a request
 * pipelined behind the body, and drops the connection instead while this answer is pending
 * (see dispatch.ts failLater).
 */
function linger(ex: Exchange, finish: () => void): void {
  ex.done = true;
  ex.held = undefined;
  const res = ex.res;
  const started = performance.now();
  let heard = false;
  let over = false;
  lingering++;
  const stop = (): boolean => {
    if (over) return false;
    over = true;
    lingering--;
    clearInterval(timer);
    return true;
  };
  const release = (): void => {
    if (stop() && !ex.aborted) res.cork(finish);
  };
  const timer = setInterval(() => {
    if (!heard || performance.now() - started >= LINGER_MAX_MS) release();
    heard = false;
  }, LINGER_QUIET_MS);
  onClientAbort(ex, stop);
  res.onData((_chunk, isLast) => {
    heard = true;
    if (!isLast) return;
    ex.unreadBody = false;
    setImmediate(release);
  });
  // While a write waits, the socket is read anyway (see pauseBody).
  if (ex.paused && !ex.blocked) {
    ex.paused = false;
    res.resume();
  }
}

/** The held last chunk of a body of `total` bytes, written as the socket drains. */
function endHeldChunk(res: HttpResponse, chunk: Buffer, total: number): void {
  const start = res.getWriteOffset();
  const [ok, done] = res.tryEnd(chunk, total);
  if (ok || done) return;
  res.onWritable((offset) => {
    const [more, over] = res.tryEnd(chunk.subarray(offset - start), total);
    return more || over;
  });
}

// --- WebSockets: the client side of a proxied WebSocket (worker/websocket-proxy.ts). --------

/*
 * uwebsockets 3.0.6 (measured): a WebSocket has no pause/resume, so what a client sends cannot
 * be throttled, only refused (the proxy closes when its upstream falls behind); messages are
 * ArrayBuffers valid during the callback only (copied here); pings are answered by uWS itself
 * and then reported; `end()` without a code sends a close frame without one (the peer reads
 * 1005); `close()` cuts the connection (the peer reads 1006); the close handler runs for every
 * end, the gateway's own included, and the socket is off limits after it.
 */

/** The gateway's side of one proxied WebSocket: uWS's events, as the proxy handles them. */
export interface WebSocketPeer {
  /** The handshake answer was sent: `socket` may be written from now on. */
  opened(socket: ClientSocket): void;
  /** A whole message from the client (a copy the peer may keep). */
  message(data: Buffer, binary: boolean): void;
  /** A ping from the client (uWS already answered it). */
  pinged(data: Buffer): void;
  /** uWS's buffer towards the client shrank: see {@link clientBuffered}. */
  drained(): void;
  /** The connection ended (either side, any reason); `socket` is off limits from now on. */
  closed(code: number, reason: Buffer): void;
}

/**
 * What uWS keeps with a connection: it copies the own properties of the object given to
 * `upgrade` (measured: a class instance loses its methods), so the peer is held by reference.
 */
interface PeerHolder {
  readonly peer: WebSocketPeer;
}

/** A client WebSocket connection, valid from `opened` to `closed`. */
export type ClientSocket = uws.WebSocket<PeerHolder>;

function webSocketBehavior(options: WebSocketOptions): uws.WebSocketBehavior<PeerHolder> {
  return {
    upgrade: options.upgrade,
    maxPayloadLength: options.maxMessageBytes,
    maxBackpressure: options.maxBufferedBytes,
    // A send beyond maxBackpressure is dropped otherwise: a proxy must not lose messages.
    closeOnBackpressureLimit: 1,
    // Never negotiated with the client (the upstream side does not offer it either).
    compression: uws.DISABLED,
    // Seconds without traffic before uWS pings the client; an unanswered ping closes it.
    idleTimeout: 120,
    sendPingsAutomatically: true,
    open: (ws) => ws.getUserData().peer.opened(ws),
    message: (ws, data, binary) => ws.getUserData().peer.message(copyOf(data), binary),
    ping: (ws, data) => ws.getUserData().peer.pinged(copyOf(data)),
    drain: (ws) => ws.getUserData().peer.drained(),
    close: (ws, code, reason) => ws.getUserData().peer.closed(code, copyOf(reason)),
  };
}

/**
 * Answers the handshake with 101 and hands the connection to `peer` (its `opened` follows).
 * `protocol` is the subprotocol the upstream chose ('' for none); no extension is accepted.
 * The exchange is done afterwards.
 */
export function acceptUpgrade(
  ex: Exchange,
  peer: WebSocketPeer,
  key: string,
  protocol: string,
  context: UpgradeContext,
): void {
  if (ex.done) return;
  ex.done = true;
  ex.status = 101;
  const res = ex.res;
  res.cork(() => {
    res.writeStatus('101 Switching Protocols');
    writeDecoration(ex);
    res.upgrade<PeerHolder>({ peer }, key, protocol, '', context);
  });
}

/**
 * Sends a message to the client: 'sent', 'buffered' (sent into uWS's buffer, wait for
 * `drained`), or 'dropped' (over the buffer limit: uWS closes the connection).
 */
export function sendToClient(
  socket: ClientSocket,
  data: Uint8Array,
  binary: boolean,
): 'sent' | 'buffered' | 'dropped' {
  let status = 0;
  socket.cork(() => {
    status = socket.send(data, binary);
  });
  return status === 1 ? 'sent' : status === 0 ? 'buffered' : 'dropped';
}

/** Bytes uWS holds for the client, not yet written to its socket. */
export function clientBuffered(socket: ClientSocket): number {
  return socket.getBufferedAmount();
}

/** Sends a ping to the client (the upstream's, relayed). */
export function pingClient(socket: ClientSocket, data: Uint8Array): void {
  socket.cork(() => socket.ping(data));
}

/**
 * Closes with a close frame: `code` undefined sends one without a status code (RFC 6455
 * section 7.1.5: the peer reads 1005). The `closed` event of the peer runs at once.
 */
export function endClient(socket: ClientSocket, code?: number, reason?: Uint8Array): void {
  if (code === undefined) socket.end();
  else socket.end(code, reason ?? '');
}

/** Cuts the connection without a close frame (the client reads 1006). */
export function cutClient(socket: ClientSocket): void {
  socket.close();
}

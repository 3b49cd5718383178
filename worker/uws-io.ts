/*
 * Every uWebSockets.js quirk lives in this file:
 * - request data (headers, url, query) is only readable synchronously inside the handler;
 * - `onAborted` must be registered before returning from the handler, and nothing may touch
 *   `res` after it fired or after the response ended (uWS throws on a discarded response);
 * - writes outside the synchronous part of the handler must happen inside `res.cork`;
 * - `onData` chunks are views of memory uWS reuses: they are copied before being kept;
 * - `resume()` on a socket that was not paused stalls it, so pause state is tracked.
 */

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { Readable } from 'node:stream';
import { ERRORS, type ErrorCode, errorBody, GatewayError, statusLine } from '../shared/errors.js';

export const SERVER_HEADER = 'ProxyAuth';

/** What the gateway keeps of a request: copied out of uWS before the first await. */
export interface Exchange {
  readonly res: HttpResponse;
  readonly method: string;
  readonly url: string;
  readonly query: string;
  /** Lower-case header names, in arrival order. */
  readonly headers: string[];
  /** Size of the header lines (names, values, separators), for `max_header_bytes`. */
  readonly headBytes: number;
  /** The request announces a body (Content-Length above 0, or Transfer-Encoding). */
  readonly hasBody: boolean;
  readonly ip: string;
  readonly startedAt: number;
  /** Set once the client went away or the response ended: `res` must not be touched then. */
  done: boolean;
  aborted: boolean;
  /**
   * The request body is not (yet) read to its end. uWS does not skip an unread body, so an
   * answer given before the end must close the connection or the next request never parses.
   */
  unreadBody: boolean;
  /** uWS's resume() on a socket that is not paused stalls it (uwebsockets 3.0.6): track it. */
  paused: boolean;
  /** The edge is draining: the answer carries `connection: close`. */
  closeConnection: boolean;
  status: number;
  onAbort: (() => void) | undefined;
}

const textDecoder = new TextDecoder();

const MAPPED_V4_PREFIX = '0000:0000:0000:0000:0000:ffff:';

/**
 * uWS reports an IPv4 client of a dual-stack (`::`) listener in full IPv6 form
 * (`0000:...:ffff:7f00:0001`): turn that into `127.0.0.1` for logs and X-Forwarded-For.
 */
export function clientIp(text: string): string {
  if (text.length !== 39 || !text.startsWith(MAPPED_V4_PREFIX)) return text;
  const hi = Number.parseInt(text.slice(30, 34), 16);
  const lo = Number.parseInt(text.slice(35, 39), 16);
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

export function openExchange(res: HttpResponse, req: HttpRequest): Exchange {
  const headers: string[] = [];
  let headBytes = 0;
  let hasBody = false;
  req.forEach((key, value) => {
    headers.push(key, value);
    headBytes += key.length + value.length + 4;
    if (key === 'transfer-encoding' || (key === 'content-length' && value !== '0')) hasBody = true;
  });
  const exchange: Exchange = {
    res,
    method: req.getCaseSensitiveMethod().toUpperCase(),
    url: req.getUrl(),
    query: req.getQuery() ?? '',
    headers,
    headBytes,
    hasBody,
    ip: clientIp(textDecoder.decode(res.getRemoteAddressAsText())),
    startedAt: performance.now(),
    done: false,
    aborted: false,
    unreadBody: hasBody,
    paused: false,
    closeConnection: false,
    status: 0,
    onAbort: undefined,
  };
  res.onAborted(() => {
    exchange.done = true;
    exchange.aborted = true;
    exchange.onAbort?.();
  });
  return exchange;
}

/** First value of a header (names are lower case). */
export function header(ex: Exchange, name: string): string | undefined {
  const h = ex.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/**
 * A JSON answer written by the gateway itself. The connection is closed after it when the
 * request body was left unread or the edge is draining.
 */
export function sendJson(
  ex: Exchange,
  status: number,
  body: string,
  extra?: readonly (readonly [string, string])[],
): void {
  if (ex.done) return;
  ex.status = status;
  ex.res.cork(() => {
    ex.res.writeStatus(statusLine(status)).writeHeader('server', SERVER_HEADER);
    ex.res.writeHeader('content-type', 'application/json');
    ex.res.writeHeader('cache-control', 'no-store');
    if (extra) for (const [k, v] of extra) ex.res.writeHeader(k, v);
    resumeBody(ex);
    ex.done = true;
    ex.res.end(body, ex.unreadBody || ex.closeConnection);
  });
}

/** An error answer: `{code, error, message}` with the catalog's status. */
export function sendError(
  ex: Exchange,
  code: ErrorCode,
  extra?: readonly (readonly [string, string])[],
  detail?: string,
): void {
  sendJson(ex, ERRORS[code].status, errorBody(code, detail), extra);
}

/** Drops the connection (used when an upstream fails after the response head was sent). */
export function abortExchange(ex: Exchange): void {
  if (ex.done) return;
  ex.done = true;
  ex.res.close();
}

/*
 * Past its limit a body is discarded, not buffered, up to this many bytes: most clients only
 * read the 413 once they have sent everything. Beyond it the connection is cut after the 413.
 */
const DISCARD_LIMIT = 1024 * 1024;

/**
 * Reads a whole body of at most `limit` bytes (bodies the gateway itself parses, like /auth).
 * Rejects with BODY_TOO_LARGE when the limit is crossed; memory stays bounded by `limit`.
 */
export function readBody(ex: Exchange, limit: number): Promise<Buffer> {
  const declared = Number(header(ex, 'content-length') ?? '0');
  if (declared > limit) return Promise.reject(new GatewayError('BODY_TOO_LARGE'));
  if (!ex.hasBody) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    ex.onAbort = () => reject(new GatewayError('BAD_REQUEST', { cause: 'client aborted' }));
    ex.res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      if (isLast) ex.unreadBody = false;
      if (size <= limit) {
        chunks.push(Buffer.from(chunk.slice(0)));
        if (isLast) resolve(Buffer.concat(chunks));
        return;
      }
      chunks = [];
      if (isLast || size > limit + DISCARD_LIMIT) reject(new GatewayError('BODY_TOO_LARGE'));
    });
  });
}

/**
 * The request body as a Node stream with backpressure: when the consumer stops reading,
 * the client socket is paused, so a multi-GB upload holds at most a few chunks in memory.
 */
export function requestBodyStream(ex: Exchange): Readable {
  const stream = new Readable({
    highWaterMark: 256 * 1024,
    read() {
      resumeBody(ex);
    },
  });
  ex.res.onData((chunk, isLast) => {
    const more = stream.push(Buffer.from(chunk.slice(0)));
    if (isLast) {
      ex.unreadBody = false;
      stream.push(null);
    } else if (!more && !ex.done && !ex.paused) {
      ex.paused = true;
      ex.res.pause();
    }
  });
  return stream;
}

function resumeBody(ex: Exchange): void {
  if (!ex.paused || ex.done) return;
  ex.paused = false;
  ex.res.resume();
}

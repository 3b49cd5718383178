/*
 * Checks every request gets before it is routed, gateway endpoints included: the head's size,
 * the method, and the body's framing. uWS is lenient about framing, and a gateway that reads a
 * body's length differently from its backend lets one request smuggle another past the checks
 * (RFC 9112 section 11.2), so the edge enforces RFC 9112 section 6 itself, before anything is
 * forwarded; a framing error closes the connection, since the bytes after it cannot be trusted.
 */

import { GatewayError, refusal } from '../shared/errors.js';
import type { RequestContext } from './request-context.js';
import type { Exchange } from './uws-io.js';

/** Methods that need no further check. */
const COMMON_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** RFC 9110 section 9.1 token, upper-cased by the exchange. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Z-]+$/;
/** The longest registered method (IANA: UPDATEREDIRECTREF) has 17 characters. */
const MAX_METHOD_LENGTH = 32;
/** RFC 9112 section 6.3: Content-Length = 1*DIGIT; more than 15 digits is beyond any body we pass. */
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
/**
 * RFC 9110 section 7.2 / RFC 3986 section 3.2.2: host [":" port], host an IP literal in brackets,
 * or a reg-name (unreserved, sub-delims, pct-encoded). The value goes upstream as
 * X-Forwarded-Host, which backends use to build absolute URLs: anything else is refused.
 */
export const HOST =
  /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._~!$&'()*+,;=%-]{1,253})(?::[0-9]{1,5})?$/;

/** Throws the refusal for a request no route may see. */
export function checkRequest(ctx: RequestContext): void {
  const ex = ctx.ex;
  // Framing first: its refusal must be the one given (answered later, connection closed), or a
  // request smuggled behind this one could be served after a synchronous refusal.
  if (
    ex.transferEncoding !== undefined ||
    ex.contentLengthLines > 1 ||
    (ex.contentLength !== undefined && !CONTENT_LENGTH.test(ex.contentLength))
  ) {
    checkFraming(ex);
  }
  // uWS's own limit sits above max_header_bytes (supervisor/fork-edge.ts), and a head read at
  // once is bounded only by the read: the configured limit is enforced here.
  if (ex.headBytes + ex.url.length + ex.query.length > ctx.rt.config.max_header_bytes) {
    throw refusal('HEADERS_TOO_LARGE');
  }
  if (!COMMON_METHODS.has(ex.method)) checkMethod(ex.method);
  // uWS stalls a request without Host itself; several, or a malformed one, are refused here.
  if (ex.hostLines !== 1 || !isValidHost(ex.host!)) {
    throw new GatewayError('BAD_REQUEST', { detail: 'exactly one valid Host header is required' });
  }
}

/**
 * The last Host value HOST accepted (one string: the memory it holds is bounded). Undefined
 * until one is: a starting value that a client can send ('' was) would pass unchecked on an
 * edge that has not yet accepted a Host (CI, 2026-12-01: an empty Host answered 200).
 */
let lastValidHost: string | undefined;

/**
 * HOST.test, remembering the last value it accepted: clients of one gateway send the same Host
 * on almost every request, and a comparison costs a fraction of the test (callgrind: ~480
 * instructions per RegExp#test call, three per request in `handle` before this).
 */
function isValidHost(host: string): boolean {
  if (host === lastValidHost) return true;
  if (!HOST.test(host)) return false;
  lastValidHost = host;
  return true;
}

/**
 * CONNECT would make the gateway a TCP tunnel; TRACE would echo to the client the headers the
 * gateway adds for the backend (identity, forwarding). Methods are tokens of bounded length.
 */
export function checkMethod(method: string): void {
  if (method === 'CONNECT' || method === 'TRACE') throw refusal('METHOD_NOT_SUPPORTED');
  if (method.length > MAX_METHOD_LENGTH || !METHOD_TOKEN.test(method)) {
    throw new GatewayError('METHOD_NOT_SUPPORTED', { detail: 'not a valid method name' });
  }
}

/**
 * RFC 9112 section 6: one Content-Length of digits, or Transfer-Encoding ending in chunked,
 * never both. `chunked` is the only transfer coding the gateway decodes, so any other coding in
 * the list is 501 (section 6.1); a list whose last coding is not chunked has no knowable length
 * (section 6.3) and is 400.
 */
function checkFraming(ex: Exchange): void {
  if (ex.transferEncoding === undefined) {
    throw new GatewayError('BAD_FRAMING', {
      detail:
        ex.contentLengthLines > 1
          ? 'more than one Content-Length header'
          : 'Content-Length must be a decimal number',
    });
  }
  if (ex.contentLength !== undefined) {
    throw new GatewayError('BAD_FRAMING', {
      detail: 'Content-Length and Transfer-Encoding together',
    });
  }
  const codings = ex.transferEncoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '');
  if (codings.at(-1) !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) {
    throw new GatewayError('BAD_FRAMING', {
      detail: 'Transfer-Encoding must end with chunked, once',
    });
  }
  if (codings.length > 1) throw refusal('TRANSFER_CODING_NOT_SUPPORTED');
  // Exactly `chunked`, spelled as uWS decodes it: anything else reaching here is refused below.
  if (ex.transferEncoding !== 'chunked') {
    throw new GatewayError('BAD_FRAMING', { detail: 'Transfer-Encoding must be "chunked"' });
  }
}

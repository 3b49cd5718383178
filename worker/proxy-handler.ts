import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../shared/errors.js';
import type { RequestContext } from './request-context.js';
import { upstreamRequestHeaders } from './upstream-headers.js';
import { firstAttempt, UpstreamRelay } from './upstream-relay.js';
import { upstreamPathFor } from './upstream-url.js';
import { type Exchange, readBody, requestBodyStream } from './uws-io.js';

/** Methods whose request content has no defined meaning (RFC 9110 sections 9.3.1-9.3.5). */
const BODY_WITHOUT_MEANING = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/** A body a step read whole (filters), sent as is; an empty one as none. */
function bufferedBody(body: Buffer): Buffer | null {
  return body.byteLength > 0 ? body : null;
}

/**
 * Request bodies declared (Content-Length, no Transfer-Encoding) at most this many bytes long
 * are read whole before a backend is picked and a connection taken (request buffering, as
 * nginx's `client_body_buffer_size` and HAProxy's `http-buffer-request`): the head and the
 * body then leave in one write, and a client that uploads slowly or gives up holds no upstream
 * connection and the backend sees nothing of an abandoned request. Retries are as for any
 * request (upstream-relay.ts): a refused connection fails over, a written one is never resent.
 * Longer and chunked bodies stream with backpressure. 16 KiB is nginx's in-memory default:
 * what a connection can make the edge hold is what its client sent, at most this (uWS has no
 * connection limit). Measured on a 1 KiB POST (README "Eighth round"): the Readable per
 * request and the separate body write cost more than the copy.
 */
export const BUFFERED_BODY_BYTES = 16 * 1024;

/** The body's declared length when it is read whole before forwarding, else -1. */
function bufferableLength(ex: Exchange): number {
  if (!ex.hasBody || ex.transferEncoding !== undefined || ex.contentLengthLines !== 1) return -1;
  const declared = Number(ex.contentLength);
  return Number.isSafeInteger(declared) && declared > 0 && declared <= BUFFERED_BODY_BYTES
    ? declared
    : -1;
}

/**
 * The request headers `ctx` sends upstream (flat, as undici takes them): the client's, minus
 * what a client may not tell a backend, plus the gateway's identity and forwarding headers.
 * `proxyauth explain` shows the same list.
 */
export function upstreamHeadersOf(ctx: RequestContext): string[] {
  const rt = ctx.rt;
  return upstreamRequestHeaders(ctx.ex, {
    forwardedFor: ctx.forwardedFor,
    proto: rt.proto,
    identity: ctx.user?.identity,
    dropAllAuthorization: ctx.dropAllAuthorization,
    withheldAuthorization: ctx.withheldAuthorization,
    stripSessionCookie: rt.config.session_cookie,
    drop: rt.dropHeaders,
  });
}

/**
 * The route's handler: forwards the request upstream (to the backend the route's balancer
 * picks, if it has one) and relays the answer. A body of at most {@link BUFFERED_BODY_BYTES}
 * is read whole first: a client that leaves before its end rejects the promise (the access
 * log says 499) and nothing is sent upstream. The promise settles when the response is
 * complete, or rejects with the upstream failure (502/504), or 503 NO_HEALTHY_UPSTREAM with
 * Retry-After when every backend is known down.
 */
export function forward(ctx: RequestContext): Promise<void> {
  const ex = ctx.ex;
  if (ctx.body !== undefined) return send(ctx, bufferedBody(ctx.body));
  if (!ex.hasBody) return send(ctx, null);
  const declared = bufferableLength(ex);
  if (declared === -1) return send(ctx, requestBodyStream(ex));
  return readBody(ex, declared).then((body) => send(ctx, body));
}

function send(ctx: RequestContext, body: Dispatcher.DispatchOptions['body']): Promise<void> {
  const ex = ctx.ex;
  const route = ctx.route!;
  const balancer = route.balancer;
  const backend = balancer?.pick();
  if (balancer !== undefined && backend === undefined) {
    return Promise.reject(
      new GatewayError('NO_HEALTHY_UPSTREAM', { after: balancer.retryAfterSeconds() }),
    );
  }
  const path = upstreamPathFor(ctx, backend ?? route);
  const options: Dispatcher.DispatchOptions = {
    path,
    method: ex.method as Dispatcher.HttpMethod,
    headers: upstreamHeadersOf(ctx),
    body,
    // A body where the method defines none (RFC 9110 section 9.3): a backend that ignores it
    // would read it as the next request on this connection, answering other clients' requests
    // out of order. The connection is used once (`connection: close`).
    reset: ex.hasBody && BODY_WITHOUT_MEANING.has(ex.method),
  };
  const pool = backend?.pool ?? route.pool;
  return new Promise<void>((resolve, reject) => {
    if (ctx.services.metrics !== undefined) ctx.upstreamAt = performance.now();
    pool.dispatch(options, new UpstreamRelay(ctx, options, resolve, reject, firstAttempt(backend)));
  });
}

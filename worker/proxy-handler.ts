import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RequestContext } from './request-context.js';
import { upstreamRequestHeaders } from './upstream-headers.js';
import { type RetryDecision, UpstreamRelay } from './upstream-relay.js';
import { buildUpstreamPath } from './upstream-url.js';
import { requestBodyStream } from './uws-io.js';

/**
 * Methods whose request may be sent twice (RFC 9110 section 9.2.2), among those a route can
 * forward (TRACE and CONNECT are refused before routing).
 */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/*
 * Failures that mean the upstream connection was dead before it answered anything: a pooled
 * keep-alive connection that the upstream closed while idle (a race no client can avoid), or a
 * reset. A connection refused, a DNS failure or a timeout is not retried: a fresh connection
 * would meet the same fate. Each request is retried at most once (the retry has no retry).
 */
const STALE_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/**
 * The route's handler: forwards the request upstream and relays the answer. The promise settles
 * when the response is complete (or rejects with the upstream failure, mapped to 502/504).
 */
export function forward(ctx: RequestContext): Promise<void> {
  const { ex, rt } = ctx;
  const route = ctx.route!;
  const path = buildUpstreamPath({
    targetPath: route.targetPath,
    targetQuery: route.targetQuery,
    rest: ctx.rest,
    canonicalPath: ctx.path,
    query: ex.query,
    securePath: route.config.secure_path,
    preservePrefix: route.config.preserve_prefix,
  });
  const options: Dispatcher.DispatchOptions = {
    path,
    method: ex.method as Dispatcher.HttpMethod,
    headers: upstreamRequestHeaders(ex, {
      ip: ex.ip,
      proto: rt.proto,
      identity: ctx.user?.identity,
      dropAllAuthorization: ctx.dropAllAuthorization,
      withheldAuthorization: ctx.withheldAuthorization,
      drop: rt.dropHeaders,
    }),
    body: ex.hasBody ? requestBodyStream(ex) : null,
  };
  return new Promise<void>((resolve, reject) => {
    const transform = route.transform;
    const retry: RetryDecision = (err, written) => {
      if (!STALE_CONNECTION.has((err as { code?: string }).code ?? '')) return false;
      if (!canResend(ex.method, options.body as Readable | null, written)) return false;
      ctx.services.pools
        .fresh(route.origin, route.poolOptions)
        .dispatch(options, new UpstreamRelay(ex, resolve, reject, transform?.(), undefined));
      return true;
    };
    route.pool.dispatch(options, new UpstreamRelay(ex, resolve, reject, transform?.(), retry));
  });
}

/**
 * A request that failed before any answer may be sent once more, on a new connection: an
 * idempotent one without a body (RFC 9110 section 9.2.2), or any one that never left (undici
 * had not started writing it and its body was not read).
 */
function canResend(method: string, body: Readable | null, written: boolean): boolean {
  if (body === null && IDEMPOTENT.has(method)) return true;
  return !written && (body === null || (!body.destroyed && !body.readableDidRead));
}

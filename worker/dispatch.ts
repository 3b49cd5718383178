import { performance } from 'node:perf_hooks';
import { loggedPath } from '../shared/access-log.js';
import { errorBody, GatewayError, refusal } from '../shared/errors.js';
import { canonicalizePath } from './canonical-path.js';
import { resolveClientAddress } from './client-address.js';
import { AMBIGUOUS_ORIGIN, answerPreflight, readCors } from './cors.js';
import type { EdgeServices } from './edge-services.js';
import { ADMIN_PREFIX, handleEndpoint, isAdminPath } from './endpoints.js';
import { browserLoginLocation } from './login-redirect.js';
import { checkRequest } from './request-checks.js';
import { RequestContext } from './request-context.js';
import { badPath, matchRoute, runRoute } from './route-dispatch.js';
import type { Runtime } from './runtime.js';
import {
  dropBody,
  type Exchange,
  endStreamedBody,
  openExchange,
  type RequestHandler,
  sendJson,
  type UpgradeContext,
  type UpgradeHandler,
} from './uws-io.js';

/** What the dispatcher shares with the edge's lifecycle (edge.ts). */
export interface EdgeState {
  /** The current config generation; a reload swaps it, requests keep the one they started with. */
  runtime: Runtime;
  readonly services: EdgeServices;
  inflight: number;
  /** Date.now() of the last request accepted while draining, for the quiet period. */
  lastRequestAt: number;
  /** Set during drain: every answer closes its connection. */
  draining: boolean;
  onIdle: (() => void) | undefined;
}

/** The uWS handler for every request: request checks, gateway endpoints, then the route table. */
export function createDispatcher(state: EdgeState): RequestHandler {
  return (res, req) => serve(state, openExchange(res, req), undefined);
}

/**
 * The uWS handler for every WebSocket handshake: the same checks, endpoints, route matching and
 * route steps as any request (a refusal is the usual JSON answer over HTTP), then the route's
 * `upgrade` handler instead of its `handler` (worker/websocket-proxy.ts).
 */
export function createUpgradeDispatcher(state: EdgeState): UpgradeHandler {
  return (res, req, context) => {
    const ex = openExchange(res, req);
    // What follows a handshake's head is WebSocket frames, never a body (uWS hands it to no
    // onData): one declared there breaks the framing, and its refusal closes at once.
    if (ex.hasBody) ex.framingBroken = true;
    serve(state, ex, context);
  };
}

function serve(state: EdgeState, ex: Exchange, upgrade: UpgradeContext | undefined): void {
  state.inflight++;
  if (state.draining) {
    ex.closeConnection = true;
    state.lastRequestAt = Date.now();
  }
  const ctx = openContext(state.runtime, state.services, ex, upgrade);
  // Refusals (401, 403, 404...) are thrown synchronously and answered here: measured, a
  // rejected promise per refused request cost more than the rest of the refusal path.
  let work: Promise<void> | undefined;
  try {
    work = handle(ctx);
  } catch (err) {
    if (answerLater(ctx, err)) {
      dropBody(ctx.ex);
      work = failLater(ctx, err as GatewayError);
    } else fail(ctx, err);
  }
  if (work === undefined) finish(ctx, state);
  else
    work.then(
      () => finish(ctx, state),
      (err: unknown) => {
        fail(ctx, err);
        finish(ctx, state);
      },
    );
}

/** A request's context on `rt`, with its client address resolved (`trusted_proxies`). */
export function openContext(
  rt: Runtime,
  services: EdgeServices,
  ex: Exchange,
  upgrade: UpgradeContext | undefined,
): RequestContext {
  const ctx = new RequestContext(ex, rt, services);
  ctx.upgrade = upgrade;
  // With trusted_proxies empty nothing is computed: the client is the peer.
  const trusted = rt.trustedProxies;
  if (trusted !== undefined) {
    const address = resolveClientAddress(ex.ip, ex.headers, trusted);
    ctx.clientIp = address.ip;
    ctx.forwardedFor = address.forwardedFor;
  }
  return ctx;
}

/**
 * Runs one request through the edge's own flow (`handle`, then `fail` for a refusal) without
 * the edge's bookkeeping (in-flight count, access log, metrics): `proxyauth explain`
 * (worker/explain.ts) drives it over a recording exchange, so that its verdict is the edge's.
 * A refusal that closes the connection is answered at once here, not on the next turn (the
 * delay only matters to a real socket). Resolves once the request was answered, or handed to
 * the route's handler and that settled.
 */
export async function runRequest(ctx: RequestContext): Promise<void> {
  let work: Promise<void> | undefined;
  try {
    work = handle(ctx);
  } catch (err) {
    fail(ctx, err);
    return;
  }
  if (work !== undefined) await work.then(undefined, (err: unknown) => fail(ctx, err));
}

function handle(ctx: RequestContext): Promise<void> | undefined {
  // CORS first, so that every answer carries its headers, the checks' refusals included.
  const cors = ctx.rt.cors === undefined ? undefined : readCors(ctx.ex, ctx.rt.cors);
  checkRequest(ctx);
  if (cors === 'ambiguous') throw AMBIGUOUS_ORIGIN;
  const url = ctx.ex.url;
  const path = canonicalizePath(url);
  if (path === null) throw badPath(url);
  ctx.path = path;
  // `/auth/` and `/auth/.` are `/auth` too: a login sent there must not reach a backend.
  const bare =
    path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f ? path.slice(0, -1) : path;
  // A preflight is the gateway's to answer, on any path: never a route's or an endpoint's.
  if (cors === 'preflight') return answerPreflight(ctx, path, bare);
  const endpoint = ctx.rt.endpoints.get(bare);
  if (endpoint !== undefined) return handleEndpoint(ctx, endpoint);
  if (isAdminPath(bare)) {
    ctx.logRoute = ADMIN_PREFIX;
    throw refusal('NOT_FOUND');
  }
  const route = matchRoute(ctx, path, bare);
  // A WebSocket handshake ends in the route's upgrade handler (proxied or refused).
  return runRoute(ctx, route, ctx.upgrade === undefined ? route.handler : route.upgrade);
}

/**
 * Refusals after which the connection must close: broken framing, or a body nobody read (the
 * answer promises `connection: close`).
 */
function answerLater(ctx: RequestContext, err: unknown): boolean {
  if (!(err instanceof GatewayError)) return false;
  return err.close || (ctx.ex.unreadBody && !ctx.ex.bodyStreamed);
}

/*
 * A refusal that closes the connection is answered on the next turn of the event loop, not
 * at once. Measured with uwebsockets 3.0.6: a request already buffered behind one answered
 * synchronously is handed to the handler even when that answer closes the connection (and the
 * close is then lost), so a smuggled request would be served; behind a request still unanswered
 * when the handler returns, uWS drops the connection itself and never hands it over.
 */
function failLater(ctx: RequestContext, err: GatewayError): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      fail(ctx, err);
      resolve();
    }),
  );
}

/** The one answer path of every refusal and failure: the catalog's status, headers and body. */
function fail(ctx: RequestContext, err: unknown): void {
  const ex = ctx.ex;
  const gateway = err instanceof GatewayError ? err : new GatewayError('INTERNAL', { cause: err });
  // A backend known down is logged when its state changes (balancer.ts), not per request; a
  // node not ready is the supervisor's to log, not each probe's.
  if (
    gateway.code === 'INTERNAL' ||
    (gateway.status >= 502 &&
      gateway.code !== 'NO_HEALTHY_UPSTREAM' &&
      gateway.code !== 'NOT_READY')
  ) {
    const cause = gateway.cause as { code?: string; message?: string } | undefined;
    ctx.services.log.warn('request failed', {
      code: gateway.code,
      cause: cause?.code ?? cause?.message ?? String(cause),
      path: loggedPath(ex.url),
    });
  }
  if (gateway.close) ex.framingBroken = true;
  // A browser without a valid session is sent to log in, and brought back after.
  const login = browserLoginLocation(ctx, gateway.status);
  if (login !== undefined) {
    sendJson(ex, 302, errorBody(gateway.code, gateway.detail), [['location', login]]);
    ex.status = 302;
    ctx.code = gateway.code;
    return;
  }
  sendJson(
    ex,
    gateway.status,
    errorBody(gateway.code, gateway.detail, gateway.after),
    gateway.headers,
  );
  ex.status = gateway.status;
  ctx.code = gateway.code;
}

const MAX_LOGGED_METHOD = 32;

function finish(ctx: RequestContext, state: EdgeState): void {
  const ex = ctx.ex;
  const now = performance.now();
  state.inflight--;
  // A streamed body may still be counted as read while its answer waited, and may still be
  // arriving with nobody to read it (uws-io.ts).
  if (ex.bodyStreamed) endStreamedBody(ex);
  state.services.accessLog.write({
    ip: ctx.clientIp,
    method:
      ex.method.length > MAX_LOGGED_METHOD ? ex.method.slice(0, MAX_LOGGED_METHOD) : ex.method,
    // Whole lines must fit in one atomic write (PIPE_BUF): long paths are cut in the log.
    path: loggedPath(ex.url),
    status: ex.aborted ? 499 : ex.status,
    ms: Math.round((now - ex.startedAt) * 100) / 100,
    user: ctx.logUser,
    route: ctx.logRoute,
    code: ctx.code,
  });
  const metrics = state.services.metrics;
  if (metrics !== undefined) metrics.record(ctx, now);
  if (state.inflight === 0) state.onIdle?.();
}

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { CryptoPool } from '../crypto-pool/pool.js';
import type { AccessLog } from '../shared/access-log.js';
import { type ErrorCode, GatewayError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { handleLogin } from './auth-handler.js';
import { canonicalizePath } from './canonical-path.js';
import { handleProxy, type ProxyOutcome } from './proxy-handler.js';
import type { Runtime } from './runtime.js';
import { type Exchange, openExchange, sendError } from './uws-io.js';

export interface EdgeState {
  runtime: Runtime;
  readonly crypto: CryptoPool;
  readonly accessLog: AccessLog;
  readonly log: Logger;
  inflight: number;
  /** Date.now() of the last request accepted while draining, for the quiet period. */
  lastRequestAt: number;
  /** Set during drain: every answer closes its connection. */
  draining: boolean;
  onIdle: (() => void) | undefined;
}

/** The uWS handler for every request: gateway routes first, then the route table. */
export function createDispatcher(state: EdgeState): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const ex = openExchange(res, req);
    state.inflight++;
    if (state.draining) {
      ex.closeConnection = true;
      state.lastRequestAt = Date.now();
    }
    const rt = state.runtime;
    const outcome: ProxyOutcome = { user: undefined, route: '', code: undefined };
    // Refusals (401, 403, 404...) are thrown synchronously and answered here: measured, a
    // rejected promise per refused request cost more than the rest of the refusal path.
    let work: Promise<unknown> | undefined;
    try {
      work = route(ex, rt, state, outcome);
    } catch (err) {
      fail(ex, err, state, outcome);
    }
    if (work === undefined) finish(ex, state, outcome);
    else
      work.then(
        () => finish(ex, state, outcome),
        (err: unknown) => {
          fail(ex, err, state, outcome);
          finish(ex, state, outcome);
        },
      );
  };
}

function route(
  ex: Exchange,
  rt: Runtime,
  state: EdgeState,
  outcome: ProxyOutcome,
): Promise<unknown> | undefined {
  // uWS has its own fixed ceiling (tens of KiB, and UWS_HTTP_MAX_HEADERS_SIZE does not lower
  // it in this build): the configured limit is enforced here.
  if (ex.headBytes + ex.url.length + ex.query.length > rt.config.max_header_bytes) {
    throw new GatewayError('HEADERS_TOO_LARGE');
  }
  const canonical = canonicalizePath(ex.url);
  if (canonical === null) throw new GatewayError('BAD_PATH');
  if (canonical === '/auth' && ex.method === 'POST') {
    outcome.route = '/auth';
    return handleLogin(ex, rt, state.crypto).then((user) => {
      outcome.user = user;
    });
  }
  const match = rt.routes.match(canonical);
  if (match === null) throw new GatewayError('NO_ROUTE');
  outcome.route = match.route.prefix;
  return handleProxy(ex, rt, match.route, match.rest, canonical, outcome);
}

/** RFC 6750 3: a 401 names the scheme; an invalid token says so. 503 tells when to retry. */
const EXTRA_HEADERS: Partial<Record<ErrorCode, readonly (readonly [string, string])[]>> = {
  TOKEN_MISSING: [['www-authenticate', 'Bearer realm="ProxyAuth"']],
  TOKEN_INVALID: [['www-authenticate', 'Bearer realm="ProxyAuth", error="invalid_token"']],
  OVERLOADED: [['retry-after', '1']],
};

function fail(ex: Exchange, err: unknown, state: EdgeState, outcome: ProxyOutcome): void {
  const gateway = err instanceof GatewayError ? err : new GatewayError('INTERNAL', { cause: err });
  if (gateway.code === 'INTERNAL' || gateway.status >= 502) {
    const cause = gateway.cause as { code?: string; message?: string } | undefined;
    state.log.warn('request failed', {
      code: gateway.code,
      cause: cause?.code ?? cause?.message ?? String(cause),
      path: ex.url,
    });
  }
  const extra = EXTRA_HEADERS[gateway.code];
  sendError(ex, gateway.code, extra, gateway.detail);
  ex.status = gateway.status;
  outcome.code = gateway.code;
}

const MAX_LOGGED_PATH = 1024;

function finish(ex: Exchange, state: EdgeState, outcome: ProxyOutcome): void {
  state.inflight--;
  state.accessLog.write({
    ip: ex.ip,
    method: ex.method,
    // Whole lines must fit in one atomic write (PIPE_BUF): long paths are cut in the log.
    path: ex.url.length > MAX_LOGGED_PATH ? `${ex.url.slice(0, MAX_LOGGED_PATH)}...` : ex.url,
    status: ex.aborted ? 499 : ex.status,
    ms: Math.round((performance.now() - ex.startedAt) * 100) / 100,
    user: outcome.user,
    route: outcome.route || undefined,
    code: outcome.code,
  });
  if (state.inflight === 0) state.onIdle?.();
}

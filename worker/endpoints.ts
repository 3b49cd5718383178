/*
 * The gateway's own endpoints, one table of reserved paths (exact canonical paths). They are
 * looked up before the route table, so no route, not even `/`, can shadow them. A reserved path
 * asked with another method answers 405 with `Allow` instead of being forwarded.
 */

import type { Config } from '../conf/config-schema.js';
import { HEALTH_PATHS } from '../conf/health-paths.js';
import { GatewayError } from '../shared/errors.js';
import {
  handleLiftRevocation,
  handleListRevocations,
  handleRevoke,
  handleStats,
  requireAdmin,
} from './admin-endpoints.js';
import { handleLogs } from './admin-logs.js';
import { handleLogin } from './auth-handler.js';
import { addressKey } from './client-address.js';
import { sameOriginStep } from './csrf-origin.js';
import { FORWARD_AUTH_PATH, forwardAuthHandler } from './forward-auth.js';
import { handleHealthz, handleReadyz } from './health-endpoints.js';
import { LoginPages } from './login-page.js';
import { handleLogout } from './logout.js';
import { type Handler, runSteps, type Step } from './pipeline.js';
import { compilePolicy } from './rate-limiter.js';
import type { RequestContext } from './request-context.js';
import type { RouteTable } from './route-table.js';
import type { CompiledRoute } from './runtime.js';
import { sessionAuthHandlers } from './session-login.js';
import { handleTotpEnrol, handleTotpRemove, handleTotpReset } from './totp-endpoints.js';

/** One reserved path: its handlers by method, and the steps every method runs first. */
export interface Endpoint {
  readonly path: string;
  readonly methods: ReadonlyMap<string, Handler>;
  /** Run in order before the handler (rate limit, admin check), like a route's steps. */
  readonly steps: readonly Step[];
  /** The 405 for any other method, shared: its `Allow` header never changes. */
  readonly notAllowed: GatewayError;
}

function endpoint(path: string, methods: Record<string, Handler>, steps: Step[] = []): Endpoint {
  const map = new Map(Object.entries(methods));
  return {
    path,
    methods: map,
    steps,
    notAllowed: new GatewayError('METHOD_NOT_ALLOWED', {
      headers: [['allow', [...map.keys()].join(', ')]],
    }),
  };
}

/**
 * `ratelimit_auth` on the endpoints that check a password or the admin token, keyed by the
 * client address (a login names a user, but limiting by the name would let anyone block a
 * user's logins: lockouts handle guessing against one user, login-lockout.ts).
 */
function authLimit(config: Config): Step[] {
  const policy = compilePolicy('auth', config.ratelimit_auth);
  if (policy === undefined) return [];
  const prefix = config.client_ipv6_prefix;
  return [
    (ctx) => ctx.services.limiter.admit(policy, 'i', addressKey(ctx.clientIp, prefix), ctx.ex),
  ];
}

/**
 * The whole `/adm` subtree is the gateway's (as in the original): a path under it that is not
 * an endpoint answers 404 and is never forwarded, so endpoints added later shadow no route.
 */
export const ADMIN_PREFIX = '/adm';

/** Whether `path` (canonical, without a trailing slash) is in the reserved `/adm` subtree. */
export function isAdminPath(path: string): boolean {
  return path === ADMIN_PREFIX || path.startsWith(`${ADMIN_PREFIX}/`);
}

/** Exact paths the gateway answers itself (besides the `/adm` subtree). */
const RESERVED = new Set(['/auth', '/logout', FORWARD_AUTH_PATH]);

/**
 * The reserved paths of a config generation (`/healthz` and `/readyz` when
 * `health_on_main_port` is true: worker/health-endpoints.ts). `loginPage`: the
 * `login_page` file's text; `routes`: this generation's routes (where the login page of
 * session-cookie mode may come from, login-page.ts).
 */
export function compileEndpoints(
  config: Config,
  loginPage: string | undefined,
  routes: RouteTable<CompiledRoute>,
): ReadonlyMap<string, Endpoint> {
  const limited = authLimit(config);
  const health = config.health_on_main_port ? HEALTH_PATHS : [];
  const reserved = (p: string) => RESERVED.has(p) || isAdminPath(p) || health.includes(p);
  // Every /adm endpoint is declared here, so none can miss the admin check; the one user
  // operation below it, TOTP enrolment, checks a password instead (rate limit and lockout).
  const admin = (path: string, methods: Record<string, Handler>) =>
    endpoint(path, methods, [...limited, requireAdmin]);
  const list = [
    // Session-cookie mode runs the limit inside POST: GET /auth (the login page) is not limited.
    config.session_cookie
      ? endpoint(
          '/auth',
          sessionAuthHandlers(config, limited, new LoginPages(config, loginPage, routes, reserved)),
        )
      : endpoint('/auth', { POST: handleLogin }, limited),
    endpoint(
      '/logout',
      { GET: handleLogout, POST: handleLogout },
      config.session_cookie ? [sameOriginStep(config)] : [],
    ),
    // Forward-auth (forward-auth.ts): the route's own steps, rate limit included, run inside.
    forwardAuth(config),
    admin('/adm/revoke', { POST: handleRevoke }),
    // Listings answer HEAD as GET (same head, no body: uws-io.ts); /logout does not, a HEAD
    // must not log anyone out.
    admin('/adm/revocations', {
      GET: handleListRevocations,
      HEAD: handleListRevocations,
      DELETE: handleLiftRevocation,
    }),
    admin('/adm/stats', { GET: handleStats, HEAD: handleStats }),
    admin('/adm/logs', { GET: handleLogs, HEAD: handleLogs }),
    endpoint('/adm/auth/totp/get', { POST: handleTotpEnrol }, limited),
    admin('/adm/auth/totp/reset', { POST: handleTotpReset }),
    admin('/adm/auth/totp', { DELETE: handleTotpRemove }),
    // Off: not in the map, so they cost nothing and the paths stay the routes'.
    ...(config.health_on_main_port
      ? [
          endpoint('/healthz', { GET: handleHealthz, HEAD: handleHealthz }),
          endpoint('/readyz', { GET: handleReadyz, HEAD: handleReadyz }),
        ]
      : []),
  ];
  return new Map(list.map((e) => [e.path, e]));
}

function forwardAuth(config: Config): Endpoint {
  const judge = forwardAuthHandler(config);
  return endpoint(FORWARD_AUTH_PATH, { GET: judge, HEAD: judge });
}

/** Runs the endpoint's steps, then its handler for the request's method; 405 for another. */
export function handleEndpoint(ctx: RequestContext, target: Endpoint): Promise<void> | undefined {
  ctx.logRoute = target.path;
  const handler = target.methods.get(ctx.ex.method);
  if (handler === undefined) throw target.notAllowed;
  const waiting = runSteps(target.steps, ctx);
  if (waiting !== undefined) {
    return waiting.then(() => (ctx.ex.done ? undefined : handler(ctx)));
  }
  return handler(ctx);
}

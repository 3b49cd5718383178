/*
 * `/auth` in session-cookie mode (README "Browser sessions"):
 * - `GET`/`HEAD /auth` serve the login page (login-page.ts);
 * - `POST /auth` is the login (auth-handler.ts) behind the auth rate limit and the HTTPS rule
 *   below. A browser's form post (page-answer.ts isBrowserForm) that is refused gets the login
 *   page with its error block showing the message (shared/error-block.ts), with the refusal's
 *   own status (401 bad credentials, 403, 413, 429 + Retry-After...); API clients keep JSON.
 *   Failures of the gateway itself (5xx) stay JSON, through dispatch.ts, which logs them.
 *
 * The HTTPS rule: the cookie is always `Secure`, which browsers keep only from https:// pages
 * and from http://localhost, 127.0.0.0/8 and [::1] (secure contexts). A login that would set it
 * anywhere else would seem to work and then silently bounce the user back to the login page,
 * so on a gateway without TLS a login is refused (403 SESSION_NEEDS_HTTPS) unless its `Host` is
 * a loopback name or address, or the socket peer is in `trusted_proxies` and says the client
 * used https (client-address.ts forwardedHttps). The rule guards against a silent failure, not
 * an attacker: a client that lies in `Host` only gets a cookie its browser then drops.
 */

import type { Config } from '../conf/config-schema.js';
import { renderErrorBlock } from '../shared/error-block.js';
import { ERRORS, GatewayError, refusal } from '../shared/errors.js';
import { compileIpMatcher } from '../shared/ip-match.js';
import { handleLogin } from './auth-handler.js';
import { forwardedHttps } from './client-address.js';
import { sameOriginStep } from './csrf-origin.js';
import type { LoginPages, Page } from './login-page.js';
import { checkLoginRedirect } from './login-redirect.js';
import { isBrowserForm, sendPage } from './page-answer.js';
import { type Handler, runSteps, type Step } from './pipeline.js';
import type { RequestContext } from './request-context.js';
import { dropBody } from './uws-io.js';

/** The handlers of `/auth` in session-cookie mode; `limited`: the auth rate limit's steps. */
export function sessionAuthHandlers(
  config: Config,
  limited: readonly Step[],
  pages: LoginPages,
): Record<string, Handler> {
  const sameOrigin = sameOriginStep(config);
  const first = [sameOrigin, checkLoginRedirect, ...limited];
  const steps = config.tls ? first : [...first, requireHttps];
  const page: Handler = (ctx) => {
    sendPage(ctx.ex, 200, pages.form.html, pages.form.headers);
    return undefined;
  };
  return {
    POST: (ctx) => (isBrowserForm(ctx.ex) ? browserLogin(ctx, steps, pages) : login(ctx, steps)),
    GET: page,
    HEAD: page,
  };
}

/** The steps, then the login; synchronous refusals stay synchronous (dispatch.ts answers them). */
function login(ctx: RequestContext, steps: readonly Step[]): Promise<void> | undefined {
  const waiting = runSteps(steps, ctx);
  if (waiting === undefined) return handleLogin(ctx);
  return waiting.then(() => (ctx.ex.done ? undefined : handleLogin(ctx)));
}

function browserLogin(
  ctx: RequestContext,
  steps: readonly Step[],
  pages: LoginPages,
): Promise<void> | undefined {
  let work: Promise<void> | undefined;
  try {
    work = login(ctx, steps);
  } catch (err) {
    return answerRefusal(ctx, err, pages);
  }
  return work?.catch((err: unknown) => answerRefusal(ctx, err, pages));
}

/**
 * The login page showing a refusal; rethrows what is not a refusal (non-GatewayError, 5xx, a
 * refusal that must close the connection) to the JSON answer path.
 */
function answerRefusal(ctx: RequestContext, err: unknown, pages: LoginPages): Promise<void> {
  if (!(err instanceof GatewayError) || err.status >= 500 || err.close) throw err;
  ctx.code = err.code;
  const ex = ctx.ex;
  // A body left unread closes the connection: never answered synchronously (dispatch.ts
  // failLater says why).
  const later = ex.unreadBody && !ex.bodyStreamed;
  if (later) dropBody(ex);
  return Promise.resolve(later ? nextTurn() : undefined)
    .then(() => pages.failurePage(ctx.services.log))
    .then((page: Page) => {
      const html = renderErrorBlock(page.html, messageOf(err));
      sendPage(ex, err.status, html, page.headers, err.headers);
    });
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** What the JSON body's `message` says, and when to retry (`after`), for people. */
function messageOf(err: GatewayError): string {
  const base = ERRORS[err.code].message;
  const message = err.detail === undefined ? base : `${base}: ${err.detail}`;
  return err.after === undefined ? message : `${message} (retry in ${err.after} s)`;
}

const isLoopbackV4 = compileIpMatcher(['127.0.0.0/8']);
const isLoopbackV6 = compileIpMatcher(['::1/128']);

/**
 * Whether a `Host` value (already checked by request-checks.ts) names this machine as browsers
 * count it a secure context (W3C Secure Contexts, "potentially trustworthy origin"):
 * `localhost`, a name under `.localhost`, 127.0.0.0/8 or [::1].
 */
export function isLoopbackHost(host: string): boolean {
  // Only [::1] in brackets: an IPv4-mapped [::ffff:127.0.0.1] is not on the list.
  if (host.startsWith('[')) return isLoopbackV6(host.slice(1, host.indexOf(']')));
  const colon = host.indexOf(':');
  let name = (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  return !name.includes(':') && isLoopbackV4(name);
}

/** Refused logins are logged at most this often per edge (each is in the access log anyway). */
const WARN_EVERY_MS = 60_000;
let lastWarnAt = -Infinity;

/** The HTTPS rule (see the header comment): a step of POST /auth when `tls` is off. */
function requireHttps(ctx: RequestContext): void {
  const ex = ctx.ex;
  if (isLoopbackHost(ex.host!)) return;
  const trustedPeer = ctx.rt.trustedProxies?.(ex.ip) === true;
  if (trustedPeer && forwardedHttps(ex.headers)) return;
  const now = Date.now();
  if (now - lastWarnAt >= WARN_EVERY_MS) {
    lastWarnAt = now;
    ctx.services.log.warn(
      'session login refused: plain HTTP from a host that is not loopback (SESSION_NEEDS_HTTPS)',
      { host: ex.host, peer: ex.ip, trusted_peer: trustedPeer },
    );
  }
  throw refusal('SESSION_NEEDS_HTTPS');
}

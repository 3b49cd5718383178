import { GatewayError, refusal } from '../shared/errors.js';
import { foldPath, mayFold } from '../shared/path-fold.js';
import { type Handler, runSteps } from './pipeline.js';
import type { RequestContext } from './request-context.js';
import type { CompiledRoute } from './runtime.js';

/**
 * The route of a canonical `path` (`bare`: without its trailing slash), set on `ctx` with the
 * rest of the path. 404 NO_ROUTE when no route takes it; 400 BAD_PATH when the path, read as a
 * lenient backend would (letter case, trailing dots: shared/path-fold.ts), reaches another route
 * or a gateway endpoint. Shared by proxied requests (dispatch.ts) and forward-auth
 * (forward-auth.ts), so both judge a path the same way.
 */
export function matchRoute(ctx: RequestContext, path: string, bare: string): CompiledRoute {
  const routes = ctx.rt.routes;
  const match = routes.match(path);
  // A path no route takes goes nowhere, whatever a lenient reading of it would be.
  if (match === null) throw refusal('NO_ROUTE');
  if (
    mayFold(path) &&
    (routes.matchFolded(path) !== match.route || ctx.rt.endpoints.has(foldPath(bare)))
  ) {
    throw new GatewayError('BAD_PATH', {
      detail: 'ignoring letter case or trailing dots, the path reaches another route',
    });
  }
  const route = match.route;
  ctx.route = route;
  ctx.rest = match.rest;
  ctx.logRoute = route.prefix;
  return route;
}

/**
 * Runs `route`'s steps, then `handler` (forwarding, a WebSocket upgrade, or forward-auth's
 * answer). Synchronous refusals stay synchronous (dispatch.ts answers them); undefined when
 * everything ran at once.
 */
export function runRoute(
  ctx: RequestContext,
  route: CompiledRoute,
  handler: Handler,
): Promise<void> | undefined {
  const waiting = runSteps(route.steps, ctx);
  if (waiting !== undefined) {
    // A client gone while the request waited gets nothing more.
    return waiting.then(() => (ctx.ex.done ? undefined : handler(ctx)));
  }
  return handler(ctx);
}

/** The refusal of a path the canonicalizer rejects (`url`: the request's path). */
export function badPath(url: string): GatewayError {
  const params = url.includes(';') || /%3b/i.test(url);
  return new GatewayError(
    'BAD_PATH',
    params ? { detail: 'path parameters (";") are not accepted' } : undefined,
  );
}

import type { Dispatcher } from 'undici';
import { GatewayError } from '../shared/errors.js';
import type { CompiledRoute, Runtime } from './runtime.js';
import { type UpstreamIdentity, upstreamRequestHeaders } from './upstream-headers.js';
import { UpstreamRelay } from './upstream-relay.js';
import { buildUpstreamPath } from './upstream-url.js';
import { type Exchange, header, requestBodyStream, sendError } from './uws-io.js';

const BEARER = /^bearer[ \t]+/i;

/** The token of an `Authorization: Bearer` header, or undefined. */
export function bearerToken(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = BEARER.exec(value);
  if (!m) return undefined;
  const token = value.slice(m[0].length).trim();
  return token.length > 0 ? token : undefined;
}

/** What the access log says of a request: filled in as the request progresses. */
export interface ProxyOutcome {
  user: string | undefined;
  route: string;
  code: string | undefined;
}

/**
 * Checks access to a matched route, synchronously (a refusal throws GatewayError at once, with
 * no promise to reject), then forwards: the promise settles when the response is complete.
 * Returns undefined when the exchange was already answered.
 */
export function handleProxy(
  ex: Exchange,
  rt: Runtime,
  route: CompiledRoute,
  rest: string,
  canonicalPath: string,
  outcome: ProxyOutcome,
): Promise<void> | undefined {
  // CONNECT would turn the gateway into a TCP tunnel; undici treats it as an upgrade.
  if (ex.method === 'CONNECT') throw new GatewayError('METHOD_NOT_SUPPORTED');
  if (route.methods && !route.methods.has(ex.method)) {
    sendError(ex, 'METHOD_NOT_ALLOWED', [['allow', route.allowHeader]]);
    return undefined;
  }
  const authorization = header(ex, 'authorization');
  const token = bearerToken(authorization);
  let identity: UpstreamIdentity | undefined;
  let dropAuthorization = false;
  if (route.config.secure) {
    if (token === undefined) throw new GatewayError('TOKEN_MISSING');
    const session = rt.authenticate(token, Math.floor(Date.now() / 1000));
    const user = session && rt.users.get(session.user);
    if (!user) throw new GatewayError('TOKEN_INVALID');
    outcome.user = user.identity.user;
    if (route.usernames && !route.usernames.has(user.identity.user))
      throw new GatewayError('USER_NOT_ALLOWED');
    identity = user.identity;
    dropAuthorization = true;
  } else if (token !== undefined) {
    // A public route's backend may use its own bearer tokens; only the gateway's are withheld.
    dropAuthorization = rt.authenticate(token, Math.floor(Date.now() / 1000)) !== undefined;
  }
  return forward(ex, rt, route, rest, canonicalPath, identity, dropAuthorization);
}

function forward(
  ex: Exchange,
  rt: Runtime,
  route: CompiledRoute,
  rest: string,
  canonicalPath: string,
  identity: UpstreamIdentity | undefined,
  dropAuthorization: boolean,
): Promise<void> {
  const path = buildUpstreamPath({
    targetPath: route.targetPath,
    targetQuery: route.targetQuery,
    rest,
    canonicalPath,
    query: ex.query,
    securePath: route.config.secure_path,
    preservePrefix: route.config.preserve_prefix,
  });
  const headers = upstreamRequestHeaders(ex.headers, {
    ip: ex.ip,
    proto: rt.config.tls ? 'https' : 'http',
    dropAuthorization,
    identity,
  });
  return new Promise<void>((resolve, reject) => {
    route.pool.dispatch(
      {
        path,
        method: ex.method as Dispatcher.HttpMethod,
        headers,
        body: ex.hasBody ? requestBodyStream(ex) : null,
      },
      new UpstreamRelay(ex, resolve, reject),
    );
  });
}

import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../shared/errors.js';
import type { CompiledRoute, Runtime } from './runtime.js';
import { buildUpstreamPath } from './upstream-url.js';
import { forEachResponseHeader, type UpstreamIdentity, upstreamRequestHeaders } from './upstream-headers.js';
import { abortExchange, type Exchange, header, requestBodyStream, SERVER_HEADER, sendError, streamToClient } from './uws-io.js';

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
 * Checks access to a matched route and forwards. Resolves when the response is complete (or
 * the exchange was answered with an error); throws GatewayError for failures to report.
 */
export async function handleProxy(
  ex: Exchange,
  rt: Runtime,
  route: CompiledRoute,
  rest: string,
  canonicalPath: string,
  outcome: ProxyOutcome,
): Promise<void> {
  if (route.methods && !route.methods.has(ex.method)) {
    sendError(ex, 'METHOD_NOT_ALLOWED', [['allow', route.allowHeader]]);
    return;
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
    if (route.usernames && !route.usernames.has(user.identity.user)) throw new GatewayError('USER_NOT_ALLOWED');
    identity = user.identity;
    dropAuthorization = true;
  } else if (token !== undefined) {
    // A public route's backend may use its own bearer tokens; only the gateway's are withheld.
    dropAuthorization = rt.authenticate(token, Math.floor(Date.now() / 1000)) !== undefined;
  }
  await forward(ex, rt, route, rest, canonicalPath, identity, dropAuthorization);
}

function hasRequestBody(ex: Exchange): boolean {
  const length = header(ex, 'content-length');
  if (length !== undefined) return length !== '0';
  return header(ex, 'transfer-encoding') !== undefined;
}

async function forward(
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
  const abort = new AbortController();
  ex.onAbort = () => abort.abort();
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await route.pool.request({
      path,
      method: ex.method as Dispatcher.HttpMethod,
      headers,
      body: hasRequestBody(ex) ? requestBodyStream(ex) : null,
      signal: abort.signal,
    });
  } catch (err) {
    throw upstreamError(err);
  }
  if (ex.done) {
    upstream.body.destroy();
    return;
  }
  await relayResponse(ex, upstream);
}

const NO_BODY_STATUS = new Set([204, 304]);

async function relayResponse(ex: Exchange, upstream: Dispatcher.ResponseData): Promise<void> {
  const { statusCode, headers, body } = upstream;
  const lengthHeader = headers['content-length'];
  const length = typeof lengthHeader === 'string' ? Number(lengthHeader) : undefined;
  const noBody = ex.method === 'HEAD' || NO_BODY_STATUS.has(statusCode);
  const res = ex.res;
  ex.status = statusCode;
  res.cork(() => {
    res.writeStatus(`${statusCode} ${STATUS_CODES[statusCode] ?? 'Unknown'}`);
    res.writeHeader('server', SERVER_HEADER);
    forEachResponseHeader(headers, (name, value) => res.writeHeader(name, value));
    if (noBody) {
      ex.done = true;
      res.endWithoutBody(ex.method === 'HEAD' ? length : undefined);
    } else if (length === 0) {
      ex.done = true;
      res.end();
    }
  });
  if (ex.done) {
    body.resume();
    return;
  }
  try {
    await streamToClient(ex, body, length !== undefined && Number.isSafeInteger(length) ? length : undefined);
  } catch (err) {
    body.destroy();
    // The head is already out: the only honest signal left is a cut connection.
    abortExchange(ex);
    if (!ex.aborted) throw upstreamError(err);
  }
}

/** Maps undici and socket failures to the client-facing codes (502 unreachable, 504 timeout). */
export function upstreamError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new GatewayError('UPSTREAM_TIMEOUT', { cause: err });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new GatewayError('UPSTREAM_UNREACHABLE', { cause: err });
    default:
      return new GatewayError('UPSTREAM_FAILED', { cause: err });
  }
}

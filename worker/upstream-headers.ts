/*
 * Hop-by-hop headers (RFC 9110 section 7.6.1) and headers only the gateway may set. A client
 * that sends x-user or x-user-roles could otherwise speak for someone else to the backend; the
 * forwarding headers are rebuilt from what the gateway itself saw, since no proxy in front of it
 * is trusted.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  // 100-continue is answered by the gateway itself (uWS), and undici refuses the header.
  'expect',
  'user-agent',
  'x-user',
  'x-user-roles',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'forwarded',
  // uWS currently refuses header names with '_', but some backends (CGI, WSGI, PHP) map '_' and
  // '-' to the same variable: never let the underscore spellings through either.
  'x_user',
  'x_user_roles',
  'x_forwarded_for',
  'x_forwarded_proto',
  'x_forwarded_host',
  'x_real_ip',
]);

const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'date',
  'server',
]);

export interface UpstreamIdentity {
  user: string;
  rolesHeader: string;
}

export interface HeaderContext {
  ip: string;
  proto: 'http' | 'https';
  /** Drop `authorization`: it carried the gateway's token. */
  dropAuthorization: boolean;
  identity: UpstreamIdentity | undefined;
}

/** Names listed in a Connection header are hop-by-hop too (RFC 9110 7.6.1). */
function connectionTokens(headers: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'connection') continue;
    tokens ??= new Set();
    for (const t of headers[i + 1]!.split(',')) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}

/** The request headers sent upstream, as undici's flat `[name, value, ...]` array. */
export function upstreamRequestHeaders(headers: readonly string[], ctx: HeaderContext): string[] {
  const out: string[] = [];
  const extra = connectionTokens(headers);
  let host = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name === 'host') host = headers[i + 1]!;
    if (DROPPED_REQUEST_HEADERS.has(name) || extra?.has(name)) continue;
    if (name === 'authorization' && ctx.dropAuthorization) continue;
    out.push(name, headers[i + 1]!);
  }
  out.push('user-agent', 'ProxyAuth', 'x-forwarded-for', ctx.ip, 'x-forwarded-proto', ctx.proto);
  if (host) out.push('x-forwarded-host', host);
  if (ctx.identity) out.push('x-user', ctx.identity.user, 'x-user-roles', ctx.identity.rolesHeader);
  return out;
}

/** Calls `write` for each upstream response header the client may see. */
export function forEachResponseHeader(
  headers: Record<string, string | string[] | undefined>,
  write: (name: string, value: string) => void,
): void {
  const listed = headers.connection;
  // The common values name no header: skip building a set for them.
  const extra =
    listed === undefined || listed === 'keep-alive' || listed === 'close'
      ? undefined
      : connectionTokens(['connection', String(listed)]);
  for (const name in headers) {
    if (DROPPED_RESPONSE_HEADERS.has(name) || extra?.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') write(name, value);
    else for (const v of value) write(name, v);
  }
}

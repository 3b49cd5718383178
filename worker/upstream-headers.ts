/*
 * The headers a request carries upstream. Three kinds of client headers never pass:
 * - hop-by-hop headers (RFC 9110 section 7.6.1), including the names a Connection header lists;
 * - headers a backend may trust as said by a proxy in front of it: forwarding (client address,
 *   scheme, host, port, prefix, original URL or path), identity (user, groups, e-mail, client
 *   certificate, claims of another auth proxy) and method overrides. They are matched by family
 *   (prefix or suffix), not by a short list: a backend framework's own spelling of "the real
 *   client" or "the original path" is almost always one of these shapes;
 * - names the operator adds in `drop_request_headers` (config.json).
 * The gateway then sets what it knows itself: x-forwarded-for/-proto/-host and the identity.
 */

import { GatewayError } from '../shared/errors.js';
import { withoutSessionCookie } from './session-cookie.js';
import type { Exchange } from './uws-io.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Set by undici from the route's target.
  'host',
  // 100-continue is answered by the gateway itself (uWS), and undici refuses the header.
  'expect',
  // Replaced by the gateway's own.
  'user-agent',
]);

/*
 * Families of headers that proxies, load balancers and auth gateways set for their backends,
 * over the lower-case name with `_` read as `-` (CGI, WSGI and PHP map both to the same
 * variable): exact names, prefixes and suffixes. Each line names who uses the family.
 */
const TRUSTED_EXACT = [
  // RFC 7239 and the bare spellings of the families below.
  'forwarded',
  'x-forwarded',
  'x-original',
  'x-user',
  'x-username',
  'x-host',
  'x-http-host-override',
  // WSGI's prefix.
  'x-script-name',
  // Method overrides (X-HTTP-Method, X-Override-Method).
  'x-http-method',
  'x-override-method',
  // Identity as a whole: Kong OIDC, Google ESP / API Gateway, oauth2-proxy's tokens, WSO2.
  'x-userinfo',
  'x-email',
  'x-endpoint-api-userinfo',
  'x-apigateway-api-userinfo',
  'x-access-token',
  'x-id-token',
  'x-custom-ip-authorization',
];

const TRUSTED_PREFIXES = [
  // X-Forwarded-* (-For, -Host, -Proto, -Port, -Prefix, -Uri, -Path, -Server, -Ssl, -Method,
  // -User, -Email, -Groups, -Access-Token, -Client-Cert...) and a common misspelling.
  'x-forwarded-',
  'x-forward-',
  'x-originally-',
  // Client address: X-Real-IP, X-Client-IP, CF-Connecting-IP, X-Originating-IP, X-Remote-Addr,
  // X-ProxyUser-IP.
  'x-real-',
  'x-client-',
  'cf-connecting-',
  'x-originating-',
  'x-proxyuser-',
  // Original URL, path or host: IIS/Symfony X-Original-URL, X-Rewrite-URL, nginx
  // X-Original-URI, Envoy X-Envoy-Original-Path.
  'x-original-',
  'x-rewrite-',
  'x-envoy-',
  // Method overrides: X-HTTP-Method-Override.
  'x-http-method-',
  // Identity asserted by an auth layer: our x-user-roles, Remote-User/-Groups/-Email (Authelia),
  // X-Remote-User, X-Auth-Request-* (oauth2-proxy), X-Auth-* (Keycloak gatekeeper, and our own
  // admin token header), X-Authenticated-* and X-Consumer-* (Kong), X-Credential-*, X-WebAuth-*
  // (Grafana), X-Pomerium-*, X-Authentik-*, X-Vouch-*, Tailscale-User-*, Cf-Access-* (Cloudflare
  // Access), X-Amzn-Oidc-* (AWS ALB), X-Goog-Authenticated-* and X-Goog-IAP-* (Google IAP),
  // X-MS-Client-Principal* and X-MS-Token-* (Azure), OIDC-Claim-* (mod_auth_openidc),
  // X-JWT-Assertion* (WSO2), Impersonate-* (Kubernetes).
  'x-user-',
  'remote-',
  'x-remote-',
  'x-auth-',
  'x-authenticated-',
  'x-consumer-',
  'x-credential-',
  'x-webauth-',
  'x-pomerium-',
  'x-authentik-',
  'x-vouch-',
  'tailscale-',
  'cf-access-',
  'x-amzn-oidc-',
  'x-goog-authenticated-',
  'x-goog-iap-',
  'x-ms-client-principal',
  'x-ms-token-',
  'oidc-claim-',
  'oidc-access-token',
  'oidc-id-token',
  'x-jwt-assertion',
  'impersonate-',
  // TLS client certificates as seen by a terminating proxy: X-SSL-Client-*, SSL-Client-Cert,
  // X-ARR-ClientCert (IIS ARR).
  'x-ssl-',
  'ssl-client-',
  'x-arr-',
];

const TRUSTED_SUFFIXES = [
  // Client-IP, True-Client-IP, X-Cluster-Client-IP, Fastly-Client-IP, Proxy-Client-IP and
  // WL-Proxy-Client-IP (Java app servers), HTTP-Client-IP, Incap-Client-IP.
  'client-ip',
  // X-Method-Override and every other "...-Method-Override".
  'method-override',
];

const EXACT = new Set(TRUSTED_EXACT);
/** Prefixes by first char: a name starting with another char skips them. */
const PREFIXES_BY_CHAR = new Map<string, string[]>();
for (const prefix of TRUSTED_PREFIXES) {
  const list = PREFIXES_BY_CHAR.get(prefix.charAt(0)) ?? [];
  list.push(prefix);
  PREFIXES_BY_CHAR.set(prefix.charAt(0), list);
}

/**
 * Operator-listed names to drop on top of the families: exact names, or prefixes written with a
 * trailing `*` (`x-corp-*`). Compiled once per config generation.
 */
export interface DropList {
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

export const EMPTY_DROP_LIST: DropList = { exact: new Set(), prefixes: [] };

/** Compiles `drop_request_headers` (already validated as header names, `*` suffix allowed). */
export function compileDropList(names: readonly string[]): DropList {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const raw of names) {
    const name = raw.toLowerCase().replaceAll('_', '-');
    if (name.endsWith('*')) prefixes.push(name.slice(0, -1));
    else exact.add(name);
  }
  return { exact, prefixes };
}

/**
 * The fixed families' decision by header name, as received (client input: cleared when it holds
 * {@link FAMILY_DECISIONS_LIMIT} names, so it stays bounded whatever names clients send).
 * Measured (callgrind): the families' scan cost ~300 instructions a header, a lookup ~60.
 */
const familyDecisions = new Map<string, boolean>();
const FAMILY_DECISIONS_LIMIT = 1024;

function normalizedName(name: string): string {
  return name.includes('_') ? name.replaceAll('_', '-') : name;
}

function inFamilies(normalized: string): boolean {
  if (EXACT.has(normalized)) return true;
  const prefixes = PREFIXES_BY_CHAR.get(normalized.charAt(0));
  if (prefixes !== undefined) for (const p of prefixes) if (normalized.startsWith(p)) return true;
  for (const suffix of TRUSTED_SUFFIXES) if (normalized.endsWith(suffix)) return true;
  return false;
}

/** True for a request header no client may send upstream (families above, or `drop`). */
export function isTrustedOnlyHeader(name: string, drop: DropList = EMPTY_DROP_LIST): boolean {
  let family = familyDecisions.get(name);
  if (family === undefined) {
    family = inFamilies(normalizedName(name));
    if (familyDecisions.size >= FAMILY_DECISIONS_LIMIT) familyDecisions.clear();
    familyDecisions.set(name, family);
  }
  if (family) return true;
  if (drop.exact.size === 0 && drop.prefixes.length === 0) return false;
  const normalized = normalizedName(name);
  if (drop.exact.has(normalized)) return true;
  for (const prefix of drop.prefixes) if (normalized.startsWith(prefix)) return true;
  return false;
}

/** How many names {@link isTrustedOnlyHeader} remembers now (tests: the bound). */
export function familyDecisionsSize(): number {
  return familyDecisions.size;
}

/**
 * The value of an identity header (`x-user`, each role of `x-user-roles`): the name itself when
 * it is printable ASCII without `%` or a space, else every other byte of its UTF-8 form as %XX
 * (RFC 3986 percent-encoding), so any valid username survives the trip and a backend gets it
 * back exactly with decodeURIComponent. Plain ASCII names (the common case) are unchanged.
 */
export function encodeIdentity(value: string): string {
  let plain = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out +=
      byte > 0x20 && byte < 0x7f && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** What the gateway says upstream about the user (values already encoded). */
export interface UpstreamIdentity {
  readonly user: string;
  readonly roles: string;
}

/** What upstreamRequestHeaders needs besides the client's headers. */
export interface HeaderContext {
  /** The X-Forwarded-For to send: the peer, or a trusted proxy's chain and the peer. */
  readonly forwardedFor: string;
  readonly proto: 'http' | 'https';
  readonly identity: UpstreamIdentity | undefined;
  /** Drop every `authorization` (it carried the gateway's token). */
  readonly dropAllAuthorization: boolean;
  /** Drop the `authorization` headers with these values (gateway tokens on a public route). */
  readonly withheldAuthorization: readonly string[] | undefined;
  /** Remove the gateway's `session_token` pairs from `cookie` headers (session-cookie mode). */
  readonly stripSessionCookie: boolean;
  readonly drop: DropList;
}

/**
 * Whether `value` holds only HTAB and visible ASCII (and space); anything else is rare and
 * checked by wireValue. A loop, not a RegExp test: ~350 instructions a call per forwarded
 * header (callgrind) against a few per char.
 */
function isPlain(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) return false;
  }
  return true;
}
/** Control chars (RFC 9110 section 5.5 allows none but HTAB) and U+FFFD (uWS's stand-in for bytes that were not UTF-8). */
const UNFORWARDABLE = /[\x00-\x08\x0a-\x1f\x7f\ufffd]/;

/**
 * A request header value as the bytes the client sent. uWS hands values decoded as UTF-8 and
 * undici writes strings as latin1, so `café` would reach the backend as `caf\xe9` and `€` would
 * make undici refuse the request: the UTF-8 bytes are passed as a latin1 string instead. Values
 * that cannot be forwarded as sent (control characters; bytes that were not UTF-8, which uWS
 * already replaced) are refused with 400.
 */
function wireValue(name: string, value: string): string {
  if (UNFORWARDABLE.test(value)) {
    throw new GatewayError('BAD_REQUEST', {
      detail: `the ${name} header holds bytes that cannot be forwarded`,
    });
  }
  return Buffer.from(value, 'utf8').toString('latin1');
}

/**
 * Names listed in a Connection header are hop-by-hop too (RFC 9110 section 7.6.1); undefined
 * when none is listed beyond HOP_BY_HOP's own. A value without a comma is one token: no split
 * (a runtime call for a fresh string, ~1,500 instructions with the Set, callgrind), and the usual
 * `keep-alive` lists a header the gateway drops anyway (`close` names a header that it does not:
 * it goes in the set).
 */
function connectionTokens(headers: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'connection') continue;
    const value = headers[i + 1]!;
    if (!value.includes(',')) {
      const token = value.trim().toLowerCase();
      // Dropped in both directions whatever the list says (HOP_BY_HOP, DROPPED_RESPONSE_HEADERS).
      if (token === 'keep-alive') continue;
      tokens ??= new Set();
      tokens.add(token);
      continue;
    }
    tokens ??= new Set();
    for (const t of value.split(',')) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}

/** The request headers sent upstream, as undici's flat `[name, value, ...]` array. */
export function upstreamRequestHeaders(ex: Exchange, ctx: HeaderContext): string[] {
  const headers = ex.headers;
  const out: string[] = [];
  const listed = connectionTokens(headers);
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    let value = headers[i + 1]!;
    if (HOP_BY_HOP.has(name) || listed?.has(name) || isTrustedOnlyHeader(name, ctx.drop)) continue;
    if (
      name === 'authorization' &&
      (ctx.dropAllAuthorization || ctx.withheldAuthorization?.includes(value))
    )
      continue;
    if (name === 'cookie' && ctx.stripSessionCookie) {
      const rest = withoutSessionCookie(value);
      if (rest === undefined) continue;
      value = rest;
    }
    out.push(name, isPlain(value) ? value : wireValue(name, value));
  }
  // A chain relayed from a trusted proxy holds what the client wrote: checked like its headers.
  // The peer alone (the same string as ex.ip) is the gateway's own text.
  const xff =
    ctx.forwardedFor === ex.ip || isPlain(ctx.forwardedFor)
      ? ctx.forwardedFor
      : wireValue('x-forwarded-for', ctx.forwardedFor);
  out.push('user-agent', 'ProxyAuth', 'x-forwarded-for', xff, 'x-forwarded-proto', ctx.proto);
  if (ex.host) out.push('x-forwarded-host', ex.host);
  if (ctx.identity) out.push('x-user', ctx.identity.user, 'x-user-roles', ctx.identity.roles);
  return out;
}

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

/**
 * Names an upstream response's Connection header lists (hop-by-hop, not relayed), or undefined
 * for the common values that list no header.
 */
export function connectionListed(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): ReadonlySet<string> | undefined {
  const listed = headers.connection;
  if (listed === undefined || listed === 'keep-alive' || listed === 'close') return undefined;
  return connectionTokens(['connection', String(listed)]);
}

/**
 * Whether an upstream response header is relayed to the client: not hop-by-hop, not one uWS
 * writes itself (length, date), not `server` (the gateway's own is sent).
 */
export function isRelayedResponseHeader(
  name: string,
  listed: ReadonlySet<string> | undefined,
): boolean {
  return !DROPPED_RESPONSE_HEADERS.has(name) && listed?.has(name) !== true;
}

/**
 * Upstream CORS headers the gateway replaces when `cors_origins` is on (worker/cors.ts): every
 * `access-control-*` but `access-control-expose-headers`, which names the backend's own headers
 * a listed origin may read and cannot widen who reads them.
 */
export function isUpstreamCorsHeader(name: string): boolean {
  return name.startsWith('access-control-') && name !== 'access-control-expose-headers';
}

/**
 * An upstream's Vary (one value or several field lines) with `Origin` added (RFC 9110 section
 * 12.5.5: a list of field names, case-insensitive), as one value: unchanged when it already
 * names Origin or is `*` (which already covers it), `Origin` alone when absent or empty.
 */
export function varyWithOrigin(vary: string | string[] | undefined): string {
  // Most answers have no Vary: measured 156 ns through the split below, 12 ns without.
  if (vary === undefined) return 'Origin';
  const joined = typeof vary === 'string' ? vary : vary.join(', ');
  let empty = true;
  for (const part of joined.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === 'origin' || name === '*') return joined;
    if (name !== '') empty = false;
  }
  return empty ? 'Origin' : `${joined}, Origin`;
}

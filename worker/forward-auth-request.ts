/*
 * What a trusted proxy says about the request it asks forward-auth to judge (README
 * "Forward-auth"). Two families of headers:
 * - nginx `auth_request`: `X-Original-Method`, `X-Original-URI` (set by the operator's config);
 * - Traefik `forwardAuth`, Caddy `forward_auth`: `X-Forwarded-Method`, `X-Forwarded-Uri`.
 * Both may add `X-Forwarded-Host` and `X-Forwarded-Proto`.
 *
 * Ambiguity refuses (400 FORWARD_AUTH_BAD_REQUEST), never a guess: a header given twice, a
 * list where one value is expected, both families naming different methods or URIs (a proxy
 * that sets one family and passes the client's copy of the other would otherwise let the
 * client choose which one is judged), no method or no URI at all (judging a POST as a GET
 * would skip its CSRF check and `allow_methods`).
 */

import { GatewayError } from '../shared/errors.js';
import { checkMethod, HOST } from './request-checks.js';

/** Which proxy family described the request: decides how a browser is sent to log in. */
export type ForwardFamily = 'original' | 'forwarded';

/** The request to judge, as the proxy described it. */
export interface OriginalRequest {
  /** Upper-cased, a valid method token (CONNECT and TRACE refused as on any request). */
  readonly method: string;
  /** The path, as sent (origin-form, before canonicalization). */
  readonly url: string;
  /** The query without `?`; '' when none. */
  readonly query: string;
  /** `X-Forwarded-Host`, checked like `Host`; undefined when absent. */
  readonly host: string | undefined;
  /** `X-Forwarded-Proto` (lower-cased); undefined when absent. */
  readonly proto: 'http' | 'https' | undefined;
  /** `original` when nginx's headers named the URI, else `forwarded`. */
  readonly family: ForwardFamily;
}

const NAMES = [
  'x-original-method',
  'x-original-uri',
  'x-forwarded-method',
  'x-forwarded-uri',
  'x-forwarded-host',
  'x-forwarded-proto',
] as const;

type Name = (typeof NAMES)[number];

function bad(detail: string): GatewayError {
  return new GatewayError('FORWARD_AUTH_BAD_REQUEST', { detail });
}

/** The single value of each header of interest; two lines of one name refuse. */
function collect(headers: readonly string[]): Map<Name, string> {
  const found = new Map<Name, string>();
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as Name;
    if (!NAMES.includes(name)) continue;
    if (found.has(name)) throw bad(`several ${name} headers`);
    found.set(name, headers[i + 1]!.trim());
  }
  return found;
}

/** One of two values that must agree when both are given. */
function either(found: Map<Name, string>, a: Name, b: Name, fold: boolean): string {
  const x = found.get(a);
  const y = found.get(b);
  if (x === undefined && y === undefined) throw bad(`no ${a} or ${b} header`);
  if (x !== undefined && y !== undefined) {
    const same = fold ? x.toUpperCase() === y.toUpperCase() : x === y;
    if (!same) throw bad(`${a} and ${b} disagree`);
  }
  return (x ?? y)!;
}

function method(found: Map<Name, string>): string {
  const m = either(found, 'x-original-method', 'x-forwarded-method', true).toUpperCase();
  if (m === '' || m.includes(',')) throw bad('the method is not one method name');
  // The same rule as the request line: CONNECT and TRACE, or anything but a token, are 501.
  checkMethod(m);
  return m;
}

/** `/path?query`: origin-form (RFC 9112 section 3.2.1), no fragment. */
function target(found: Map<Name, string>): { url: string; query: string } {
  const uri = either(found, 'x-original-uri', 'x-forwarded-uri', false);
  if (!uri.startsWith('/')) throw bad('the URI must be a path starting with "/"');
  if (uri.includes('#')) throw bad('the URI must not hold a fragment');
  const q = uri.indexOf('?');
  return q === -1 ? { url: uri, query: '' } : { url: uri.slice(0, q), query: uri.slice(q + 1) };
}

function host(found: Map<Name, string>): string | undefined {
  const value = found.get('x-forwarded-host');
  if (value === undefined) return undefined;
  // A list (a proxy that appended) names several hosts: which one the client used is a guess.
  if (value.includes(',') || !HOST.test(value)) throw bad('X-Forwarded-Host is not one host');
  return value;
}

function proto(found: Map<Name, string>): 'http' | 'https' | undefined {
  const value = found.get('x-forwarded-proto');
  if (value === undefined) return undefined;
  const p = value.toLowerCase();
  if (p !== 'http' && p !== 'https') throw bad('X-Forwarded-Proto is not "http" or "https"');
  return p;
}

/**
 * The request a trusted proxy asks about, from its forwarding headers; throws
 * FORWARD_AUTH_BAD_REQUEST (400) when they are missing, repeated or contradictory, and
 * METHOD_NOT_SUPPORTED (501) for CONNECT, TRACE or a method that is not a token. Call only
 * for a peer in `trusted_proxies`: anyone else's headers are never read.
 */
export function readOriginalRequest(headers: readonly string[]): OriginalRequest {
  const found = collect(headers);
  const { url, query } = target(found);
  return {
    method: method(found),
    url,
    query,
    host: host(found),
    proto: proto(found),
    family: found.has('x-original-uri') ? 'original' : 'forwarded',
  };
}

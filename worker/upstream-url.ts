/*
 * The path and query sent upstream. The backend must see exactly the path the gateway routed
 * on: the canonical path is decoded once (canonical-path.ts), so every char that could be read
 * as syntax is re-encoded here, '%' included. A client's '%252e%252e' is routed as the literal
 * segment '%2e%2e' and reaches the backend as '%252e%252e', never as a traversal.
 */

import type { RequestContext } from './request-context.js';

/** Options of {@link buildUpstreamPath}. */
export interface UpstreamPathOptions {
  /** The target's encoded path (`ParsedTarget.path`); used verbatim, never re-encoded. */
  targetPath: string;
  /** The target's own query (`ParsedTarget.query`), with or without a leading '?'. */
  targetQuery: string;
  /** The canonical path after the route prefix: '' or starting with '/'. */
  rest: string;
  /** The whole canonical request path. */
  canonicalPath: string;
  /** The client's query as received (still encoded), without '?'. */
  query: string;
  /** Forward to the target path alone; wins over `preservePrefix`. */
  securePath: boolean;
  /** Append the whole canonical path to the target path instead of `rest`. */
  preservePrefix: boolean;
}

// RFC 3986 pchar (unreserved / sub-delims / ':' / '@') plus '/': the chars left as they are.
const PATH_SAFE = asciiSet(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/",
);

// Client query chars that cannot travel raw: controls, space and DEL break the request line,
// '#' would start a fragment, non-ASCII is not allowed in a request-target.
const QUERY_UNSAFE = /[\x00-\x20#\x7f-\uffff]/;

// '%XX' for every byte, built once so encoding allocates nothing per byte.
const HEX_ESCAPES: readonly string[] = Array.from(
  { length: 256 },
  (_, b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
);

/**
 * A canonical path re-encoded for the upstream request line: every char outside RFC 3986 pchar
 * and '/' becomes UTF-8 percent-escapes, '%' included. Returns the input itself when nothing
 * needs encoding.
 */
export function encodePathForUpstream(canonical: string): string {
  for (let i = 0; i < canonical.length; i++) {
    const c = canonical.charCodeAt(i);
    if (c >= 0x80 || PATH_SAFE[c] === 0) return encodeFrom(canonical, i, isPathSafe);
  }
  return canonical;
}

/**
 * The path and query to request upstream (the origin is the caller's). Default: target path +
 * `rest`; secure_path: the target path alone; preserve_prefix: target path + the whole
 * canonical path. Query: the target's own query, then the client's, joined by '&', without the
 * client's parameters that the target's query names; the client's query is kept in every mode,
 * secure_path included, as the original documents.
 */
export function buildUpstreamPath(opts: UpstreamPathOptions): string {
  let path: string;
  if (opts.securePath) {
    path = opts.targetPath === '' ? '/' : opts.targetPath;
  } else {
    const tail = opts.preservePrefix ? opts.canonicalPath : opts.rest;
    path = joinPath(opts.targetPath, encodePathForUpstream(tail));
  }
  const query = joinQuery(opts.targetQuery, opts.query);
  return query === '' ? path : `${path}?${query}`;
}

/** Joins without doubling '/': '/base/' + '/x' is '/base/x'; an empty `tail` keeps `base`. */
function joinPath(base: string, tail: string): string {
  if (tail === '') return base === '' ? '/' : base;
  if (base === '') return tail;
  return base.charCodeAt(base.length - 1) === 0x2f ? base + tail.slice(1) : base + tail;
}

function joinQuery(targetQuery: string, clientQuery: string): string {
  const own = targetQuery.charCodeAt(0) === 0x3f ? targetQuery.slice(1) : targetQuery;
  const encoded = QUERY_UNSAFE.test(clientQuery)
    ? encodeFrom(clientQuery, 0, isQuerySafe)
    : clientQuery;
  if (own === '') return encoded;
  const client = withoutParams(encoded, queryNames(own));
  if (client === '') return own;
  return `${own}&${client}`;
}

/**
 * The target's own parameters are the operator's (a tenant, an API key): a client repeating one
 * would win on the many backends that keep the last value. Such client parameters are dropped.
 */
function withoutParams(query: string, names: ReadonlySet<string>): string {
  if (query === '') return query;
  const kept = query.split('&').filter((pair) => !names.has(paramName(pair)));
  return kept.join('&');
}

function queryNames(query: string): Set<string> {
  return new Set(query.split('&').map(paramName));
}

/** A query parameter's name, decoded as backends decode it (`+` is a space). */
function paramName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = (eq === -1 ? pair : pair.slice(0, eq)).replaceAll('+', ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function isPathSafe(c: number): boolean {
  return c < 0x80 && PATH_SAFE[c] === 1;
}

function isQuerySafe(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x23;
}

/** Percent-encodes, from index `first` on, each char `isSafe` rejects, as UTF-8. */
function encodeFrom(s: string, first: number, isSafe: (c: number) => boolean): string {
  let out = s.slice(0, first);
  let runStart = first;
  for (let i = first; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isSafe(c)) continue;
    out += s.slice(runStart, i);
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    out += utf8Escapes(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
    runStart = i + 1;
  }
  return out + s.slice(runStart);
}

/** '%XX' escapes of a code point's UTF-8 bytes (a lone surrogate arrives here as U+FFFD). */
function utf8Escapes(cp: number): string {
  if (cp < 0x80) return HEX_ESCAPES[cp]!;
  if (cp < 0x800) return HEX_ESCAPES[0xc0 | (cp >> 6)]! + HEX_ESCAPES[0x80 | (cp & 0x3f)]!;
  if (cp < 0x10000) {
    return (
      HEX_ESCAPES[0xe0 | (cp >> 12)]! +
      HEX_ESCAPES[0x80 | ((cp >> 6) & 0x3f)]! +
      HEX_ESCAPES[0x80 | (cp & 0x3f)]!
    );
  }
  return (
    HEX_ESCAPES[0xf0 | (cp >> 18)]! +
    HEX_ESCAPES[0x80 | ((cp >> 12) & 0x3f)]! +
    HEX_ESCAPES[0x80 | ((cp >> 6) & 0x3f)]! +
    HEX_ESCAPES[0x80 | (cp & 0x3f)]!
  );
}

function asciiSet(chars: string): Uint8Array {
  const set = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) set[chars.charCodeAt(i)] = 1;
  return set;
}

/**
 * The path and query of `ctx`'s request on `to` (the route's target or one of its backends:
 * each carries its own path and query), under the route's path options.
 */
export function upstreamPathFor(
  ctx: RequestContext,
  to: { readonly targetPath: string; readonly targetQuery: string },
): string {
  const config = ctx.route!.config;
  return buildUpstreamPath({
    targetPath: to.targetPath,
    targetQuery: to.targetQuery,
    rest: ctx.rest,
    canonicalPath: ctx.path,
    query: ctx.ex.query,
    securePath: config.secure_path,
    preservePrefix: config.preserve_prefix,
  });
}

/*
 * Longest-prefix route matching on canonical paths, per path segment: prefix '/api' matches
 * '/api', '/api/' and '/api/x', never '/apix'. Matching is case-sensitive. The longest prefix
 * wins whatever the order of routes.yml; '/' matches what nothing longer does. Prefixes that
 * only differ in letter case or trailing dots are duplicates (shared/path-fold.ts).
 */

import { CodedError } from '../shared/coded-error.js';
import { foldPath } from '../shared/path-fold.js';
import { canonicalizePath } from './canonical-path.js';

/** The matched route and the canonical path after its prefix: '' or starting with '/'. */
export interface RouteMatch<R> {
  route: R;
  rest: string;
}

/** Routes compiled for matching; build once per routes snapshot, query per request. */
export interface RouteTable<R> {
  /** The route for a canonical path (see canonical-path.ts), or null when none matches. */
  match(canonicalPath: string): RouteMatch<R> | null;
  /**
   * The route a lenient backend's reading of the path would reach (shared/path-fold.ts:
   * letter case and trailing dots ignored), or null when none.
   */
  matchFolded(canonicalPath: string): R | null;
  /** Number of routes in the table. */
  readonly size: number;
}

export type RouteTableErrorCode = 'ROUTE_PREFIX_INVALID' | 'ROUTE_PREFIX_DUPLICATE';

/** A routes.yml prefix the table cannot hold. Thrown at compile time, never per request. */
export class RouteTableError extends CodedError<RouteTableErrorCode> {
  readonly prefix: string;

  constructor(code: RouteTableErrorCode, prefix: string, message: string) {
    super(code, message);
    this.prefix = prefix;
  }
}

/**
 * A prefix in the form the table compares: canonicalized like a request path, then without its
 * trailing slash (except '/' itself). Null when the prefix is not a valid path.
 */
export function normalizePrefix(prefix: string): string | null {
  const canonical = canonicalizePath(prefix);
  if (canonical === null || canonical.length === 1) return canonical;
  return canonical.endsWith('/') ? canonical.slice(0, -1) : canonical;
}

/**
 * Compiles routes for segment-aware longest-prefix matching. Throws RouteTableError on a
 * prefix that is not a valid path or two routes whose prefixes normalise to the same one
 * (which one should win would be a guess).
 */
export function compileRouteTable<R extends { prefix: string }>(
  routes: readonly R[],
): RouteTable<R> {
  const byPrefix = new Map<string, R>();
  const byFolded = new Map<string, R>();
  let root: R | undefined;
  for (const route of routes) {
    const prefix = normalizePrefix(route.prefix);
    if (prefix === null) {
      throw new RouteTableError('ROUTE_PREFIX_INVALID', route.prefix, 'Invalid route prefix');
    }
    const folded = foldPath(prefix);
    if (byFolded.has(folded) || (prefix === '/' && root !== undefined)) {
      throw new RouteTableError('ROUTE_PREFIX_DUPLICATE', route.prefix, 'Duplicate route prefix');
    }
    if (prefix === '/') root = route;
    else {
      byPrefix.set(prefix, route);
      byFolded.set(folded, route);
    }
  }
  return new Routes(new PrefixTable(byPrefix, root), new PrefixTable(byFolded, root));
}

/** The exact table and its folded twin. */
class Routes<R> implements RouteTable<R> {
  readonly #exact: PrefixTable<R>;
  readonly #folded: PrefixTable<R>;

  constructor(exact: PrefixTable<R>, folded: PrefixTable<R>) {
    this.#exact = exact;
    this.#folded = folded;
  }

  get size(): number {
    return this.#exact.size;
  }

  match(canonicalPath: string): RouteMatch<R> | null {
    return this.#exact.match(canonicalPath);
  }

  matchFolded(canonicalPath: string): R | null {
    return this.#folded.match(foldPath(canonicalPath))?.route ?? null;
  }
}

class PrefixTable<R> {
  readonly #byPrefix: ReadonlyMap<string, R>;
  readonly #root: R | undefined;
  readonly #maxLength: number;
  // hasLength[n] === 1 when some prefix is n chars long: cut points of other lengths are skipped
  // without slicing or hashing, so a miss costs a char compare, not a Map lookup.
  readonly #hasLength: Uint8Array;

  constructor(byPrefix: ReadonlyMap<string, R>, root: R | undefined) {
    this.#byPrefix = byPrefix;
    this.#root = root;
    let max = 0;
    for (const prefix of byPrefix.keys()) max = Math.max(max, prefix.length);
    this.#maxLength = max;
    this.#hasLength = new Uint8Array(max + 1);
    for (const prefix of byPrefix.keys()) this.#hasLength[prefix.length] = 1;
  }

  get size(): number {
    return this.#byPrefix.size + (this.#root === undefined ? 0 : 1);
  }

  match(canonicalPath: string): RouteMatch<R> | null {
    const path = canonicalPath;
    if (path.charCodeAt(0) !== 0x2f) return null;
    // Candidate prefixes end at the path's end or just before one of its '/', longest first.
    // Cut points beyond the longest prefix are skipped in one lastIndexOf, so a 10k-segment
    // path costs no more than a short one.
    let end = path.length;
    if (path.charCodeAt(end - 1) === 0x2f) end--;
    if (end > this.#maxLength) end = path.lastIndexOf('/', this.#maxLength);
    while (end > 0) {
      if (this.#hasLength[end] === 1) {
        const route = this.#byPrefix.get(end === path.length ? path : path.slice(0, end));
        if (route !== undefined) return { route, rest: path.slice(end) };
      }
      end = path.lastIndexOf('/', end - 1);
    }
    // The root route's prefix is '' in effect: rest is the whole path.
    return this.#root === undefined ? null : { route: this.#root, rest: path };
  }
}

import { isIP } from 'node:net';
import { CodedError } from './coded-error.js';

// The one parser of upstream URLs (a route's `target`, a backend's `url`). conf/ validates with
// it at load and the edge compiles with it, so a URL the edge would refuse is always a config
// error with its key, never an edge that cannot start.
//
// The WHATWG URL parser repairs a lot silently: it strips surrounding blanks and embedded tabs,
// reads `\` as `/`, `http:/h` as `http://h/`, and `010.1` or `2130706433` as IPv4 addresses
// (octal, shorthand, one big number). Each repair is a place where the operator and the
// gateway could disagree on the host a route talks to, so those forms are refused here.

/** A route `target` split for the proxy: the origin to connect to and the parts of the path. */
export interface ParsedTarget {
  /** `scheme://host[:port]`, lowercased, default port dropped. */
  origin: string;
  /** The target's path, already percent-encoded (WHATWG URL `pathname`), at least '/'. */
  path: string;
  /** The target's own query without '?', already encoded; '' when none. */
  query: string;
  protocol: 'http:' | 'https:';
}

export type TargetUrlErrorCode =
  | 'TARGET_INVALID'
  | 'TARGET_PROTOCOL'
  | 'TARGET_CREDENTIALS'
  | 'TARGET_HOST'
  | 'TARGET_PORT'
  | 'TARGET_FRAGMENT';

/**
 * A `target` the proxy cannot use. Thrown at config load, never per request. The message never
 * repeats the URL: it may hold credentials, and the caller names the config key anyway.
 */
export class TargetUrlError extends CodedError<TargetUrlErrorCode> {}

// Written as `http(s)://authority`, authority up to the first '/', '?' or '#'.
const WRITTEN = /^https?:\/\/([^/?#]*)/i;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
// Blanks and controls, which the URL parser would strip or drop, and '\', which it reads as '/'.
const REPAIRED_CHARS = /[\s\x00-\x1f\x7f\\]/;

/**
 * Splits an http(s) URL into origin, encoded path and query. Throws TargetUrlError when the URL
 * does not parse or is written in a form the URL parser would repair (TARGET_INVALID), has
 * another scheme (TARGET_PROTOCOL), carries `user[:password]@` (TARGET_CREDENTIALS, which
 * `origin` would silently drop), an IPv4 host not written as a plain dotted quad (TARGET_HOST),
 * a port outside 1-65535 (TARGET_PORT) or a fragment (TARGET_FRAGMENT, never sent upstream).
 */
export function parseTarget(url: string): ParsedTarget {
  if (REPAIRED_CHARS.test(url)) {
    throw new TargetUrlError(
      'TARGET_INVALID',
      'must not contain blanks, control characters or "\\"',
    );
  }
  const authority = WRITTEN.exec(url)?.[1];
  if (authority === undefined) throw schemeError(url);
  if (authority === '') throw schemeError('');
  // userinfo first: its ':' would otherwise read as a port separator.
  if (authority.includes('@')) {
    throw new TargetUrlError('TARGET_CREDENTIALS', 'must not embed credentials (user:password@)');
  }
  const { host, port } = splitAuthority(authority);
  if (port !== '' && (Number(port) < 1 || Number(port) > 65_535)) {
    throw new TargetUrlError('TARGET_PORT', 'port must be 1 to 65535');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new TargetUrlError('TARGET_INVALID', 'not a valid URL', { cause });
  }
  // An IPv4 host that only the URL parser's legacy rules make an address (`010.1`, `0x7f.1`).
  if (isIP(parsed.hostname) === 4 && host.toLowerCase() !== parsed.hostname) {
    throw new TargetUrlError(
      'TARGET_HOST',
      `an IPv4 host must be a dotted quad without leading zeros (this one reads as ${parsed.hostname})`,
    );
  }
  if (url.includes('#')) {
    throw new TargetUrlError('TARGET_FRAGMENT', 'must not have a fragment ("#...")');
  }
  // WRITTEN guarantees one of the two.
  const protocol = parsed.protocol === 'https:' ? 'https:' : 'http:';
  return { origin: parsed.origin, path: parsed.pathname, query: parsed.search.slice(1), protocol };
}

function schemeError(url: string): TargetUrlError {
  const scheme = SCHEME.exec(url)?.[1];
  if (scheme !== undefined && !/^https?$/i.test(scheme)) {
    return new TargetUrlError('TARGET_PROTOCOL', `scheme must be http or https, not ${scheme}:`);
  }
  return new TargetUrlError('TARGET_INVALID', 'expected http(s)://host[:port][/path][?query]');
}

/** `host:port` -> both parts; `[v6]:port` keeps its brackets; port '' when not written. */
function splitAuthority(authority: string): { host: string; port: string } {
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || colon < authority.lastIndexOf(']')) return { host: authority, port: '' };
  return { host: authority.slice(0, colon), port: authority.slice(colon + 1) };
}

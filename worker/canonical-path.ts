/*
 * The one canonical form of a request path. Route matching, path filters and the upstream
 * request all work on it, so a path cannot mean one thing to the gateway and another to the
 * backend.
 *
 * Rules (decided for the project; tests in test/worker-canonical-path.test.ts):
 * - The raw path must start with a literal '/' (RFC 9112 origin-form); anything else is null.
 *   A leading '\' or '%2F' does not count as that slash.
 * - Percent-decoding happens exactly once, on the whole path, before segments are split: '%2F'
 *   and '%5C' become separators, '%2e%2e' becomes '..', '%25' becomes a literal '%' that is never
 *   decoded again. A path whose decoded form still holds an escape ('%252e' decodes to '%2e') is
 *   null: a backend that decodes twice would read another path than the one routed. Invalid escapes ('%zz', '%4'), invalid UTF-8 ('%c3%28', overlong forms,
 *   encoded surrogates), lone UTF-16 surrogates, and any control char (< 0x20 or 0x7f, raw or
 *   decoded) make the path null.
 * - '\' is a separator, like '/'.
 * - Empty segments ('//') are dropped, '.' segments are dropped, '..' removes the previous
 *   segment; '..' above the root is null (nginx answers 400 there, so do we).
 * - Any ';', raw or decoded from '%3B', is null: see PATH_PARAMETER below. A raw '#' is null.
 * - A trailing slash is kept, and a final '.' or '..' leaves one: '/api/.' and '/api/x/..' are
 *   both '/api/'.
 * - The result is the decoded path as a JS string: it may hold ' ', '?', '#' or '%' literally.
 *   Matching on it is case-sensitive ('/API' is not '/api'), like nginx locations and the
 *   original. encodePathForUpstream (upstream-url.ts) turns it back into a request-line path.
 */

/*
 * PATH_PARAMETER. RFC 3986 lets a segment carry ';' parameters, and backends read them in
 * incompatible ways: servlet containers (Tomcat, Jetty, Spring) strip '/admin;x' to '/admin'
 * before routing, most other servers keep 'admin;x' as the segment's name. A gateway that routes
 * '/app/admin;/secret' as a segment 'admin;' of a public route '/app' would hand a Java backend
 * its restricted '/admin/secret'. No reading of ';' is right for every backend, so a path that
 * holds one, raw or encoded, is refused (as Spring Security's StrictHttpFirewall does); queries
 * may hold ';' freely.
 */
const PATH_PARAMETER = 0x3b;

/** An escape left after decoding once: the path was encoded twice. */
const STILL_ENCODED = /%[0-9A-Fa-f]{2}/;

/*
 * Anything the slow path could change or refuse: an escape, a backslash, a ';', an empty or
 * dot segment, a control char, a space or a non-ASCII char (validated there). One precompiled
 * test: measured on Node 20 over typical 1-40 char paths it costs ~60 ns, a charCodeAt loop
 * ~85 ns and four includes() calls ~115 ns (and those miss control chars).
 */
const NEEDS_SLOW_PATH = /[\x00-\x20\x7f-\uffff%\\;#]|\/[/.]/;

/**
 * The canonical form of a raw request path (no query string), or null when the path is
 * malformed or climbs above the root. The caller answers 400 on null.
 */
export function canonicalizePath(rawPath: string): string | null {
  if (rawPath.charCodeAt(0) !== 0x2f) return null;
  // Most paths are already canonical: return them without allocating anything.
  if (!NEEDS_SLOW_PATH.test(rawPath)) return rawPath;
  return canonicalizeSlow(rawPath);
}

function canonicalizeSlow(rawPath: string): string | null {
  // A raw '#' would start a fragment, which a request target never has (RFC 9112 section 3.2):
  // a proxy in front that drops it routes another path than ours. '%23' is a literal '#'.
  if (rawPath.includes('#')) return null;
  const decoded = decodeOnce(rawPath);
  if (decoded === null || (decoded !== rawPath && STILL_ENCODED.test(decoded))) return null;
  const segments: string[] = [];
  const n = decoded.length;
  let start = 1;
  let trailingSlash = false;
  // One pass: validate chars and resolve segments at each separator (and at the end).
  for (let i = 1; i <= n; i++) {
    const c = i < n ? decoded.charCodeAt(i) : 0x2f;
    if (c !== 0x2f && c !== 0x5c) {
      if (c < 0x20 || c === 0x7f || c === PATH_PARAMETER) return null;
      if (c >= 0xd800 && c <= 0xdfff) {
        if (!isSurrogatePairAt(decoded, i)) return null;
        i++;
      }
      continue;
    }
    const len = i - start;
    const dots = len <= 2 ? countDots(decoded, start, len) : 0;
    if (len === 0 || (len === 1 && dots === 1)) {
      trailingSlash = true;
    } else if (len === 2 && dots === 2) {
      if (segments.pop() === undefined) return null;
      trailingSlash = true;
    } else {
      segments.push(decoded.slice(start, i));
      trailingSlash = false;
    }
    start = i + 1;
  }
  if (segments.length === 0) return '/';
  const joined = `/${segments.join('/')}`;
  return trailingSlash ? `${joined}/` : joined;
}

/** The path with its escapes decoded once, or null on a bad escape or invalid UTF-8. */
function decodeOnce(rawPath: string): string | null {
  if (!rawPath.includes('%')) return rawPath;
  try {
    return decodeURIComponent(rawPath);
  } catch {
    // URIError is decodeURIComponent's only failure: a malformed escape or invalid UTF-8.
    return null;
  }
}

function countDots(s: string, start: number, len: number): number {
  let dots = 0;
  for (let i = start; i < start + len; i++) if (s.charCodeAt(i) === 0x2e) dots++;
  return dots;
}

function isSurrogatePairAt(s: string, i: number): boolean {
  const hi = s.charCodeAt(i);
  const lo = s.charCodeAt(i + 1);
  return hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff;
}

import { isIP } from 'node:net';

/** The canonical IANA name of `name` (`utc` -> `UTC`), or undefined when the runtime knows no such zone. */
export function canonicalTimezone(name: string): string | undefined {
  if (name === '') return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/**
 * An http(s) serialized origin (RFC 6454 section 6.2, `scheme "://" host [ ":" port ]`) as
 * browsers send it in `Origin`, letter case and one trailing `/` aside: the host a DNS name in
 * ASCII or a bracketed IPv6 address. Groups: scheme, host, port. The edge matches request
 * origins with it (canonicalRequestOrigin), so every accepted `cors_origins` entry can match.
 */
export const ORIGIN_SYNTAX = /^(https?):\/\/([a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?\/?$/i;

/**
 * The serialized origin (`https://example.com:8443`) of a CORS origin entry, or undefined when
 * the entry is not an http(s) scheme + host [+ port] with nothing else (path, query, user), or
 * its host is not one a browser can send (a wildcard such as `*.example.com`).
 */
export function canonicalOrigin(value: string): string | undefined {
  const url = parseUrl(value);
  if (url === undefined || !isUrlWithScheme(value, ['http:', 'https:'])) return undefined;
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    return undefined;
  }
  if (url.pathname !== '/' || value.endsWith('?') || value.endsWith('#')) return undefined;
  return ORIGIN_SYNTAX.test(url.origin) ? url.origin : undefined;
}

/**
 * The canonical form of an `Origin` (or Referer-derived) value a request carries, for the CORS
 * lists (worker/cors.ts) and the CSRF origin check (worker/csrf-origin.ts): undefined unless the
 * value has the serialized-origin syntax (ORIGIN_SYNTAX: no path, user info, `%` escapes,
 * missing slashes or other schemes), then the URL parser's serialization, the form
 * canonicalOrigin gives the config's entries. So `HTTP://A.Test:80/`, `http://0x7f.1` and
 * `[0:0:0:0:0:0:0:1]` meet their canonical entries, and no other origin can.
 */
export function canonicalRequestOrigin(value: string): string | undefined {
  return ORIGIN_SYNTAX.test(value) ? canonicalOrigin(value) : undefined;
}

/** True when `value` parses as an absolute URL whose scheme is one of `schemes` (e.g. `http:`). */
export function isUrlWithScheme(value: string, schemes: readonly string[]): boolean {
  const url = parseUrl(value);
  return url !== undefined && schemes.includes(url.protocol) && url.hostname !== '';
}

function parseUrl(value: string): URL | undefined {
  // `new URL` silently strips surrounding spaces and embedded tabs/newlines; refuse them instead.
  if (/[\s\x00-\x1f\x7f]/.test(value)) return undefined;
  try {
    return new URL(value);
  } catch (err) {
    if (err instanceof TypeError) return undefined;
    throw err;
  }
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True for an IP address or a DNS host name, the forms a listen address can take. */
export function isHostOrIp(value: string): boolean {
  return isIP(value) !== 0 || HOSTNAME.test(value);
}

/*
 * The client address of a request: one value for the IP allow lists, admin_allow, the access log
 * and the X-Forwarded-For sent upstream.
 *
 * The socket peer is the client unless it is in `trusted_proxies`. A trusted peer speaks for the
 * hops before it, in X-Forwarded-For (the de-facto convention: each proxy appends the address it
 * received the request from, so the list reads client, proxy1, proxy2...) or, when there is no
 * X-Forwarded-For, in RFC 7239 `Forwarded` (one element per hop, its `for=` parameter the
 * address, section 5.2). Only the right end of either list was written by a proxy we trust, so
 * it is read right to left (RFC 7239 section 8.1): trusted hops are skipped, the first address
 * that is not trusted is the client. The walk stops at the last trusted hop, which is then the
 * client, at anything that is not an address: an invalid entry, `for=unknown`, an obfuscated
 * identifier (`_hidden`, section 6.3), an element without exactly one `for=`. Every entry is
 * trusted: the leftmost. At most MAX_HOPS entries are examined (parsed and matched): past them
 * the walk stops at the last one examined, a trusted hop.
 *
 * Empty list elements are ignored (RFC 9110 section 5.6.1). Addresses are normalised like the
 * socket peer (RFC 5952 text, IPv4-mapped as IPv4), so allow lists and logs see one spelling.
 */

import { clientNetworkKey, parseIpAddress } from '../shared/ip-match.js';
import { ipv6Text } from './uws-io.js';

/** How many list entries, from the right, the walk examines at most. */
export const MAX_HOPS = 32;

/** What a request's headers say about its client, once the peer is known to be trusted. */
export interface ClientAddress {
  /** The client IP: RFC 5952 text, IPv4-mapped as IPv4. */
  readonly ip: string;
  /** The X-Forwarded-For value to send upstream. */
  readonly forwardedFor: string;
}

/**
 * Resolves the client of a request whose socket peer is `peer` (already normalised, as
 * `clientIp` gives it); `headers` is uWS's flat `[name, value, ...]` list with lower-case names.
 * Upstream gets the received X-Forwarded-For entries with the peer appended (the convention);
 * when the address came from `Forwarded`, the addresses the walk read (client first) and the
 * peer; when the peer is not trusted, the peer alone.
 */
export function resolveClientAddress(
  peer: string,
  headers: readonly string[],
  trusted: (ip: string) => boolean,
): ClientAddress {
  if (!trusted(peer)) return { ip: peer, forwardedFor: peer };
  const xff = listEntries(headers, 'x-forwarded-for');
  if (xff.length > 0) {
    const { ip } = walk(xff, peer, trusted, (entry) => entry);
    return { ip, forwardedFor: `${xff.join(', ')}, ${peer}` };
  }
  const forwarded = forwardedForValues(headers);
  if (forwarded.length === 0) return { ip: peer, forwardedFor: peer };
  const { ip, hops } = walk(forwarded, peer, trusted, nodeAddress);
  hops.push(peer);
  return { ip, forwardedFor: hops.join(', ') };
}

/**
 * The right-to-left walk. `address` extracts the address text of an entry, or null when it
 * names none. Returns the client and the normalised addresses read, client first.
 */
function walk<T>(
  entries: readonly T[],
  peer: string,
  trusted: (ip: string) => boolean,
  address: (entry: T) => string | null,
): { ip: string; hops: string[] } {
  const read: string[] = [];
  let client = peer;
  const last = Math.max(0, entries.length - MAX_HOPS);
  for (let i = entries.length - 1; i >= last; i--) {
    const text = address(entries[i]!);
    const bytes = text === null ? null : parseIpAddress(text);
    if (bytes === null) break;
    client = ipv6Text(bytes);
    read.push(client);
    if (!trusted(client)) break;
  }
  return { ip: client, hops: read.reverse() };
}

/** The comma-separated entries of every line of a header, in order, trimmed, empty ones dropped. */
function listEntries(headers: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== name) continue;
    for (const part of headers[i + 1]!.split(',')) {
      const entry = part.trim();
      if (entry !== '') out.push(entry);
    }
  }
  return out;
}

/**
 * Whether a trusted peer's headers say the client used https: every entry of every
 * `X-Forwarded-Proto` line is `https` (case-insensitive; a proxy that appends its own scheme
 * after the client's makes a list, and one `http` in it means a hop was plain), or, without
 * that header, every element of `Forwarded` has `proto=https` (RFC 7239 section 5.4). No
 * header, an empty one, or any other value is false: the caller then treats the request as
 * plain HTTP. Only call it when the socket peer is in `trusted_proxies`.
 */
export function forwardedHttps(headers: readonly string[]): boolean {
  const xfp = listEntries(headers, 'x-forwarded-proto');
  if (xfp.length > 0) return xfp.every((p) => p.toLowerCase() === 'https');
  const protos = forwardedParams(headers, 'proto');
  return protos.length > 0 && protos.every((p) => p?.toLowerCase() === 'https');
}

/**
 * The `for=` value of each element of every `Forwarded` line, in order (RFC 7239 section 4):
 * unquoted, or null for an element with no `for=`, more than one, or a syntax error. Each line
 * is parsed on its own, so a quote left open by a client cannot swallow a line a proxy added;
 * within a line it swallows the rest of the line, which then names no address (the walk stops).
 */
export function forwardedForValues(headers: readonly string[]): (string | null)[] {
  return forwardedParams(headers, 'for');
}

/** As {@link forwardedForValues}, for the parameter `param` (lower case) of each element. */
function forwardedParams(headers: readonly string[], param: string): (string | null)[] {
  const out: (string | null)[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'forwarded') parseForwardedLine(headers[i + 1]!, param, out);
  }
  return out;
}

const OWS = /[ \t]*/y;
const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
/** A value as sent by proxies that do not quote `ip:port`: lenient, the node is checked anyway. */
const BARE_VALUE = /[^\s",;]+/y;
const QUOTED = /"((?:[^"\\]|\\.)*)"/y;

function sticky(re: RegExp, text: string, at: number): RegExpExecArray | null {
  re.lastIndex = at;
  return re.exec(text);
}

function parseForwardedLine(line: string, param: string, out: (string | null)[]): void {
  let at = 0;
  while (at <= line.length) {
    at += sticky(OWS, line, at)![0].length;
    if (at === line.length) return;
    if (line[at] === ',') {
      at++; // an empty element
      continue;
    }
    const element = parseElement(line, at, param);
    out.push(element.value);
    if (element.end === -1) return;
    at = element.end + 1;
  }
}

/**
 * One element from `at`: its `param` value (or null: absent, repeated, or a syntax error) and
 * the index of the `,` that ends it (-1 at the end of the line, or when an open quote makes the
 * rest of the line unreadable).
 */
function parseElement(
  line: string,
  at: number,
  param: string,
): { value: string | null; end: number } {
  let value: string | null = null;
  let seen = 0;
  for (;;) {
    at += sticky(OWS, line, at)![0].length;
    if (at === line.length || line[at] === ',') {
      return { value: seen === 1 ? value : null, end: at === line.length ? -1 : at };
    }
    // Pairs are optional between semicolons (`for=a;;by=b`, section 4).
    if (line[at] === ';') {
      at++;
      continue;
    }
    const name = sticky(TOKEN, line, at);
    if (name === null || line[at + name[0].length] !== '=') return broken(line, at);
    at += name[0].length + 1;
    const match = sticky(line[at] === '"' ? QUOTED : BARE_VALUE, line, at);
    if (match === null) return broken(line, at);
    at += match[0].length;
    if (name[0].toLowerCase() === param) {
      seen++;
      // Only QUOTED has a group: its content, quoted-pairs undone.
      value = match[1] === undefined ? match[0] : match[1].replace(/\\(.)/g, '$1');
    }
    at += sticky(OWS, line, at)![0].length;
    if (at < line.length && line[at] !== ',' && line[at] !== ';') return broken(line, at);
  }
}

/** A syntax error: the element names no address; the next `,` outside quotes ends it. */
function broken(line: string, at: number): { value: null; end: number } {
  let quoted = false;
  for (let i = at; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === ',') return { value: null, end: i };
  }
  return { value: null, end: -1 };
}

const PORT = /^(?:[0-9]{1,5}|_[A-Za-z0-9._-]+)$/;

/**
 * The address of a `for=` node (RFC 7239 section 6): IPv4 or bracketed IPv6, with an optional
 * port (dropped); null for `unknown`, an obfuscated identifier, or anything else.
 */
export function nodeAddress(node: string | null): string | null {
  if (node === null || node === '' || node.charCodeAt(0) === 0x5f /* _ */) return null;
  if (node.toLowerCase() === 'unknown') return null;
  let address: string;
  let rest: string;
  if (node.charCodeAt(0) === 0x5b /* [ */) {
    const close = node.indexOf(']');
    if (close === -1) return null;
    address = node.slice(1, close);
    // Brackets hold IPv6 only (section 6).
    if (!address.includes(':')) return null;
    rest = node.slice(close + 1);
  } else {
    const colon = node.indexOf(':');
    address = colon === -1 ? node : node.slice(0, colon);
    rest = colon === -1 ? '' : node.slice(colon);
  }
  if (rest !== '' && (rest.charCodeAt(0) !== 0x3a /* : */ || !PORT.test(rest.slice(1)))) {
    return null;
  }
  return address;
}

/**
 * The key of a client address for rate limits and lockouts: an IPv4 client (IPv4-mapped
 * included: the address is already normalised) by its address, an IPv6 client by its
 * `client_ipv6_prefix` network (shared/ip-match.ts clientNetworkKey: '2001:db8:1:2::/64').
 */
export function addressKey(ip: string, ipv6Prefix: number): string {
  if (!ip.includes(':')) return ip;
  return clientNetworkKey(ip, ipv6Prefix) ?? ip;
}

import { CodedError } from './coded-error.js';
// IP allow lists. Every address lives in the IPv6 space as four 32-bit words, IPv4 as its mapped
// form ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2). One representation means one comparison
// loop, and a client that reaches a dual-stack socket as ::ffff:1.2.3.4 (or as uWS's full form
// 0000:...:ffff:0102:0304) matches the entry 1.2.3.0/24 written by the operator.
//
// The words are kept in Int32Arrays: `&` yields signed 32-bit results, so stored words must be
// signed too for `===` to compare like with like.

/** Thrown by `parseIpEntry` and `compileIpMatcher` for an entry that is not an address or CIDR. */
export class IpEntryError extends CodedError<'INVALID_IP_ENTRY'> {
  readonly entry: string;

  constructor(entry: string, reason: string) {
    super('INVALID_IP_ENTRY', `invalid IP entry ${JSON.stringify(entry)}: ${reason}`);
    this.entry = entry;
  }
}

/** A parsed allow-list entry. */
export interface IpNetwork {
  /** The family the entry was written in. */
  readonly family: 4 | 6;
  /** Prefix length in that family's terms: 0-32 for IPv4, 0-128 for IPv6. */
  readonly prefix: number;
  /** 16 bytes, host bits cleared; IPv4 as ::ffff:a.b.c.d. */
  readonly bytes: Uint8Array;
}

const IPV4_MAPPED_PREFIX = 96;

/**
 * Parses `address` or `address/prefix` (IPv4 or IPv6, full, compressed or with an IPv4 tail).
 * Host bits past the prefix are ignored (1.2.3.4/24 is 1.2.3.0/24). Surrounding blanks are
 * allowed. Throws IpEntryError with the reason.
 */
export function parseIpEntry(entry: string): IpNetwork {
  const { family, prefix, words } = parseEntryWords(entry);
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 4; i++) view.setInt32(i * 4, words[i]!);
  return { family, prefix: family === 4 ? prefix - IPV4_MAPPED_PREFIX : prefix, bytes };
}

/** The 16 bytes of an IPv4 (as ::ffff:a.b.c.d) or IPv6 address, or null when it is not one. */
export function parseIpAddress(text: string): Uint8Array | null {
  const words = new Int32Array(4);
  if (parseAddressInto(text, words) === 0) return null;
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 4; i++) view.setInt32(i * 4, words[i]!);
  return bytes;
}

/**
 * RFC 5952 text of 16 address bytes (as parseIpAddress gives them): lower-case hex without
 * leading zeros, the longest run of two or more zero groups (the first of equal runs) as `::`;
 * an IPv4-mapped address (::ffff:a.b.c.d) as plain IPv4 text. Throws TypeError unless `bytes`
 * holds 16 bytes.
 */
export function formatIpAddress(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 16) {
    throw new TypeError('an IP address is 16 bytes');
  }
  if (isMappedV4(bytes)) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':');
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/**
 * The one spelling of a network, as the gateway keys clients (login bans): IPv4, and IPv6
 * networks inside ::ffff:0:0/96 (IPv4-mapped), as IPv4 text with `/prefix` unless it is 32;
 * IPv6 as RFC 5952 text, always with `/prefix` ('2001:db8:1:2::/64', '2001:db8::1/128').
 */
export function formatIpNetwork(network: IpNetwork): string {
  const prefix = prefix128(network);
  if (prefix >= IPV4_MAPPED_PREFIX && isMappedV4(network.bytes)) {
    const text = formatIpAddress(network.bytes);
    return prefix === 128 ? text : `${text}/${prefix - IPV4_MAPPED_PREFIX}`;
  }
  return `${formatIpAddress(network.bytes)}/${prefix}`;
}

/**
 * The key of a client address in the gateway's spelling (see formatIpNetwork): an IPv4 (or
 * IPv4-mapped) client as its address, an IPv6 client as its /`ipv6Prefix` network, since one
 * IPv6 host usually holds a whole /64. Null when `ip` is not an address. Throws RangeError
 * unless `ipv6Prefix` is an integer from 0 to 128.
 */
export function clientNetworkKey(ip: string, ipv6Prefix: number): string | null {
  if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 0 || ipv6Prefix > 128) {
    throw new RangeError(`ipv6Prefix must be an integer from 0 to 128, got ${String(ipv6Prefix)}`);
  }
  const bytes = typeof ip === 'string' ? parseIpAddress(ip) : null;
  if (bytes === null) return null;
  if (isMappedV4(bytes)) return formatIpAddress(bytes);
  for (let bit = ipv6Prefix; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return formatIpNetwork({ family: 6, prefix: ipv6Prefix, bytes });
}

/**
 * True when `a` and `b` share an address. Two prefix networks share one exactly when one holds
 * the other: an address in a network, a network in a wider one, or the same network in two
 * spellings (an IPv4 network and its IPv4-mapped IPv6 form are the same).
 */
export function ipNetworksOverlap(a: IpNetwork, b: IpNetwork): boolean {
  const bits = Math.min(prefix128(a), prefix128(b));
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a.bytes[whole]! & mask) === (b.bytes[whole]! & mask);
}

/** The prefix of `network` in the 128-bit space. */
function prefix128(network: IpNetwork): number {
  return network.family === 4 ? network.prefix + IPV4_MAPPED_PREFIX : network.prefix;
}

/** True for ::ffff:a.b.c.d. */
function isMappedV4(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Compiles entries into a predicate over client addresses. An empty list matches nothing; an
 * unparsable client address matches nothing. Throws IpEntryError on the first bad entry.
 */
export function compileIpMatcher(entries: readonly string[]): (ip: string) => boolean {
  // Eight words per network: four of address (host bits cleared), four of mask.
  const table = new Int32Array(entries.length * 8);
  entries.forEach((entry, n) => {
    const { prefix, words } = parseEntryWords(entry);
    for (let i = 0; i < 4; i++) {
      const mask = maskWord(prefix, i);
      table[n * 8 + i] = words[i]!;
      table[n * 8 + 4 + i] = mask;
    }
  });
  const client = new Int32Array(4);
  return (ip: string): boolean => {
    if (typeof ip !== 'string' || parseAddressInto(ip, client) === 0) return false;
    for (let at = 0; at < table.length; at += 8) {
      if (
        (client[0]! & table[at + 4]!) === table[at] &&
        (client[1]! & table[at + 5]!) === table[at + 1] &&
        (client[2]! & table[at + 6]!) === table[at + 2] &&
        (client[3]! & table[at + 7]!) === table[at + 3]
      ) {
        return true;
      }
    }
    return false;
  };
}

interface EntryWords {
  family: 4 | 6;
  /** In the 128-bit space. */
  prefix: number;
  /** Masked. */
  words: Int32Array;
}

function parseEntryWords(entry: string): EntryWords {
  if (typeof entry !== 'string') throw new IpEntryError(String(entry), 'not a string');
  const text = entry.trim();
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const words = new Int32Array(4);
  const family = parseAddressInto(addressText, words);
  if (family === 0) {
    throw new IpEntryError(entry, 'expected an IPv4 or IPv6 address, optionally with /prefix');
  }
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    prefix = parseDecimal(text, slash + 1, text.length, max);
    if (prefix < 0) throw new IpEntryError(entry, `prefix must be an integer from 0 to ${max}`);
  }
  if (family === 4) prefix += IPV4_MAPPED_PREFIX;
  for (let i = 0; i < 4; i++) words[i] = words[i]! & maskWord(prefix, i);
  return { family, prefix, words };
}

function maskWord(prefix: number, index: number): number {
  const bits = Math.min(32, Math.max(0, prefix - index * 32));
  // A shift count is taken mod 32 in JS, so a zero-bit mask cannot come from the shift.
  return bits === 0 ? 0 : -1 << (32 - bits);
}

/** Writes the address words and returns its family, or 0 when `text` is not an address. */
function parseAddressInto(text: string, words: Int32Array): 0 | 4 | 6 {
  if (text.includes(':')) return parseIpv6(text, words) ? 6 : 0;
  const v4 = parseIpv4(text, 0, text.length);
  if (v4 < 0) return 0;
  words[0] = 0;
  words[1] = 0;
  words[2] = 0xffff;
  words[3] = v4;
  return 4;
}

/** The address as an unsigned 32-bit number, or -1. Dotted quad only, no leading zeros. */
function parseIpv4(text: string, start: number, end: number): number {
  let value = 0;
  let octets = 0;
  let from = start;
  for (let i = start; i <= end; i++) {
    if (i < end && text.charCodeAt(i) !== 46 /* . */) continue;
    // Leading zeros are refused: some parsers read 010 as octal 8, others as decimal 10.
    const octet = parseDecimal(text, from, i, 255);
    if (octet < 0 || octets === 4) return -1;
    value = value * 256 + octet;
    octets++;
    from = i + 1;
  }
  return octets === 4 ? value : -1;
}

/** A decimal integer in [from, to) without sign or leading zeros, at most `max`, or -1. */
function parseDecimal(text: string, from: number, to: number, max: number): number {
  const length = to - from;
  if (length < 1 || length > 3 || (length > 1 && text.charCodeAt(from) === 48)) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value <= max ? value : -1;
}

function parseIpv6(text: string, words: Int32Array): boolean {
  const gap = text.indexOf('::');
  if (gap !== -1 && text.indexOf('::', gap + 1) !== -1) return false;
  const head = splitGroups(gap === -1 ? text : text.slice(0, gap));
  const tail = gap === -1 ? [] : splitGroups(text.slice(gap + 2));
  const groups: number[] = [];
  const last = gap === -1 ? head : tail;
  if (!pushGroups(head, groups, last === head) || !pushGroups(tail, groups, last === tail)) {
    return false;
  }
  const tailLength = gap === -1 ? 0 : groups.length - countGroups(head);
  if (gap === -1 ? groups.length !== 8 : groups.length > 7) return false;
  // Expand `::` by inserting the missing zero groups before the tail.
  groups.splice(groups.length - tailLength, 0, ...new Array<number>(8 - groups.length).fill(0));
  for (let i = 0; i < 4; i++) words[i] = (groups[i * 2]! << 16) | groups[i * 2 + 1]!;
  return true;
}

function splitGroups(text: string): string[] {
  return text === '' ? [] : text.split(':');
}

// An IPv4 tail stands for two groups.
function countGroups(parts: string[]): number {
  const last = parts[parts.length - 1];
  return parts.length + (last?.includes('.') ? 1 : 0);
}

/** Appends the 16-bit groups of `parts`; an IPv4 tail is allowed only as the very last part. */
function pushGroups(parts: string[], groups: number[], holdsLast: boolean): boolean {
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p]!;
    if (holdsLast && p === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4(part, 0, part.length);
      if (v4 < 0) return false;
      groups.push(v4 >>> 16, v4 & 0xffff);
      continue;
    }
    const group = parseHexGroup(part);
    if (group < 0) return false;
    groups.push(group);
  }
  return true;
}

/** One to four hex digits (leading zeros allowed, as in uWS's full form), or -1. */
function parseHexGroup(part: string): number {
  if (part.length < 1 || part.length > 4) return -1;
  let value = 0;
  for (let i = 0; i < part.length; i++) {
    const code = part.charCodeAt(i);
    let digit: number;
    if (code >= 48 && code <= 57) digit = code - 48;
    else if (code >= 97 && code <= 102) digit = code - 87;
    else if (code >= 65 && code <= 70) digit = code - 55;
    else return -1;
    value = value * 16 + digit;
  }
  return value;
}

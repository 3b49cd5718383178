/*
 * Content codings (RFC 9110 section 8.4) of response bodies the gateway rewrites: which ones it
 * can decode and encode again (gzip, deflate, br), the zlib streams that do it, and the
 * Accept-Encoding a request carries upstream so that a backend picks no other.
 */

import type { Transform } from 'node:stream';
import {
  type BrotliOptions,
  constants,
  createBrotliCompress,
  createBrotliDecompress,
  createDeflate,
  createDeflateRaw,
  createGunzip,
  createGzip,
  createInflate,
  createInflateRaw,
  type ZlibOptions,
} from 'node:zlib';

/** A single coding the gateway decodes and re-encodes, or none (`identity`). */
export type Coding = 'identity' | 'gzip' | 'deflate' | 'br';

const CODINGS: ReadonlyMap<string, Coding> = new Map([
  ['identity', 'identity'],
  ['gzip', 'gzip'],
  // RFC 9110 section 8.4.1.3: a recipient should treat x-gzip as gzip.
  ['x-gzip', 'gzip'],
  ['deflate', 'deflate'],
  ['br', 'br'],
]);

/**
 * The coding of a body from its Content-Encoding field (names case-insensitive, RFC 9110
 * section 8.4.1): `identity` when absent or empty, undefined for anything the gateway cannot
 * undo: an unknown coding (zstd, compress), or several stacked (`gzip, br`, or two fields).
 */
export function bodyCoding(value: string | string[] | undefined): Coding | undefined {
  if (value === undefined) return 'identity';
  if (typeof value !== 'string') return undefined;
  const names = value.split(',').flatMap((n) => {
    const t = n.trim();
    return t.length === 0 ? [] : [t.toLowerCase()];
  });
  if (names.length === 0) return 'identity';
  if (names.length > 1) return undefined;
  return CODINGS.get(names[0]!);
}

/**
 * An Accept-Encoding value restricted to the codings the gateway can rewrite (gzip, x-gzip,
 * deflate, br, identity), q-values kept; `identity` when none is left (RFC 9110 section
 * 12.5.3: without the field a server may pick any coding). `*` goes too: it would admit zstd.
 * The same string when nothing had to go.
 */
export function rewritableAcceptEncoding(value: string): string {
  const kept: string[] = [];
  let dropped = false;
  for (const entry of value.split(',')) {
    const semi = entry.indexOf(';');
    const name = (semi === -1 ? entry : entry.slice(0, semi)).trim().toLowerCase();
    if (name.length === 0) continue;
    if (CODINGS.has(name)) kept.push(entry.trim());
    else dropped = true;
  }
  if (!dropped) return value;
  return kept.length === 0 ? 'identity' : kept.join(', ');
}

/** How a deflate body is framed: RFC 9110 says zlib (RFC 1950); some servers send raw RFC 1951. */
export type DeflateFraming = 'zlib' | 'raw';

/** The framing of a deflate body from its first two bytes (RFC 1950 section 2.2 header check). */
export function deflateFraming(b0: number, b1: number): DeflateFraming {
  const zlibHeader = (b0 & 0x0f) === 8 && b0 >> 4 <= 7 && ((b0 << 8) | b1) % 31 === 0;
  return zlibHeader ? 'zlib' : 'raw';
}

/*
 * Every write is flushed through (Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH): a page the backend
 * sends in pieces reaches the client in pieces, at a cost of a few bytes per write. Levels:
 * zlib's default 6 for gzip and deflate (what most backends use); brotli quality 5 (11, its
 * default, took 72 ms on a 20 KiB page) and a 256 KiB window to bound memory per response. On
 * a 20 KiB page, decoding and encoding again cost about the same at gzip 1, 4 and 6 and brotli
 * 4 and 5 (measured): the per-page costs (two zlib streams, thread-pool round trips) dominate.
 */
const DECODE: ZlibOptions = { flush: constants.Z_SYNC_FLUSH };
const ENCODE: ZlibOptions = { flush: constants.Z_SYNC_FLUSH };
const BROTLI_ENCODE: BrotliOptions = {
  flush: constants.BROTLI_OPERATION_FLUSH,
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 5,
    [constants.BROTLI_PARAM_LGWIN]: 18,
    [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
  },
};

/** A decoder and an encoder of one compressed coding, in the framing the body came in. */
export function codecPair(
  coding: Exclude<Coding, 'identity'>,
  framing: DeflateFraming,
): { decoder: Transform; encoder: Transform } {
  switch (coding) {
    case 'gzip':
      return { decoder: createGunzip(DECODE), encoder: createGzip(ENCODE) };
    case 'deflate':
      return framing === 'zlib'
        ? { decoder: createInflate(DECODE), encoder: createDeflate(ENCODE) }
        : { decoder: createInflateRaw(DECODE), encoder: createDeflateRaw(ENCODE) };
    case 'br':
      return {
        decoder: createBrotliDecompress(),
        encoder: createBrotliCompress(BROTLI_ENCODE),
      };
  }
}

// RFC 4648 section 5 alphabet, no padding. Decoding is strict where Node's Buffer decoder is
// lenient (it skips unknown characters and ignores trailing bits): every accepted string maps to
// exactly one byte sequence and back, so a token has a single spelling (one cache key, one log
// form) and garbage is rejected before any crypto runs.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** Encodes bytes as URL-safe base64 without padding. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** The number of bytes `text.length` characters of unpadded base64url decode to, or -1. */
export function decodedLength(chars: number): number {
  const rest = chars % 4;
  if (rest === 1) return -1;
  return ((chars - rest) / 4) * 3 + (rest === 0 ? 0 : rest - 1);
}

/**
 * Decodes unpadded base64url into `out` and returns the byte count, or -1 when `text` holds a
 * character outside the alphabet (padding included), has an impossible length, sets bits past
 * the last byte (a non-canonical spelling) or does not fit in `out`. Never throws.
 */
export function decodeBase64UrlInto(text: string, out: Uint8Array): number {
  const length = decodedLength(text.length);
  if (length < 0 || length > out.length) return -1;
  const full = text.length - (text.length % 4);
  let o = 0;
  // Any invalid character makes its sextet -1; OR-ing them all keeps the check out of the loop.
  let bad = 0;
  for (let i = 0; i < full; i += 4) {
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    const c = sextet(text, i + 2);
    const d = sextet(text, i + 3);
    bad |= a | b | c | d;
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 15) << 4) | (c >> 2);
    out[o++] = ((c & 3) << 6) | d;
  }
  const rest = text.length - full;
  if (rest > 0) {
    const a = sextet(text, full);
    const b = sextet(text, full + 1);
    bad |= a | b;
    out[o++] = (a << 2) | (b >> 4);
    if (rest === 2) {
      if ((b & 15) !== 0) return -1;
    } else {
      const c = sextet(text, full + 2);
      bad |= c;
      out[o++] = ((b & 15) << 4) | (c >> 2);
      if ((c & 3) !== 0) return -1;
    }
  }
  return bad < 0 ? -1 : length;
}

/** Decodes unpadded base64url into a new array, or returns null when the text is not canonical. */
export function decodeBase64Url(text: string): Uint8Array | null {
  const length = decodedLength(text.length);
  if (length < 0) return null;
  const out = new Uint8Array(length);
  return decodeBase64UrlInto(text, out) === length ? out : null;
}

function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < 128 ? DECODE[code]! : -1;
}

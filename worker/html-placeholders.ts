/*
 * The CSRF placeholders of HTML pages (README "CSRF tokens in pages"): `{{ csrf_token }}` and
 * `{{csrf_token}}`, exactly these bytes (the original's spelling and its compact form), replaced
 * in a body that arrives in chunks. Only the longest tail of a chunk that could still begin a
 * placeholder is held back for the next one (at most 15 bytes), so a page is never buffered
 * whole and its bytes leave as they come.
 */

/** The spellings replaced, as bytes (ASCII: the same in UTF-8 and every ASCII-compatible charset). */
export const PLACEHOLDERS: readonly Buffer[] = Object.freeze([
  Buffer.from('{{ csrf_token }}', 'latin1'),
  Buffer.from('{{csrf_token}}', 'latin1'),
]);

const OPEN = Buffer.from('{{', 'latin1');
const EMPTY = Buffer.alloc(0);

/** Whether `buf[from..]` holds all of `p` (1), a proper prefix of it that ends the buffer (0), or neither (-1). */
function matchAt(buf: Buffer, from: number, p: Buffer): 1 | 0 | -1 {
  const available = buf.length - from;
  const n = Math.min(available, p.length);
  for (let i = 0; i < n; i++) if (buf[from + i] !== p[i]) return -1;
  return n === p.length ? 1 : 0;
}

/**
 * Replaces the placeholders of one response body, chunk by chunk. `token` is called at most
 * once, when the first placeholder is found: every placeholder of the page gets the same value,
 * and a page without one mints nothing. Output equals input when there is no placeholder (a
 * chunk without one is passed on as the same Buffer). A chunk with placeholders comes out as
 * pieces (views of the chunk, and the token), not copied into one buffer: measured, allocating
 * and filling 20 KiB cost 3-25 µs per page against 0.3 µs for the views.
 */
export class PlaceholderReplacer {
  readonly #token: () => string;
  #value: Buffer | undefined;
  /** Bytes held back from the previous chunk: the start of a possible placeholder. */
  #held: Buffer = EMPTY;

  constructor(token: () => string) {
    this.#token = token;
  }

  /** The bytes to send for `chunk`, in order; none when everything is held back. */
  push(chunk: Buffer): Buffer[] {
    const buf = this.#held.length === 0 ? chunk : Buffer.concat([this.#held, chunk]);
    this.#held = EMPTY;
    let pieces: Buffer[] | undefined;
    let copied = 0;
    let at = buf.indexOf(OPEN);
    while (at !== -1) {
      let found: Buffer | undefined;
      let partial = false;
      for (const p of PLACEHOLDERS) {
        const m = matchAt(buf, at, p);
        if (m === 1) found = p;
        else if (m === 0) partial = true;
      }
      if (found !== undefined) {
        pieces ??= [];
        if (at > copied) pieces.push(buf.subarray(copied, at));
        pieces.push(this.#replacement());
        copied = at + found.length;
        at = buf.indexOf(OPEN, copied);
      } else if (partial) {
        // The chunk ends inside what may still become a placeholder.
        this.#held = Buffer.from(buf.subarray(at));
        return this.#output(buf, pieces, copied, at);
      } else {
        at = buf.indexOf(OPEN, at + 1);
      }
    }
    // Every `{{` was looked at: only a lone `{` ending the chunk may still open a placeholder.
    const tail = buf.length > copied && buf[buf.length - 1] === 0x7b ? 1 : 0;
    if (tail > 0) this.#held = Buffer.from(buf.subarray(buf.length - tail));
    return this.#output(buf, pieces, copied, buf.length - tail);
  }

  /** How many bytes are held back now (at most a placeholder's length - 1). */
  get heldBytes(): number {
    return this.#held.length;
  }

  /** What is still held back when the body ends: it was no placeholder after all. */
  end(): Buffer {
    const rest = this.#held;
    this.#held = EMPTY;
    return rest;
  }

  #replacement(): Buffer {
    this.#value ??= Buffer.from(this.#token(), 'latin1');
    return this.#value;
  }

  #output(buf: Buffer, pieces: Buffer[] | undefined, copied: number, upTo: number): Buffer[] {
    const out = pieces ?? [];
    if (upTo > copied)
      out.push(copied === 0 && upTo === buf.length ? buf : buf.subarray(copied, upTo));
    return out;
  }
}

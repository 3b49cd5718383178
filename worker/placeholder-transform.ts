/*
 * The response side of CSRF (README "CSRF tokens in pages"): the placeholders of proxied HTML
 * pages replaced by a token, streaming, in identity, gzip, deflate and br bodies. Which
 * responses are rewritten and what their head then says is decided here; the byte work is
 * html-placeholders.ts (the scan) and recoded-body.ts (compressed bodies).
 */

import type { Logger } from '../shared/log.js';
import { bodyCoding } from './content-coding.js';
import { PlaceholderReplacer } from './html-placeholders.js';
import type { BodySink, ResponseBodyTransform, ResponseHeaders } from './pipeline.js';
import { RecodedBody } from './recoded-body.js';

/** Whether a Content-Type is HTML: `text/html`, any letter case, parameters allowed. */
export function isHtml(value: string | string[] | undefined): boolean {
  if (typeof value !== 'string') return false;
  const semi = value.indexOf(';');
  const type = semi === -1 ? value : value.slice(0, semi);
  return type.trim().toLowerCase() === 'text/html';
}

/*
 * Fields that describe the upstream's bytes, not the page sent: validators and digests of the
 * body (a strong ETag or a digest would be false; a conditional request answered 304 would
 * bring back a page with a spent token), and byte ranges (a range of the upstream's bytes is
 * not a range of this page). Expires goes with Cache-Control being replaced.
 */
const STALE_FIELDS = [
  'etag',
  'content-md5',
  'digest',
  'repr-digest',
  'content-digest',
  'accept-ranges',
  'expires',
] as const;

/**
 * Each page carries a token bound to one session (and possibly single use): no cache may keep
 * it, shared or private (a page from the browser's cache would hold a spent or expired token).
 */
export const PAGE_CACHE_CONTROL = 'private, no-store';

/** Content codings already reported, so that each is logged once per edge (bounded). */
const reported = new Set<string>();
const MAX_REPORTED = 32;

function reportUntouched(log: Logger, coding: string | string[]): void {
  const text = (typeof coding === 'string' ? coding : coding.join(', ')).slice(0, 64);
  if (reported.has(text) || reported.size >= MAX_REPORTED) return;
  reported.add(text);
  log.warn('HTML page passed without CSRF placeholders replaced: content coding not handled', {
    coding: text,
  });
}

/**
 * One response's transform. Accepts HTML (`text/html`) with a body whose coding it can undo,
 * except 206 (a part of a page cannot be rewritten: the placeholder may straddle the range,
 * and the range's offsets would no longer hold). `token` is called at most once, when the
 * first placeholder is found.
 */
export class PlaceholderTransform implements ResponseBodyTransform {
  readonly #token: () => string;
  readonly #sink: BodySink;
  readonly #log: Logger;
  /** Set once a response is accepted. */
  #replacer: PlaceholderReplacer | undefined;
  /** Set for a compressed response. */
  #recoded: RecodedBody | undefined;

  constructor(token: () => string, sink: BodySink, log: Logger) {
    this.#token = token;
    this.#sink = sink;
    this.#log = log;
  }

  start(status: number, headers: ResponseHeaders): boolean {
    if (status === 206 || !isHtml(headers['content-type'])) return false;
    const field = headers['content-encoding'];
    const coding = bodyCoding(field);
    if (coding === undefined) {
      reportUntouched(this.#log, field ?? '');
      return false;
    }
    const replacer = new PlaceholderReplacer(this.#token);
    this.#replacer = replacer;
    if (coding !== 'identity') this.#recoded = new RecodedBody(coding, replacer, this.#sink);
    for (const name of STALE_FIELDS) delete headers[name];
    headers['cache-control'] = PAGE_CACHE_CONTROL;
    return true;
  }

  push(chunk: Buffer): boolean {
    if (this.#recoded !== undefined) return this.#recoded.push(chunk);
    const pieces = this.#replacer!.push(chunk);
    if (pieces.length === 0) return true;
    return this.#sink.write(pieces.length === 1 ? pieces[0]! : pieces);
  }

  end(): void {
    if (this.#recoded !== undefined) {
      this.#recoded.end();
      return;
    }
    const tail = this.#replacer?.end();
    if (tail !== undefined && tail.length > 0) this.#sink.write(tail);
    this.#sink.end();
  }

  drained(): void {
    if (this.#recoded !== undefined) this.#recoded.drained();
    else this.#sink.ready();
  }

  destroy(): void {
    this.#recoded?.destroy();
  }
}

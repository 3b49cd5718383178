/*
 * A compressed response body rewritten on the fly: decoded, passed through a rewrite, encoded
 * again with the same coding, as zlib streams (they run on libuv's thread pool, so output comes
 * later than input). Memory per response stays bounded by the streams' buffers whatever the
 * page's size or compression ratio: Node's zlib stops inflating while its output is unread, so a
 * small body that inflates to gigabytes (a "zip bomb") is read no faster than the client takes
 * the result.
 *
 * Backpressure, end to end: the encoder's output goes to the sink; when the client is full the
 * encoder pauses, its input buffer fills, the decoder is paused, its input buffer fills, and
 * `push` returns false: the relay stops reading the upstream. Each stage resumes the one before
 * it when it drains.
 */

import type { Transform } from 'node:stream';
import { GatewayError } from '../shared/errors.js';
import { type Coding, codecPair, deflateFraming } from './content-coding.js';
import type { BodySink } from './pipeline.js';

/**
 * Compressed bodies being rewritten at once in this process, at most. Each holds two zlib
 * states (measured RSS: about 0.5 MB for gzip/deflate, 1 MB for brotli), so the cap bounds
 * them to about 64-128 MB per edge whatever the number of clients; a page beyond it is refused
 * with 503 OVERLOADED (Retry-After: 1) before anything of it is sent.
 */
export const MAX_RECODED_BODIES = 128;
let recoding = 0;

/** How many compressed bodies this process is rewriting now (for tests and metrics). */
export function recodedBodiesInFlight(): number {
  return recoding;
}

/** The rewrite of the decoded bytes: what to send for a chunk, and what is left at the end. */
export interface Rewrite {
  push(chunk: Buffer): Buffer[];
  end(): Buffer;
}

/**
 * One compressed body (`coding`: gzip, deflate in either framing, br) rewritten by `rewrite`
 * into `sink`. The zlib streams are made at the first byte, so an empty body allocates none.
 */
export class RecodedBody {
  readonly #coding: Exclude<Coding, 'identity'>;
  readonly #rewrite: Rewrite;
  readonly #sink: BodySink;
  #decoder: Transform | undefined;
  #encoder: Transform | undefined;
  /** A deflate body's first byte, kept until the second tells its framing. */
  #first: Buffer | undefined;
  #over = false;
  /** This body holds one of the {@link MAX_RECODED_BODIES} places. */
  #counted = false;

  constructor(coding: Exclude<Coding, 'identity'>, rewrite: Rewrite, sink: BodySink) {
    this.#coding = coding;
    this.#rewrite = rewrite;
    this.#sink = sink;
  }

  /** Takes compressed bytes; false: take no more until the sink's `ready` is called. */
  push(chunk: Buffer): boolean {
    if (this.#over) return true;
    let decoder = this.#decoder;
    if (decoder === undefined) {
      const bytes = this.#first === undefined ? chunk : Buffer.concat([this.#first, chunk]);
      if (bytes.length < 2 && this.#coding === 'deflate') {
        this.#first = Buffer.from(bytes);
        return true;
      }
      this.#first = undefined;
      decoder = this.#open(bytes);
      return decoder === undefined ? true : decoder.write(bytes);
    }
    return decoder.write(chunk);
  }

  /** The compressed body ended. An empty one stays empty (nothing to decode). */
  end(): void {
    if (this.#over) return;
    if (this.#decoder === undefined && this.#first !== undefined) this.#open(this.#first);
    if (this.#over) return;
    if (this.#decoder === undefined) {
      this.#over = true;
      this.#sink.end();
      return;
    }
    this.#decoder.end();
  }

  /** The client took what it was given: the encoder may produce again. */
  drained(): void {
    this.#encoder?.resume();
  }

  /** Stops everything and frees the zlib state; nothing reaches the sink afterwards. */
  destroy(): void {
    this.#over = true;
    this.#decoder?.destroy();
    this.#encoder?.destroy();
    this.#release();
  }

  #release(): void {
    if (!this.#counted) return;
    this.#counted = false;
    recoding--;
  }

  /** The zlib streams, or undefined when the cap is reached (the sink is then failed). */
  #open(head: Buffer): Transform | undefined {
    if (recoding >= MAX_RECODED_BODIES) {
      this.#over = true;
      this.#sink.fail(
        new GatewayError('OVERLOADED', {
          cause: `${MAX_RECODED_BODIES} compressed pages already being rewritten`,
        }),
      );
      return undefined;
    }
    recoding++;
    this.#counted = true;
    const framing = head.length >= 2 ? deflateFraming(head[0]!, head[1]!) : 'raw';
    const { decoder, encoder } = codecPair(this.#coding, framing);
    this.#decoder = decoder;
    this.#encoder = encoder;
    const rewrite = this.#rewrite;
    const sink = this.#sink;
    decoder.on('data', (decoded: Buffer) => {
      const pieces = rewrite.push(decoded);
      if (pieces.length === 0) return;
      // One write: each is a flush and a thread-pool round trip.
      const out = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
      if (!encoder.write(out)) decoder.pause();
    });
    encoder.on('drain', () => decoder.resume());
    decoder.on('drain', () => {
      if (!this.#over) sink.ready();
    });
    decoder.on('end', () => {
      const tail = rewrite.end();
      if (tail.length > 0) encoder.end(tail);
      else encoder.end();
    });
    encoder.on('data', (encoded: Buffer) => {
      if (!this.#over && !sink.write(encoded)) encoder.pause();
    });
    encoder.on('end', () => {
      this.#release();
      if (this.#over) return;
      this.#over = true;
      sink.end();
    });
    decoder.on('error', (err) => this.#fail(err, 'decode'));
    encoder.on('error', (err) => this.#fail(err, 'encode'));
    return decoder;
  }

  #fail(err: Error, stage: 'decode' | 'encode'): void {
    if (this.#over) return;
    this.destroy();
    const code = (err as { code?: string }).code;
    const what =
      stage === 'decode'
        ? `corrupt ${this.#coding} body from the upstream`
        : `${this.#coding} encoding failed`;
    this.#sink.fail(new Error(`${what} (${code ?? 'error'}: ${err.message})`));
  }
}

import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../shared/errors.js';
import { upstreamError } from './upstream-error.js';
import { forEachResponseHeader } from './upstream-headers.js';
import { abortExchange, type Exchange, SERVER_HEADER } from './uws-io.js';

const NO_BODY_STATUS = new Set([204, 304]);
const NON_ASCII = /[^\x00-\x7f]/;

/*
 * undici decodes header bytes as latin1, uWS encodes strings as UTF-8: a value with bytes above
 * 0x7f (a raw UTF-8 filename in Content-Disposition) goes back out as the same bytes only when
 * handed to uWS as a latin1 buffer.
 */
function writeHeaderBytes(res: Exchange['res']): (name: string, value: string) => void {
  return (name, value) => {
    res.writeHeader(name, NON_ASCII.test(value) ? Buffer.from(value, 'latin1') : value);
  };
}

/**
 * An undici dispatch handler that writes the upstream response straight into the uWS response.
 * This is the proxy's hot path: measured against `pool.request()` + a Readable per response,
 * the handler skips a stream, a promise and several closures per request.
 *
 * Backpressure: with a known length uWS's `tryEnd` may accept only part of a chunk; the rest is
 * kept and the upstream paused until uWS reports the socket writable. Without a length, `write`
 * buffers the whole chunk and returns false when the socket is full: pause until writable.
 */
export class UpstreamRelay implements Dispatcher.DispatchHandler {
  readonly #ex: Exchange;
  readonly #resolve: () => void;
  readonly #reject: (err: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #total: number | undefined;
  #pending: Buffer | undefined;
  #headers: Record<string, string | string[] | undefined> | undefined;
  #pendingOffset = 0;
  #headWritten = false;
  #settled = false;

  constructor(ex: Exchange, resolve: () => void, reject: (err: unknown) => void) {
    this.#ex = ex;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#ex.done) {
      controller.abort(new GatewayError('BAD_REQUEST', { cause: 'client gone' }));
      return;
    }
    this.#ex.onAbort = () =>
      controller.abort(new GatewayError('BAD_REQUEST', { cause: 'client gone' }));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    const ex = this.#ex;
    if (ex.done) {
      controller.abort(new GatewayError('BAD_REQUEST', { cause: 'client gone' }));
      return;
    }
    const lengthHeader = headers['content-length'];
    const length = typeof lengthHeader === 'string' ? Number(lengthHeader) : Number.NaN;
    this.#total = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
    ex.status = statusCode;
    this.#headers = headers;
    if (ex.method === 'HEAD' || NO_BODY_STATUS.has(statusCode) || this.#total === 0) {
      ex.done = true;
      ex.res.cork(() => this.#endEmpty());
      return;
    }
    ex.res.onWritable((offset) => this.#onWritable(offset));
  }

  /*
   * The head is written in the same cork as the first body bytes: uWS flushes at the end of
   * each cork, so a small response then leaves in one syscall instead of two (measured: the
   * separate head cork was the largest self-time of the proxy path).
   */
  #writeHead(): void {
    const headers = this.#headers;
    if (headers === undefined) return;
    this.#headers = undefined;
    this.#headWritten = true;
    const ex = this.#ex;
    const res = ex.res;
    res.writeStatus(`${ex.status} ${STATUS_CODES[ex.status] ?? 'Unknown'}`);
    res.writeHeader('server', SERVER_HEADER);
    forEachResponseHeader(headers, writeHeaderBytes(res));
    // Draining, or the upstream answered before the upload ended: this connection is done.
    if (ex.closeConnection || ex.unreadBody) res.writeHeader('connection', 'close');
  }

  #endEmpty(): void {
    this.#writeHead();
    const ex = this.#ex;
    // endWithoutBody(undefined) would announce a Content-Length of 2^63: only pass numbers.
    // While draining, #writeHead has written `connection: close`.
    if (ex.method === 'HEAD' && this.#total !== undefined) ex.res.endWithoutBody(this.#total);
    else if (ex.method === 'HEAD' || NO_BODY_STATUS.has(ex.status)) ex.res.endWithoutBody();
    else ex.res.end();
  }

  /** Upgrades (CONNECT, 101) are refused before dispatch; one that slips through is cut. */
  onRequestUpgrade(controller: Dispatcher.DispatchController): void {
    controller.abort(new GatewayError('METHOD_NOT_SUPPORTED', { cause: 'upstream upgraded' }));
    this.#settle(new GatewayError('UPSTREAM_FAILED', { cause: 'unexpected upgrade' }));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const ex = this.#ex;
    if (ex.done) return;
    const res = ex.res;
    const total = this.#total;
    res.cork(() => {
      this.#writeHead();
      if (total === undefined) {
        if (!res.write(chunk)) controller.pause();
        return;
      }
      this.#pendingOffset = res.getWriteOffset();
      const [ok, done] = res.tryEnd(chunk, total);
      if (done) ex.done = true;
      else if (!ok) {
        this.#pending = chunk;
        controller.pause();
      }
    });
  }

  onResponseEnd(): void {
    const ex = this.#ex;
    if (!ex.done && this.#total === undefined) {
      ex.done = true;
      ex.res.cork(() => {
        this.#writeHead();
        ex.res.end();
      });
    } else if (!ex.done && !this.#pending) {
      // The upstream sent fewer bytes than it announced: the response cannot be completed.
      abortExchange(ex);
      this.#settle(new GatewayError('UPSTREAM_FAILED', { cause: 'short upstream body' }));
      return;
    }
    // With a pending tail, onWritable finishes the response after the upstream is done.
    this.#settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    // Once the head is out, the only honest signal left is a cut connection; before that the
    // client still gets a clean 502/504.
    if (this.#headWritten) abortExchange(this.#ex);
    this.#settle(this.#ex.aborted ? undefined : err);
  }

  #onWritable(offset: number): boolean {
    const ex = this.#ex;
    if (ex.done) return true;
    if (this.#total === undefined) {
      this.#controller?.resume();
      return true;
    }
    const pending = this.#pending;
    if (!pending) return true;
    const [ok, done] = ex.res.tryEnd(pending.subarray(offset - this.#pendingOffset), this.#total);
    if (done) ex.done = true;
    if (ok || done) {
      // undici is paused on this chunk: resume it even after the last one, or it never
      // reports the end and the request (and its upstream connection) stays open.
      this.#pending = undefined;
      this.#controller?.resume();
    }
    return ok || done;
  }

  /** Settles once; a failure is mapped to its client-facing code, a client abort is no failure. */
  #settle(err?: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    if (err === undefined || this.#ex.aborted) this.#resolve();
    else this.#reject(upstreamError(err));
  }
}

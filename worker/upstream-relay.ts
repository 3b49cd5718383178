import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../shared/errors.js';
import { forEachResponseHeader } from './upstream-headers.js';
import { abortExchange, type Exchange, SERVER_HEADER } from './uws-io.js';

const NO_BODY_STATUS = new Set([204, 304]);

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
  #pendingOffset = 0;
  #headSent = false;
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
    this.#ex.onAbort = () => controller.abort(new GatewayError('BAD_REQUEST', { cause: 'client gone' }));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    const ex = this.#ex;
    if (ex.done) return controller.abort(new GatewayError('BAD_REQUEST', { cause: 'client gone' }));
    const lengthHeader = headers['content-length'];
    const length = typeof lengthHeader === 'string' ? Number(lengthHeader) : Number.NaN;
    this.#total = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
    const noBody = ex.method === 'HEAD' || NO_BODY_STATUS.has(statusCode);
    const res = ex.res;
    ex.status = statusCode;
    this.#headSent = true;
    res.cork(() => {
      res.writeStatus(`${statusCode} ${STATUS_CODES[statusCode] ?? 'Unknown'}`);
      res.writeHeader('server', SERVER_HEADER);
      forEachResponseHeader(headers, (name, value) => res.writeHeader(name, value));
      if (noBody) {
        ex.done = true;
        res.endWithoutBody(ex.method === 'HEAD' ? this.#total : undefined);
      } else if (this.#total === 0) {
        ex.done = true;
        res.end();
      }
    });
    if (!ex.done) res.onWritable((offset) => this.#onWritable(offset));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const ex = this.#ex;
    if (ex.done) return;
    const res = ex.res;
    const total = this.#total;
    res.cork(() => {
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
      ex.res.cork(() => ex.res.end());
    } else if (!ex.done && !this.#pending) {
      // The upstream sent fewer bytes than it announced: the response cannot be completed.
      abortExchange(ex);
      return this.#settle(new GatewayError('UPSTREAM_FAILED', { cause: 'short upstream body' }));
    }
    // With a pending tail, onWritable finishes the response after the upstream is done.
    this.#settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    // Once the head is out, the only honest signal left is a cut connection.
    if (this.#headSent) abortExchange(this.#ex);
    if (this.#ex.aborted) return this.#settle();
    this.#settle(err);
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
    else if (ok) {
      this.#pending = undefined;
      this.#controller?.resume();
    }
    return ok;
  }

  #settle(err?: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    if (err === undefined) this.#resolve();
    else this.#reject(err);
  }
}

import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError, statusLine } from '../shared/errors.js';
import { backendPool } from './backend-pool.js';
import type { Backend } from './balancer.js';
import type { BorrowingHandler } from './h1-client.js';
import type { BodySink, ResponseBodyTransform } from './pipeline.js';
import type { RequestContext } from './request-context.js';
import { upstreamError } from './upstream-error.js';
import { upstreamPathFor } from './upstream-url.js';
import {
  abortExchange,
  corked,
  type Exchange,
  endProxied,
  endProxiedBodiless,
  endProxiedWith,
  onClientAbort,
  onClientWritable,
  tryEndChunk,
  writeChunk,
  writeProxiedHead,
} from './uws-io.js';

const NO_BODY_STATUS = new Set([204, 304]);

/**
 * Methods whose request may be sent twice (RFC 9110 section 9.2.2), among those a route can
 * forward (TRACE and CONNECT are refused before routing).
 */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/*
 * Failures that mean the upstream connection was dead before it answered anything: a pooled
 * keep-alive connection that the upstream closed while idle (a race no client can avoid), or a
 * reset. On a connection opened for the request, the same failure is the backend's own.
 */
const STALE_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/** Failures to open a connection: the request cannot have reached the backend. */
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** One try of a request: where it goes and what came before. */
export interface Attempt {
  /** The balanced route's backend; undefined for a route without a balancer (its target). */
  readonly backend: Backend | undefined;
  /** On a connection opened for it: a dead connection is then no keep-alive race. */
  readonly fresh: boolean;
  /** Backends this request already failed on; failover never returns to them. */
  readonly tried: readonly Backend[];
}

const NO_BACKENDS: readonly Backend[] = Object.freeze([]);
/** The first attempt of a route without a balancer: shared, nothing is allocated per request. */
const TARGET_ATTEMPT: Attempt = Object.freeze({
  backend: undefined,
  fresh: false,
  tried: NO_BACKENDS,
});

/** A request's first attempt. */
export function firstAttempt(backend: Backend | undefined): Attempt {
  return backend === undefined ? TARGET_ATTEMPT : { backend, fresh: false, tried: NO_BACKENDS };
}

/**
 * How a failure before any answer reads: `stale` (a dead pooled connection, maybe a keep-alive
 * race; or a pool a reload closed before the request left), `down` (the backend did not take the connection, or reset one opened for this
 * request), or `other` (a timeout after sending, a TLS error...: not the backend's absence).
 */
export function classify(
  code: string,
  written: boolean,
  fresh: boolean,
): 'stale' | 'down' | 'other' {
  if (!written && NOT_CONNECTED.has(code)) return 'down';
  // The pool was closed by a reload while this request, routed by the generation before, was
  // still in an async step (a filter reading its body): it never left. It goes on a new
  // connection of its origin, as a stale one would (once: a fresh pool is taken anew).
  if (code === 'UND_ERR_CLOSED' && !written) return fresh ? 'other' : 'stale';
  if (STALE_CONNECTION.has(code)) return fresh ? 'down' : 'stale';
  return 'other';
}

/**
 * Whether sending the request again cannot do harm: it never left (undici had not started
 * writing it) and its body was not read, or it is idempotent without a body (RFC 9110 section
 * 9.2.2). A body that started streaming is never replayed.
 */
function replayable(options: Dispatcher.DispatchOptions, written: boolean): boolean {
  const body = options.body;
  if (body === null || body === undefined) return !written || IDEMPOTENT.has(options.method);
  if (written) return false;
  // A body read whole by a step (filters): the same bytes go again.
  if (Buffer.isBuffer(body)) return true;
  const stream = body as Readable;
  return !stream.destroyed && !stream.readableDidRead;
}

/**
 * The one decision of "may this request be sent again, and where", for a failure before any
 * answer. A stale keep-alive connection: the same backend once more, on a new connection. A
 * backend down (refused, connect timeout, reset on a fresh connection) on a balanced route: the
 * next backend the balancer picks among those not tried yet. Anything else, or a request that
 * is not replayable: undefined (the failure is the answer). An HTTP status never gets here.
 */
export function nextAttempt(
  failure: 'stale' | 'down' | 'other',
  options: Dispatcher.DispatchOptions,
  written: boolean,
  attempt: Attempt,
  pick: ((tried: readonly Backend[]) => Backend | undefined) | undefined,
): Attempt | undefined {
  if (failure === 'other' || !replayable(options, written)) return undefined;
  if (failure === 'stale') return { backend: attempt.backend, fresh: true, tried: attempt.tried };
  if (pick === undefined || attempt.backend === undefined) return undefined;
  const tried = [...attempt.tried, attempt.backend];
  const backend = pick(tried);
  return backend === undefined ? undefined : { backend, fresh: false, tried };
}

/**
 * An undici dispatch handler that writes the upstream response straight into the uWS response.
 * This is the proxy's hot path: measured against `pool.request()` + a Readable per response,
 * the handler skips a stream, a promise and several closures per request.
 *
 * Backpressure: with a known length uWS's `tryEnd` may accept only part of a chunk; the rest is
 * kept and the upstream paused until uWS reports the socket writable. Without a length, `write`
 * buffers the whole chunk and returns false when the socket is full: pause until writable.
 *
 * Chunks from the gateway's own client are views of its read buffer (BorrowingHandler): uWS
 * copies what it takes before `write`/`tryEnd`/`end` return, and the part of a chunk it refused
 * is copied here before the relay waits; with a transform, the client copies every chunk.
 *
 * A route's body transform (pipeline.ts) sits between the two when it accepts a response: the
 * relay is its sink. Its output may come later than the upstream's bytes (zlib), so the response
 * then ends, and the request settles, when the transform says so; the upstream is paused while
 * the transform cannot take more, and the transform is told when the client drains.
 */
export class UpstreamRelay implements BorrowingHandler, BodySink {
  readonly #ctx: RequestContext;
  readonly #ex: Exchange;
  readonly #options: Dispatcher.DispatchOptions;
  readonly #resolve: () => void;
  readonly #reject: (err: unknown) => void;
  readonly #attempt: Attempt;
  #transform: ResponseBodyTransform | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #total: number | undefined;
  #pending: Uint8Array | undefined;
  #headers: Record<string, string | string[] | undefined> | undefined;
  /** Body bytes uWS took, in whole chunks: where a refused chunk starts. */
  #bodyOffset = 0;
  #pendingOffset = 0;
  /** The client's drain handler is registered. */
  #waiting = false;
  /** undici started writing the request. */
  #written = false;
  /** Some response byte arrived (1xx included): the request reached the upstream. */
  #answered = false;
  #headWritten = false;
  #settled = false;

  /**
   * Relays the answer to `options` (dispatched by the caller) into `ctx`'s exchange; settles
   * `resolve`/`reject` once. `attempt`: where this try goes; a failure before any answer may
   * lead to another try (`nextAttempt`).
   */
  constructor(
    ctx: RequestContext,
    options: Dispatcher.DispatchOptions,
    resolve: () => void,
    reject: (err: unknown) => void,
    attempt: Attempt,
  ) {
    this.#ctx = ctx;
    this.#ex = ctx.ex;
    this.#options = options;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#attempt = attempt;
    this.#transform = ctx.route?.transform?.(ctx, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#written = true;
    if (this.#ex.done) {
      controller.abort(new GatewayError('BAD_REQUEST', { cause: 'client gone' }));
      return;
    }
    onClientAbort(this.#ex, () => {
      // The gateway's own cut of the request (a body past its bounds) says why.
      controller.abort(
        this.#ex.cutCause ?? new GatewayError('BAD_REQUEST', { cause: 'client gone' }),
      );
      // A transform may still be working after the upstream ended: nothing settles it then.
      if (this.#transform !== undefined) {
        this.#dropTransform();
        this.#settle();
      }
    });
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx are interim (RFC 9110 section 15.2): the final answer follows on the same exchange.
    // uWS cannot send an interim answer, so they are not relayed (100 Continue to the client is
    // uWS's own); 101 never gets here (upgrades are refused before dispatch).
    if (statusCode < 200) return;
    const ctx = this.#ctx;
    if (ctx.upstreamAt !== 0) ctx.upstreamMs = performance.now() - ctx.upstreamAt;
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
    const edit = ctx.route?.headEdit;
    if (edit !== undefined) edit(statusCode, headers);
    const transform = this.#transform;
    if (ex.method === 'HEAD' || NO_BODY_STATUS.has(statusCode)) {
      this.#transform = undefined;
      // A HEAD answer's head says what GET's would: a transformed body has no known length.
      if (!NO_BODY_STATUS.has(statusCode) && transform?.start(statusCode, headers)) {
        this.#total = undefined;
      }
      corked(ex, () => {
        this.#writeHead();
        endProxiedBodiless(ex, ex.method === 'HEAD' ? this.#total : undefined);
      });
      return;
    }
    // A transformed body changes length: it goes out chunked.
    if (transform?.start(statusCode, headers)) this.#total = undefined;
    else this.#transform = undefined;
    if (this.#total === 0) {
      corked(ex, () => {
        this.#writeHead();
        endProxied(ex);
      });
      return;
    }
  }

  /*
   * The client's drain handler is registered only once a write was refused (uWS's own pattern:
   * tryEnd, then onWritable when it did not fit): most answers fit at once, and skip a native
   * call and a closure.
   */
  #waitWritable(): void {
    if (this.#waiting) return;
    this.#waiting = true;
    onClientWritable(this.#ex, (offset) => this.#onWritable(offset));
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
    // The standard reason phrase: the upstream's own is not relayed.
    writeProxiedHead(this.#ex, statusLine(this.#ex.status), headers);
  }

  /** undici's signal of the first byte of an answer (1xx included). */
  onResponseStarted(): void {
    this.#answered = true;
    const backend = this.#attempt.backend;
    if (backend !== undefined && backend.fails !== 0) this.#ctx.route!.balancer!.succeeded(backend);
  }

  /** Upgrades (CONNECT, 101) are refused before dispatch; one that slips through is cut. */
  onRequestUpgrade(controller: Dispatcher.DispatchController): void {
    controller.abort(new GatewayError('METHOD_NOT_SUPPORTED', { cause: 'upstream upgraded' }));
    this.#settle(new GatewayError('UPSTREAM_FAILED', { cause: 'unexpected upgrade' }));
  }

  /** Views only without a transform (which keeps chunks until it has read them). */
  get borrowsResponseData(): boolean {
    return this.#transform === undefined;
  }

  onResponseData(controller: Dispatcher.DispatchController, data: Buffer): void {
    const ex = this.#ex;
    if (ex.done) return;
    const transform = this.#transform;
    if (transform !== undefined) {
      if (!transform.push(data)) controller.pause();
      return;
    }
    const total = this.#total;
    corked(ex, () => {
      this.#writeHead();
      if (total === undefined) {
        if (data.byteLength > 0 && !writeChunk(ex, data)) {
          controller.pause();
          this.#waitWritable();
        }
        return;
      }
      // The whole body in one read (most answers): one end() call (see endProxiedWith).
      if (this.#bodyOffset === 0 && data.byteLength === total) {
        endProxiedWith(ex, data);
        this.#bodyOffset = total;
        return;
      }
      if (tryEndChunk(ex, data, total)) {
        this.#bodyOffset += data.byteLength;
        return;
      }
      this.#pendingOffset = this.#bodyOffset;
      // A copy: `data` may be a view of the client's read buffer, reused by the next read.
      this.#pending = Buffer.from(data);
      controller.pause();
      this.#waitWritable();
    });
  }

  onResponseEnd(): void {
    const ex = this.#ex;
    const transform = this.#transform;
    if (transform !== undefined) {
      // The transform ends the response (`end` below), maybe later: zlib works off the loop.
      if (ex.done) this.#settle();
      else transform.end();
      return;
    }
    if (!ex.done && this.#total === undefined) {
      corked(ex, () => {
        this.#writeHead();
        endProxied(ex);
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
    this.#dropTransform();
    if (!this.#answered && !this.#settled && !this.#ex.done && this.#retry(err)) return;
    // Once the head is out, the only honest signal left is a cut connection; before that the
    // client still gets a clean 502/504.
    if (this.#headWritten) abortExchange(this.#ex);
    this.#settle(this.#ex.aborted ? undefined : err);
  }

  #onWritable(offset: number): boolean {
    const ex = this.#ex;
    if (ex.done) return true;
    if (this.#total === undefined) {
      const transform = this.#transform;
      if (transform === undefined) this.#controller?.resume();
      else transform.drained();
      return true;
    }
    const pending = this.#pending;
    if (!pending) return true;
    const ok = tryEndChunk(ex, pending.subarray(offset - this.#pendingOffset), this.#total);
    if (ok) {
      this.#bodyOffset = this.#pendingOffset + pending.byteLength;
      // undici is paused on this chunk: resume it even after the last one, or it never
      // reports the end and the request (and its upstream connection) stays open.
      this.#pending = undefined;
      this.#controller?.resume();
    }
    return ok;
  }

  // --- BodySink: the transform's output. ---------------------------------------------------

  /** Writes transformed bytes (the head with the first); false when the client is full. */
  write(chunk: Buffer | readonly Buffer[]): boolean {
    const ex = this.#ex;
    if (ex.done) return true;
    let ok = true;
    corked(ex, () => {
      this.#writeHead();
      if (!Array.isArray(chunk)) {
        if ((chunk as Buffer).byteLength > 0) ok = writeChunk(ex, chunk as Buffer);
        return;
      }
      for (const piece of chunk) if (piece.byteLength > 0) ok = writeChunk(ex, piece);
    });
    if (!ok) this.#waitWritable();
    return ok;
  }

  /** The transformed body is complete: the response ends and the request settles. */
  end(): void {
    this.#transform = undefined;
    const ex = this.#ex;
    if (!ex.done) {
      corked(ex, () => {
        this.#writeHead();
        endProxied(ex);
      });
    }
    this.#settle();
  }

  /** The transform can take more: upstream reading resumes. */
  ready(): void {
    this.#controller?.resume();
  }

  /**
   * The body cannot be transformed: the upstream is dropped, and the client gets a 502 when
   * nothing was sent yet, else a cut connection (a page must not look complete when it is not).
   */
  fail(cause: Error): void {
    this.#transform = undefined;
    // The transform's own refusal (OVERLOADED) as it is; anything else is the upstream's body.
    const err =
      cause instanceof GatewayError ? cause : new GatewayError('UPSTREAM_FAILED', { cause });
    this.#controller?.abort(err);
    if (this.#headWritten) abortExchange(this.#ex);
    this.#settle(err);
  }

  #dropTransform(): void {
    const transform = this.#transform;
    if (transform === undefined) return;
    this.#transform = undefined;
    transform.destroy();
  }

  /**
   * After a failure before any answer: counts it against the backend when it was one's, and
   * sends the request again where `nextAttempt` says; that relay then settles the request.
   * Returns false when the failure stands.
   */
  #retry(err: Error): boolean {
    const attempt = this.#attempt;
    const code = (err as { code?: string }).code ?? '';
    const failure = classify(code, this.#written, attempt.fresh);
    const route = this.#ctx.route!;
    const balancer = route.balancer;
    if (failure === 'down' && attempt.backend !== undefined)
      balancer?.failed(attempt.backend, code);
    const next = nextAttempt(
      failure,
      this.#options,
      this.#written,
      attempt,
      balancer && ((tried) => balancer.pick(tried)),
    );
    // A reset on a pooled connection that cannot be resent (a POST that left) is the
    // backend's failure too: a backend that accepts and resets every request is taken out.
    if (next === undefined && failure === 'stale' && attempt.backend !== undefined) {
      balancer?.failed(attempt.backend, code);
    }
    if (next === undefined) return false;
    this.#settled = true;
    let options = this.#options;
    if (next.backend !== attempt.backend) {
      options = { ...options, path: upstreamPathFor(this.#ctx, next.backend!) };
      this.#ctx.services.log.warn('upstream failover', {
        route: route.prefix,
        from: attempt.backend!.name,
        to: next.backend!.name,
        code,
      });
    }
    const origin = next.backend?.origin ?? route.origin;
    const pool =
      next.fresh || next.backend === undefined
        ? backendPool(this.#ctx.services, route.profile, origin, route.poolOptions, next.fresh)
        : next.backend.pool;
    pool.dispatch(
      options,
      new UpstreamRelay(this.#ctx, options, this.#resolve, this.#reject, next),
    );
    return true;
  }

  /** Settles once; a failure is mapped to its client-facing code, a client abort is no failure. */
  #settle(err?: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    if (err === undefined || this.#ex.aborted) this.#resolve();
    else this.#reject(upstreamError(err));
  }
}

import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpstreamPool } from './upstream-pools.js';

/** An answer of {@link upstreamRequest}: the body streams (with backpressure) as it arrives. */
export interface UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Readable;
}

/** What the gateway's own requests send: a bodiless request with its headers. */
export interface UpstreamRequestOptions {
  readonly method: 'GET' | 'HEAD';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Aborts the request (or the body's reading) with the signal's reason. */
  readonly signal?: AbortSignal;
}

/**
 * One request of the gateway's own (health checks, route login pages) through a route's pool,
 * whichever client it is (worker/upstream-pools.ts): undici's `pool.request()` is not part of
 * the pools' shared interface. Resolves at the answer's head; rejects with the pool's error
 * (its `code`) or the signal's reason. Destroying `body` aborts the request.
 */
export function upstreamRequest(
  pool: UpstreamPool,
  options: UpstreamRequestOptions,
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const signal = options.signal;
    let controller: Dispatcher.DispatchController | undefined;
    let body: Readable | undefined;
    let settled = false;
    let ended = false;
    const onAbort = () => {
      const reason = (signal?.reason as Error | undefined) ?? new Error('aborted');
      if (controller !== undefined) controller.abort(reason);
      else if (!settled) {
        settled = true;
        reject(reason);
      }
    };
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => signal?.removeEventListener('abort', onAbort);
    pool.dispatch(
      { method: options.method, path: options.path, headers: { ...options.headers } },
      {
        onRequestStart(c) {
          controller = c;
          if (settled || signal?.aborted)
            c.abort((signal?.reason as Error) ?? new Error('aborted'));
        },
        onResponseStart(c, statusCode, headers) {
          if (statusCode < 200) return;
          const stream = new Readable({
            read() {
              c.resume();
            },
            destroy(err, callback) {
              if (!ended && !c.aborted) c.abort(err ?? new Error('body discarded'));
              callback(err);
            },
          });
          body = stream;
          settled = true;
          resolve({ statusCode, headers, body: stream });
        },
        onResponseData(c, chunk) {
          if (body !== undefined && !body.push(chunk)) c.pause();
        },
        onResponseEnd() {
          ended = true;
          done();
          body?.push(null);
        },
        onResponseError(_c, err) {
          done();
          if (body !== undefined) {
            if (!body.destroyed) body.destroy(err);
          } else if (!settled) {
            settled = true;
            reject(err);
          }
        },
      },
    );
  });
}

/** Reads and drops an answer's body (so a keep-alive connection can be reused). */
export async function discardBody(body: Readable): Promise<void> {
  for await (const _ of body) {
    // dropped
  }
}

import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

/** What a dispatcher did with one request, event by event (see {@link send}). */
export interface Outcome {
  /** Handler calls in order: `requestStart`, `responseStart`, `data`, `end`, `error`, `upgrade`. */
  events: string[];
  /** Status of the last onResponseStart. */
  status?: number;
  /** Statuses of every onResponseStart in order (undici also reports 102 and 103 there). */
  starts: number[];
  statusMessage?: string;
  headers?: IncomingHttpHeaders;
  body: Buffer;
  trailers?: IncomingHttpHeaders;
  error?: Error & { code?: unknown };
  /** `dispatch` threw instead of reporting through the handler. */
  thrown?: unknown;
  /** Neither an end nor an error within the guard time. */
  hung: boolean;
  /** Milliseconds from dispatch to the first end, error or upgrade. */
  elapsedMs: number;
}

/** The part of a pool the suite drives: undici's `Pool` and the gateway's `H1Pool` alike. */
export interface DispatcherLike {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** Extra behaviour for one request, called after the event is recorded. */
export interface Hooks {
  onResponseData?: (controller: Dispatcher.DispatchController, chunk: Buffer) => void;
}

/**
 * Dispatches one request with a handler that records every call (undici 7's handler API:
 * types/dispatcher.d.ts `DispatchHandler`) and resolves at the first end, error or upgrade, or
 * after `guardMs` with `hung: true`. Calls after that keep being recorded in `events`.
 */
export function send(
  pool: DispatcherLike,
  options: Dispatcher.DispatchOptions,
  hooks: Hooks = {},
  guardMs = 4_000,
): Promise<Outcome> {
  const outcome: Outcome = {
    events: [],
    starts: [],
    body: Buffer.alloc(0),
    hung: false,
    elapsedMs: 0,
  };
  const started = performance.now();
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      outcome.elapsedMs = performance.now() - started;
      resolve(outcome);
    };
    const guard = setTimeout(() => {
      outcome.hung = true;
      settle();
    }, guardMs);
    const chunks: Buffer[] = [];
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {
        outcome.events.push('requestStart');
      },
      onRequestUpgrade(_controller, statusCode, headers, socket) {
        outcome.events.push('upgrade');
        outcome.status = statusCode;
        outcome.headers = headers;
        socket.destroy();
        settle();
      },
      onResponseStart(_controller, statusCode, headers, statusMessage) {
        outcome.events.push('responseStart');
        outcome.starts.push(statusCode);
        outcome.status = statusCode;
        outcome.headers = headers;
        outcome.statusMessage = statusMessage;
      },
      onResponseData(controller, chunk) {
        outcome.events.push('data');
        chunks.push(Buffer.from(chunk));
        outcome.body = Buffer.concat(chunks);
        hooks.onResponseData?.(controller, chunk);
      },
      onResponseEnd(_controller, trailers) {
        outcome.events.push('end');
        outcome.trailers = trailers;
        settle();
      },
      onResponseError(_controller, err) {
        outcome.events.push('error');
        outcome.error = err;
        settle();
      },
    };
    try {
      pool.dispatch(options, handler);
    } catch (err) {
      outcome.thrown = err;
      settle();
    }
  });
}

// A client that sends an exact number of requests (`--instructions`: instructions per request
// needs the count, which wrk and autocannon only report after the fact), each answer checked.

import { gunzipSync } from 'node:zlib';
import { Pool } from 'undici';
import { BenchError } from './bench-error.js';
import type { ExpectedAnswer } from './scenarios.js';
import type { Target } from './service.js';
import { checkAnswer } from './verify.js';

/** How long one request may wait for its answer's head or body, ms (a gateway under valgrind). */
const REQUEST_TIMEOUT_MS = 120_000;
/** How long an idle connection is kept: across the pauses between windows. */
const KEEP_ALIVE_MS = 600_000;

/** Keep-alive connections to one target, reused by every batch of requests. */
export class FixedLoad {
  readonly #pool: Pool;
  readonly #target: Target;
  readonly #path: string;
  readonly #expect: ExpectedAnswer;
  readonly #connections: number;

  /** `connections` keep-alive connections (one request at a time each) to `target`'s origin. */
  constructor(target: Target, expect: ExpectedAnswer, connections: number) {
    const url = new URL(target.url);
    this.#pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    this.#target = target;
    this.#path = `${url.pathname}${url.search}`;
    this.#expect = expect;
    this.#connections = connections;
  }

  /**
   * Sends exactly `count` requests, at most one per connection at a time, and resolves once
   * every answer has been read. Throws `BENCH_WRONG_ANSWER` at the first answer that is not the
   * expected one (a gzip body is compared decoded, as fetch gives it), and stops when `signal`
   * aborts.
   */
  async send(count: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    // One listener for the batch (one per request would pile up on the signal): an abort closes
    // the connections, which fails the requests in flight.
    const abort = (): void => void this.#pool.destroy(signal?.reason as Error).catch(() => {});
    signal?.addEventListener('abort', abort, { once: true });
    let started = 0;
    const loop = async (): Promise<void> => {
      while (started < count) {
        signal?.throwIfAborted();
        started++;
        await this.#one();
      }
    };
    try {
      const loops = Array.from({ length: Math.min(this.#connections, count) }, loop);
      const results = await Promise.allSettled(loops);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #one(): Promise<void> {
    const { method = 'GET', headers, body } = this.#target;
    const res = await this.#pool.request({
      path: this.#path,
      method,
      headers: { ...headers },
      body: body ?? null,
    });
    const raw = Buffer.from(await res.body.arrayBuffer());
    const answer = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      for (const v of Array.isArray(value) ? value : [value ?? '']) answer.append(name, v);
    }
    const gzip = answer.get('content-encoding') === 'gzip';
    const text = (gzip ? gunzipSync(raw) : raw).toString('utf8');
    const problem = checkAnswer(this.#expect, res.statusCode, text, answer);
    if (problem !== undefined) {
      throw new BenchError('BENCH_WRONG_ANSWER', `${method} ${this.#target.url}: ${problem}`);
    }
  }
}

import type { LogLevel } from '../shared/log.js';
import type { LineInfo } from './log-line.js';

/** Tunables of the shipper; the defaults are the gateway's (README "Logs"). */
export interface LokiOptions {
  /** Loki's base URL (`http://loki:3100`); `/loki/api/v1/push` is appended. */
  url: string;
  /** The `node` label. */
  node: string;
  /**
   * Sent with every push: `authorization`, `x-scope-orgid` (conf/loki-auth.ts). Holds a
   * password: never logged or reported.
   */
  headers?: Readonly<Record<string, string>>;
  /** A push leaves once this many lines wait... */
  batchLines?: number;
  /** ...or this long after the first of them arrived (ms). */
  batchMs?: number;
  /** Lines kept while Loki is down or slow; newer lines beyond it are dropped (counted). */
  maxBuffered?: number;
  /** A push that takes longer is aborted and retried (ms). */
  timeoutMs?: number;
  /** Retry backoff: first delay, doubled up to `maxBackoffMs` (ms). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** State changes (Loki unreachable, back, lines dropped): the facade's logger in production. */
  report?: (level: LogLevel, msg: string, fields: Record<string, string | number>) => void;
}

/**
 * Why lines never reached Loki: `buffer_full` (Loki down or slow for longer than the buffer
 * lasts), `refused` (Loki answered a 4xx other than 401, 403 and 429 for the batch itself),
 * `stopped` (still buffered when the gateway stopped while Loki was unreachable).
 */
export type LokiDropReason = 'buffer_full' | 'refused' | 'stopped';

export const LOKI_DROP_REASONS: readonly LokiDropReason[] = ['buffer_full', 'refused', 'stopped'];

/** What the shipper did with the lines it was given, since it started. */
export interface LokiCounts {
  /** Lines Loki accepted. */
  shipped: number;
  dropped: Readonly<Record<LokiDropReason, number>>;
}

interface Entry {
  /** Nanoseconds since the epoch, as Loki wants it: a decimal string. */
  ts: string;
  line: string;
  level: LogLevel;
  kind: LineInfo['kind'];
}

/**
 * Pushes log lines to Loki's HTTP push API (`POST /loki/api/v1/push`, JSON:
 * `{streams: [{stream: {labels}, values: [[ns, line], ...]}]}`, grafana.com/docs/loki,
 * "Push log entries to Loki"). Labels: `app="proxyauth"`, `node`, `level`, `kind`
 * (`access` or `app`): few values each, as Loki's cardinality advice asks.
 *
 * One push in flight at a time. Lines wait in a bounded buffer: past `maxBuffered` the newest
 * are dropped (the buffer keeps the lines from when Loki went away, which explain it; every line
 * is on stdout as well). Drops are counted, logged when Loki answers again, and reported to
 * Loki in the next push as a line of their own. A failed push (network, timeout, 5xx, 429, and
 * 401/403: the credentials, which a reload may fix) is retried with exponential backoff; any
 * other 4xx means Loki refuses the batch itself, which is dropped and counted rather than
 * retried forever.
 *
 * Nothing here runs on an edge: the supervisor feeds it, so a slow Loki costs requests nothing.
 */
export class LokiShipper {
  readonly #endpoint: string;
  readonly #node: string;
  readonly #batchLines: number;
  readonly #batchMs: number;
  readonly #maxBuffered: number;
  readonly #timeoutMs: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #report: NonNullable<LokiOptions['report']>;
  #headers: Record<string, string>;
  #buffer: Entry[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #failures = 0;
  /** The status of the refusals (4xx) under way, 0 when the last answer was not one. */
  #refusing = 0;
  /** Dropped since the last report reached Loki. */
  #unreported = 0;
  #dropped = 0;
  readonly #droppedBy: Record<LokiDropReason, number> = { buffer_full: 0, refused: 0, stopped: 0 };
  #pushed = 0;
  #lastMs = 0;
  #seq = 0;
  #closed = false;

  constructor(options: LokiOptions) {
    this.#endpoint = `${options.url.replace(/\/+$/, '')}/loki/api/v1/push`;
    this.#node = options.node;
    this.#batchLines = options.batchLines ?? 1000;
    this.#batchMs = options.batchMs ?? 1000;
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#backoffMs = options.backoffMs ?? 500;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#report = options.report ?? (() => {});
    this.#headers = pushHeaders(options.headers);
  }

  /** New credentials or tenant (a reload): the next push uses them, lines waiting included. */
  setHeaders(headers: Readonly<Record<string, string>>): void {
    this.#headers = pushHeaders(headers);
  }

  /** Lines dropped so far (buffer full, or refused by Loki). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Lines Loki accepted so far. */
  get pushed(): number {
    return this.#pushed;
  }

  /** Lines shipped and dropped by reason, for the node's metrics (read at scrape time). */
  counts(): LokiCounts {
    return { shipped: this.#pushed, dropped: { ...this.#droppedBy } };
  }

  /** Lines waiting. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Queues one line; never blocks, never throws. */
  push(line: string, info: LineInfo): void {
    if (this.#closed) return;
    if (this.#buffer.length >= this.#maxBuffered) {
      this.#drop(1, 'buffer_full');
      return;
    }
    this.#buffer.push({ ts: this.#timestamp(), line, level: info.level, kind: info.kind });
    if (this.#buffer.length >= this.#batchLines) this.#schedule(0);
    else this.#schedule(this.#batchMs);
  }

  /** Pushes what is buffered (one attempt per batch, bounded by `timeoutMs`), then stops. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#inflight;
    if (this.#failures === 0) {
      while (this.#buffer.length > 0 || this.#unreported > 0) {
        if (!(await this.#pushOnce())) break;
      }
    }
    const left = this.#buffer.length;
    if (left > 0) {
      this.#buffer = [];
      this.#droppedBy.stopped += left;
      this.#dropped += left;
      this.#report('warn', 'loki unreachable at stop, buffered lines dropped', { lines: left });
    }
  }

  /*
   * Nanosecond timestamps from the millisecond clock, with a counter in the sub-millisecond
   * digits: lines keep their order and never share a timestamp within a stream (Loki drops
   * an entry identical to one it holds).
   */
  #timestamp(): string {
    const now = Date.now();
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#seq = 0;
    } else this.#seq++;
    return `${this.#lastMs}${String(this.#seq).padStart(6, '0')}`;
  }

  #drop(count: number, reason: LokiDropReason): void {
    this.#droppedBy[reason] += count;
    this.#dropped += count;
    this.#unreported += count;
  }

  #schedule(ms: number): void {
    // After a failed push the retry is #run's backoff timer: new lines must not bring it forward
    // (a full batch would, at every line, and a failing Loki would be asked again at once).
    if (this.#inflight || this.#closed || this.#failures > 0) return;
    if (this.#timer !== undefined && ms > 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), ms);
    this.#timer.unref();
  }

  #run(): void {
    this.#timer = undefined;
    this.#inflight = this.#pushOnce().then((ok) => {
      this.#inflight = undefined;
      if (this.#closed) return;
      if (!ok) {
        const delay = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (this.#failures - 1));
        // Jitter, so that the nodes of a cluster do not retry in step.
        this.#timer = setTimeout(() => this.#run(), delay * (0.5 + Math.random() / 2));
        this.#timer.unref();
      } else if (this.#buffer.length >= this.#batchLines) this.#schedule(0);
      else if (this.#buffer.length > 0) this.#schedule(this.#batchMs);
    });
  }

  /** One push of up to batchLines lines; true when Loki took it (or refused it for good). */
  async #pushOnce(): Promise<boolean> {
    const batch = this.#buffer.slice(0, this.#batchLines);
    const reported = this.#unreported;
    if (batch.length === 0 && reported === 0) return true;
    const entries = reported > 0 ? [this.#dropReport(reported, batch[0]?.ts), ...batch] : batch;
    let status = 0;
    let reason = '';
    try {
      const res = await fetch(this.#endpoint, {
        method: 'POST',
        headers: this.#headers,
        body: JSON.stringify({ streams: this.#streams(entries) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = res.status;
      reason = `HTTP ${res.status}`;
      await res.body?.cancel();
    } catch (err) {
      reason = (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message;
    }
    // 401/403 refuse our credentials, not the batch: kept and retried (a reload may fix them).
    const refused = status >= 400 && status < 500 && ![401, 403, 429].includes(status);
    if ((status >= 200 && status < 300) || refused) {
      this.#buffer.splice(0, batch.length);
      this.#unreported -= reported;
      if (refused) {
        this.#drop(batch.length, 'refused');
        // Once per streak of one status: the warning would be the next batch, refused again,
        // one line a second for as long as Loki refuses (found in review).
        if (this.#refusing !== status) {
          this.#report('warn', 'loki refused a batch, its lines are dropped', {
            status,
            lines: batch.length,
            note: 'further refusals with this status are counted in dropped, not logged',
          });
        }
        this.#refusing = status;
      } else {
        this.#pushed += batch.length;
        if (this.#refusing !== 0) {
          this.#report('info', 'loki accepts batches again', { dropped: this.#dropped });
          this.#refusing = 0;
        }
      }
      if (this.#failures > 0) {
        this.#report('info', 'loki reachable again', { dropped: this.#dropped });
      }
      this.#failures = 0;
      return true;
    }
    if (this.#failures === 0) {
      this.#report('warn', 'loki unreachable, buffering log lines', {
        reason,
        buffered: this.#buffer.length,
      });
    }
    this.#failures++;
    return false;
  }

  #dropReport(count: number, before: string | undefined): Entry {
    const line = JSON.stringify({
      level: 'warn',
      component: 'loki',
      message: 'log lines dropped before reaching loki',
      dropped: count,
      dropped_total: this.#dropped,
    });
    // Sorted before the batch's first line, so the stream stays in order.
    const ts = before === undefined ? this.#timestamp() : (BigInt(before) - 1n).toString();
    return { ts, line, level: 'warn', kind: 'app' };
  }

  #streams(entries: readonly Entry[]) {
    const streams = new Map<string, { stream: Record<string, string>; values: string[][] }>();
    for (const e of entries) {
      const key = `${e.level}\0${e.kind}`;
      let s = streams.get(key);
      if (!s) {
        s = {
          stream: { app: 'proxyauth', node: this.#node, level: e.level, kind: e.kind },
          values: [],
        };
        streams.set(key, s);
      }
      s.values.push([e.ts, e.line]);
    }
    return [...streams.values()];
  }
}

function pushHeaders(extra: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return { ...extra, 'content-type': 'application/json' };
}

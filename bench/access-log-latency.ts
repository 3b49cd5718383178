import { createReadStream } from 'node:fs';
import { LatencyHistogram } from './latency-histogram.js';

/** A span of wall-clock time, Unix ms, both ends included. */
export interface TimeSpan {
  readonly startMs: number;
  readonly endMs: number;
}

/** The gateway's own latency (the access log's `ms`) over the requests that ended in a span. */
export interface SpanLatency {
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/*
 * An access line as shared/access-log.ts writes it (JSON format):
 * `{"ts":"2026-12-01T19:48:44.749Z","type":"access","pid":...,"ms":0.83,...}`: the timestamp at
 * a fixed place, so a line is told by comparing bytes, and only `ts` and `ms` are parsed.
 */
const PREFIX = Buffer.from('{"ts":"');
const TS_LENGTH = 24;
const AFTER_TS = Buffer.from('","type":"access",');
const MS_KEY = Buffer.from('"ms":');
const MIN_LINE = PREFIX.length + TS_LENGTH + AFTER_TS.length + MS_KEY.length + 2;
/** Access lines fit in PIPE_BUF; a longer run without a newline is skipped, not kept. */
const MAX_LINE = 64 * 1024;
const READ_CHUNK = 1 << 20;

/**
 * Reads the gateway's log once, streaming, and gives for each span the count, p50 and p99 of
 * `ms` of the access lines whose `ts` falls in it; undefined for a span without one. Every other
 * line (the gateway's own JSON lines, `--trace-gc` output, a torn or malformed access line) is
 * passed over. Memory is one read chunk and one histogram per span, whatever the log's size.
 * `spans` must be sorted and must not overlap. Resolves undefined when there is no log.
 */
export async function spanLatencies(
  logPath: string,
  spans: readonly TimeSpan[],
): Promise<(SpanLatency | undefined)[] | undefined> {
  const histograms = spans.map(() => new LatencyHistogram());
  const reader = new AccessLineReader((ts, ms) => {
    const i = spanIndex(spans, ts);
    if (i >= 0) histograms[i]!.record(ms);
  });
  try {
    for await (const chunk of createReadStream(logPath, { highWaterMark: READ_CHUNK })) {
      reader.push(chunk as Buffer);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  reader.end();
  return histograms.map((h) =>
    h.count === 0
      ? undefined
      : { requests: h.count, p50Ms: h.quantile(0.5)!, p99Ms: h.quantile(0.99)! },
  );
}

/** The index of the span holding `ts` (binary search), or -1. */
function spanIndex(spans: readonly TimeSpan[], ts: number): number {
  let low = 0;
  let high = spans.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const span = spans[mid]!;
    if (ts < span.startMs) high = mid - 1;
    else if (ts > span.endMs) low = mid + 1;
    else return mid;
  }
  return -1;
}

/** Splits bytes into lines across chunks and hands each access line's `ts` and `ms` on. */
export class AccessLineReader {
  readonly #onLine: (ts: number, ms: number) => void;
  /** The start of a line the last chunks cut, and its length. */
  #carry: Buffer[] = [];
  #carried = 0;
  /** Inside a line longer than MAX_LINE: everything up to the next newline is dropped. */
  #skipping = false;
  readonly #second = Buffer.alloc(19);
  #secondMs = Number.NaN;

  constructor(onLine: (ts: number, ms: number) => void) {
    this.#onLine = onLine;
  }

  push(chunk: Buffer): void {
    let start = 0;
    if (this.#carried > 0 || this.#skipping) {
      const newline = chunk.indexOf(0x0a);
      if (newline < 0) {
        this.#keep(chunk);
        return;
      }
      if (!this.#skipping) {
        const line = Buffer.concat([...this.#carry, chunk.subarray(0, newline)]);
        this.#line(line, 0, line.length);
      }
      this.#drop();
      start = newline + 1;
    }
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) break;
      this.#line(chunk, start, newline);
      start = newline + 1;
    }
    if (start < chunk.length) this.#keep(chunk.subarray(start));
  }

  /** The log's end: a last line without its newline is read as it is (a torn one fails the checks). */
  end(): void {
    if (this.#carried > 0 && !this.#skipping) {
      const line = Buffer.concat(this.#carry);
      this.#line(line, 0, line.length);
    }
    this.#drop();
  }

  /** Keeps a line's start (a copy: the stream may reuse its chunk) until its newline comes. */
  #keep(bytes: Buffer): void {
    if (this.#skipping) return;
    this.#carried += bytes.length;
    if (this.#carried > MAX_LINE) {
      this.#drop();
      this.#skipping = true;
    } else this.#carry.push(Buffer.from(bytes));
  }

  #drop(): void {
    this.#carry = [];
    this.#carried = 0;
    this.#skipping = false;
  }

  /*
   * Hot: once per line of a log of up to GBs (~170 bytes a line). Byte comparisons, no string
   * per line; the timestamp's second is parsed once per second of log.
   */
  #line(buf: Buffer, start: number, end: number): void {
    if (end - start < MIN_LINE || buf[end - 1] !== 0x7d) return;
    if (!bytesAt(buf, start, PREFIX)) return;
    const tsAt = start + PREFIX.length;
    const afterTs = tsAt + TS_LENGTH;
    if (!bytesAt(buf, afterTs, AFTER_TS)) return;
    const ts = this.#timestamp(buf, tsAt);
    if (Number.isNaN(ts)) return;
    let key = -1;
    for (let i = afterTs + AFTER_TS.length; i < end; i++) {
      const c = buf[i];
      // A second line start inside the line: a torn line merged with the next one.
      if (c === 0x7b && bytesAt(buf, i, PREFIX)) return;
      if (c === 0x22 && key < 0 && bytesAt(buf, i, MS_KEY)) key = i;
    }
    if (key < 0) return;
    const ms = decimalAt(buf, key + MS_KEY.length, end);
    if (!Number.isNaN(ms)) this.#onLine(ts, ms);
  }

  /** `YYYY-MM-DDTHH:MM:SS.mmmZ` at `at` as Unix ms; NaN when it is not one. */
  #timestamp(buf: Buffer, at: number): number {
    if (buf[at + 19] !== 0x2e || buf[at + 23] !== 0x5a) return Number.NaN;
    const millis = digitsAt(buf, at + 20, 3);
    if (Number.isNaN(millis)) return Number.NaN;
    if (!bytesAt(buf, at, this.#second)) {
      buf.copy(this.#second, 0, at, at + 19);
      // Date.parse takes a second-precision ISO time and refuses a malformed one (NaN).
      this.#secondMs = Date.parse(`${buf.toString('latin1', at, at + 19)}Z`);
    }
    return this.#secondMs + millis;
  }
}

/** `bytes` stand in `buf` at `at` (byte by byte: cheaper than a native call per line). */
function bytesAt(buf: Buffer, at: number, bytes: Uint8Array): boolean {
  if (at + bytes.length > buf.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

/** The `count` decimal digits at `at` as a number; NaN when one is not a digit. */
function digitsAt(buf: Buffer, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const d = (buf[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    value = value * 10 + d;
  }
  return value;
}

/**
 * A plain non-negative decimal (`12`, `0.83`) at `at`, ended by `,` or `}` before `end`; NaN
 * otherwise (a torn line cut inside the number has no such end).
 */
function decimalAt(buf: Buffer, at: number, end: number): number {
  let whole = 0;
  let fraction = 0;
  let scale = 1;
  let digits = 0;
  let point = false;
  for (let i = at; i < end; i++) {
    const c = buf[i]!;
    // Both exact integers: one correctly rounded division gives the double of the decimal text.
    if (c === 0x2c || c === 0x7d)
      return digits === 0 ? Number.NaN : (whole * scale + fraction) / scale;
    if (c === 0x2e && !point) {
      point = true;
      continue;
    }
    const d = c - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    digits++;
    if (point) {
      fraction = fraction * 10 + d;
      scale *= 10;
    } else whole = whole * 10 + d;
  }
  return Number.NaN;
}

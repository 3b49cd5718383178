import { writeSync } from 'node:fs';
import { MIN_TOKEN_LENGTH } from './token-codec.js';

/** Logged paths are cut past this many characters (whole lines must fit in PIPE_BUF). */
export const MAX_LOGGED_PATH = 1024;

/**
 * A run of base64url that could be a token (docs/token-format.md: version byte 0x01, so it
 * starts with `A`, and at least MIN_TOKEN_LENGTH characters).
 */
const TOKEN_RUN = new RegExp(`A[A-Za-z0-9_-]{${MIN_TOKEN_LENGTH - 1},}`, 'g');

/**
 * A request path as log lines show it: every run that could be a token replaced by `<token>`
 * (a client that puts its token in the path must not see it in the logs; queries are never
 * logged), then cut to {@link MAX_LOGGED_PATH} characters with `...`. A path shorter than a
 * token is returned as it is, without a regex run.
 */
export function loggedPath(url: string): string {
  const clean = url.length < MIN_TOKEN_LENGTH ? url : url.replace(TOKEN_RUN, '<token>');
  return clean.length > MAX_LOGGED_PATH ? `${clean.slice(0, MAX_LOGGED_PATH)}...` : clean;
}

/** One proxied or answered request, as written to the access log (never a token or a query). */
export interface AccessEntry {
  ip: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  user: string | undefined;
  route: string | undefined;
  code: string | undefined;
}

/*
 * Every edge writes to the stdout it inherited, so lines from several processes share one pipe
 * (or journald's socket). A write(2) of at most PIPE_BUF (4096) bytes to a pipe is atomic, so
 * lines are written in whole-line chunks of at most that size and never interleave.
 *
 * Lines are flushed every FLUSH_MS, not per event-loop turn: measured with the bench's CPU time
 * per request, flushing on setImmediate cost ~36 us per proxied request (a write(2) every few
 * requests), about 20% of the gateway's CPU; a timer makes it one write per ~25 lines.
 */
const PIPE_BUF = 4096;
const FLUSH_MS = 50;
/** Flush at once past this much buffered text, so memory stays bounded under any load. */
const MAX_PENDING_CHARS = 256 * 1024;

/**
 * `Date#toISOString()` of a Unix time in ms (`2026-12-01T06:37:38.042Z`), computed once per
 * second with the milliseconds appended by hand. Measured with callgrind on an edge:
 * toISOString costs ~7,400 instructions a call (V8 formats it with vsnprintf), 4.6% of a
 * proxied request's user-space instructions when every request fell in a new millisecond.
 * For times from 1970 to 9999 (the access log's `Date.now()`); others: toISOString itself.
 */
export class IsoTimestamps {
  #second = Number.NaN;
  #prefix = '';

  format(ms: number): string {
    if (!(ms >= 0 && ms < MAX_FOUR_DIGIT_YEAR_MS) || !Number.isInteger(ms)) {
      return new Date(ms).toISOString();
    }
    const frac = ms % 1000;
    const second = ms - frac;
    if (second !== this.#second) {
      this.#second = second;
      // `YYYY-MM-DDTHH:MM:SS.` (the ISO text without `mmmZ`).
      this.#prefix = new Date(second).toISOString().slice(0, -4);
    }
    return `${this.#prefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
  }
}

/**
 * `JSON.stringify(text)`: quoted as it is when every char is printable ASCII other than `"`
 * and `\\` (what the log's methods, paths, users and routes nearly always are), else by
 * JSON.stringify. Callgrind: ~400 instructions per JSON.stringify call, four per line.
 */
export function jsonString(text: string): string {
  return isPlainAscii(text) ? `"${text}"` : JSON.stringify(text);
}

/** Every char of `text` is printable ASCII other than `"` and `\\`: it is its own JSON text. */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/** Above this many hundredths, `hundredths` leaves the number to JS (2^53 / 100, rounded down). */
const MAX_HUNDREDTHS = 90_071_992_547_409;

/**
 * `String(ms)` for a duration in ms rounded to hundredths (`Math.round(x * 100) / 100`), as the
 * access log writes it. From integers: String() of a fractional number is a runtime call
 * (~800 instructions per line, callgrind), of a small integer a cache hit. A value h / 100
 * (h an integer below 2^53) prints in JS as the decimal with at most two fraction digits, which
 * is what this writes; anything else (not a multiple of 0.01, negative, NaN, huge) is String().
 */
export function hundredths(ms: number): string {
  const h = Math.round(ms * 100);
  if (!(h >= 0 && h <= MAX_HUNDREDTHS) || h / 100 !== ms) return String(ms);
  const whole = Math.floor(h / 100);
  const frac = h - whole * 100;
  if (frac === 0) return `${whole}`;
  if (frac % 10 === 0) return `${whole}.${frac / 10}`;
  return `${whole}.${frac < 10 ? '0' : ''}${frac}`;
}

/** 10000-01-01T00:00:00.000Z: past it toISOString writes a six-digit year with a sign. */
const MAX_FOUR_DIGIT_YEAR_MS = 253_402_300_800_000;

export class AccessLog {
  readonly #fd: number;
  /** Buffered lines, appended to one string (V8 ropes make appends cheap). */
  #pending = '';
  /**
   * `#pending` is known to be ASCII (every field went out by isPlainAscii's fast path): flush
   * then copies it as latin1 instead of measuring it as UTF-8 (callgrind: ~1,700 instructions
   * per request for Buffer.from's UTF-8 length of the batch).
   */
  #ascii = true;
  #timer: NodeJS.Timeout | undefined;
  readonly #flush = () => this.flush();
  // NaN: no clock reading equals it, so the first line always formats its timestamp.
  #lastMs = Number.NaN;
  #lastIso = '';
  readonly #timestamps = new IsoTimestamps();
  /** `"pid":N,`: which edge answered (several share the stdout). */
  readonly #pid: string;
  readonly #text: boolean;

  /** `text`: `time ACCESS pid=N ip "METHOD path" status ms [user= route= code=]` (log.format). */
  constructor(fd = 1, pid = process.pid, text = false) {
    this.#fd = fd;
    this.#text = text;
    this.#pid = text ? `pid=${pid}` : `"pid":${pid},`;
  }

  /*
   * Hot path: one line per request. The line is assembled by hand (JSON.stringify only on the
   * strings that may need escaping): measured ~3.4 us per line with JSON.stringify(entry) and
   * per-line byte counting on this machine, against ~1 us this way.
   */
  write(entry: AccessEntry): void {
    // Under load many requests end in the same millisecond: format that timestamp once.
    const now = Date.now();
    if (now !== this.#lastMs) {
      this.#lastMs = now;
      this.#lastIso = this.#timestamps.format(now);
    }
    if (this.#text) {
      this.#append(this.#textLine(entry));
      return;
    }
    let line = `{"ts":"${this.#lastIso}","type":"access",${this.#pid}"ip":"${entry.ip}","method":${this.#json(entry.method)},"path":${this.#json(entry.path)},"status":${entry.status},"ms":${hundredths(entry.ms)}`;
    if (entry.user !== undefined) line += `,"user":${this.#json(entry.user)}`;
    if (entry.route !== undefined) line += `,"route":${this.#json(entry.route)}`;
    if (entry.code !== undefined) line += `,"code":"${entry.code}"`;
    this.#append(`${line}}\n`);
  }

  /**
   * jsonString, noting when the text may not be ASCII. `ip` (an address formatted by the edge),
   * `status`, `ms`, `code` (catalog names) and the timestamp are ASCII by construction.
   */
  #json(text: string): string {
    if (isPlainAscii(text)) return `"${text}"`;
    this.#ascii = false;
    return JSON.stringify(text);
  }

  #textLine(entry: AccessEntry): string {
    // JSON.stringify keeps non-ASCII chars as they are: the batch is written as UTF-8.
    this.#ascii = false;
    let line = `${this.#lastIso} ACCESS ${this.#pid} ${entry.ip} ${JSON.stringify(`${entry.method} ${entry.path}`)} ${entry.status} ${hundredths(entry.ms)}ms`;
    if (entry.user !== undefined) line += ` user=${JSON.stringify(entry.user)}`;
    if (entry.route !== undefined) line += ` route=${JSON.stringify(entry.route)}`;
    if (entry.code !== undefined) line += ` code=${entry.code}`;
    return `${line}\n`;
  }

  #append(line: string): void {
    this.#pending += line;
    if (this.#pending.length >= MAX_PENDING_CHARS) this.flush();
    else this.#timer ??= setTimeout(this.#flush, FLUSH_MS).unref();
  }

  /** Writes everything buffered, in whole-line chunks of at most PIPE_BUF bytes. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === '') return;
    const bytes = Buffer.from(this.#pending, this.#ascii ? 'latin1' : 'utf8');
    this.#pending = '';
    this.#ascii = true;
    let start = 0;
    while (start < bytes.length) {
      let end = bytes.length;
      if (end - start > PIPE_BUF) {
        // Cut after the last newline that fits; a single longer line goes out alone.
        const cut = bytes.lastIndexOf(0x0a, start + PIPE_BUF - 1);
        end = cut >= start ? cut + 1 : bytes.indexOf(0x0a, start) + 1 || bytes.length;
      }
      this.#writeChunk(bytes.subarray(start, end));
      start = end;
    }
  }

  #writeChunk(chunk: Uint8Array): void {
    try {
      writeSync(this.#fd, chunk);
    } catch {
      // EAGAIN on a full pipe, EPIPE after the reader left: losing access lines beats blocking
      // or crashing the edge (and there is nowhere left to report it). A chunk within PIPE_BUF
      // is written whole or not at all, so the next chunk still starts on a line boundary.
    }
  }
}

import { writeSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { type LogConfig, lokiUrl } from '../conf/config-schema.js';
import type { LokiHeaders } from '../conf/loki-auth.js';
import type { Logger } from '../shared/log.js';
import { classifyLine } from './log-line.js';
import { LogRing } from './log-ring.js';
import { LokiShipper } from './loki-shipper.js';

/** A line longer than this (a runaway write without newline) is cut, so memory stays bounded. */
const MAX_LINE = 64 * 1024;
const COLOUR = /\x1b\[[0-9;]*m/g;

/**
 * The node's log sinks beyond stdout, held by the supervisor only (one buffer per node): the
 * ring of `log.type: "http"` and the Loki shipper of `log.type: "loki"`. With either, edges
 * write to a pipe instead of the inherited stdout (supervisor/fork-edge.ts); the supervisor
 * copies each whole line to its own stdout and hands it to the sink. Edges keep writing with
 * non-blocking writeSync calls: a supervisor that falls behind costs them lines, never time.
 *
 * `log.type` is read at start (which processes hold a pipe is fixed when edges are forked);
 * a reload that changes it warns.
 */
export class LogSinks {
  readonly ring: LogRing | undefined;
  readonly loki: LokiShipper | undefined;

  private constructor(ring: LogRing | undefined, loki: LokiShipper | undefined) {
    this.ring = ring;
    this.loki = loki;
  }

  /**
   * The sinks `config` asks for, or undefined for `local` (nothing to do but stdout).
   * `lokiHeaders`: credentials and tenant of the pushes (conf/loki-auth.ts).
   */
  static create(
    config: LogConfig,
    log: Logger,
    lokiHeaders: LokiHeaders = {},
  ): LogSinks | undefined {
    if (config.type === 'http') return new LogSinks(new LogRing(config.write_max_logs), undefined);
    if (config.type !== 'loki' || config.host === undefined) return undefined;
    const url = lokiUrl(config.host)!;
    const loki = new LokiShipper({
      url: url.href,
      node: config.node ?? hostname(),
      headers: lokiHeaders,
      report: (level, msg, fields) => log[level](msg, fields),
    });
    return new LogSinks(undefined, loki);
  }

  /** One line (without its newline) this node logged. */
  line(text: string): void {
    const line = text.includes('\x1b') ? text.replace(COLOUR, '') : text;
    this.ring?.push(line);
    this.loki?.push(line, classifyLine(line));
  }

  /** Copies an edge's output to stdout, line by line, and to the sinks. */
  attach(output: Readable): void {
    let carry = '';
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      const text = carry + chunk;
      const end = text.lastIndexOf('\n');
      if (end < 0) {
        carry = text.length > MAX_LINE ? '' : text;
        if (text.length > MAX_LINE) this.#emit(text.slice(0, MAX_LINE));
        return;
      }
      carry = text.slice(end + 1);
      writeOut(text.slice(0, end + 1));
      let start = 0;
      while (start <= end) {
        const next = text.indexOf('\n', start);
        if (next > start) this.line(text.slice(start, next));
        start = next + 1;
      }
    });
    output.on('end', () => {
      if (carry !== '') this.#emit(carry);
    });
  }

  #emit(line: string): void {
    writeOut(`${line}\n`);
    this.line(line);
  }

  async close(): Promise<void> {
    await this.loki?.close();
  }
}

/** As the access log writes (shared/access-log.ts): whole, or lost when stdout is full. */
function writeOut(text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done);
  } catch {
    // EAGAIN on a full pipe, EPIPE without a reader: the rest is lost on stdout only.
  }
}

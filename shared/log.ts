import { writeSync } from 'node:fs';
import winston from 'winston';

export type LogFields = Record<string, string | number | boolean | undefined>;

/** Levels, most severe first (winston's npm levels, trimmed to the ones we use). */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `json`: one JSON object per line; `text`: `time LEVEL component message key=value...`. */
export type LogFormat = 'json' | 'text';

/** The operational log of one process component (supervisor, edge, ...). */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** A line as written, handed to the supervisor's sinks (Loki, the /adm/logs ring). */
export type LineTap = (line: string) => void;

const MESSAGE = Symbol.for('message');
const COLOURS: Record<string, string> = {
  error: '\x1b[31m',
  warn: '\x1b[33m',
  info: '\x1b[32m',
  debug: '\x1b[90m',
};

let tap: LineTap | undefined;

/*
 * Lines go to fd 1 with writeSync, as the access log's do (shared/access-log.ts): a line of at
 * most PIPE_BUF bytes is written whole, so lines of several processes sharing a pipe never
 * interleave, and a full pipe (EAGAIN) loses the line instead of blocking or growing a queue.
 */
// winston exports the base class as `Transport` at runtime; its typings call it `transport`.
const TransportBase = (winston as unknown as { Transport: typeof winston.transport }).Transport;

class StdoutTransport extends TransportBase {
  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const line = String(info[MESSAGE]);
    try {
      writeSync(1, `${line}\n`);
    } catch {
      // EAGAIN / EPIPE: see above; the line still reaches the tap.
    }
    tap?.(line);
    next();
  }
}

function textLine(colour: boolean) {
  return winston.format.printf((info) => {
    const { level, message, timestamp, component, ...rest } = info;
    const name = String(level).toUpperCase().padEnd(5);
    let line = `${String(timestamp)} ${colour ? `${COLOURS[level] ?? ''}${name}\x1b[0m` : name} ${String(component ?? '-')} ${String(message)}`;
    for (const [key, value] of Object.entries(rest)) {
      if (value === undefined) continue;
      const text = String(value);
      line += ` ${key}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`;
    }
    return line;
  });
}

/** Reads PROXYAUTH_LOG_LEVEL and PROXYAUTH_LOG_FORMAT; falls back to info and json. */
function envSettings(): { level: LogLevel; format: LogFormat } {
  const level = process.env.PROXYAUTH_LOG_LEVEL;
  const format = process.env.PROXYAUTH_LOG_FORMAT;
  return {
    level: isLogLevel(level) ? level : 'info',
    format: format === 'text' ? 'text' : 'json',
  };
}

let root: winston.Logger | undefined;
let format: LogFormat = envSettings().format;

function rootLogger(): winston.Logger {
  if (root) return root;
  const settings = envSettings();
  format = settings.format;
  root = winston.createLogger({
    level: settings.level,
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: formatOf(format),
    transports: [new StdoutTransport()],
  });
  return root;
}

function formatOf(kind: LogFormat): winston.Logform.Format {
  return kind === 'text'
    ? winston.format.combine(winston.format.timestamp(), textLine(process.stdout.isTTY === true))
    : winston.format.combine(winston.format.timestamp(), winston.format.json());
}

/**
 * Never pass secrets, tokens, passwords, TOTP codes or the admin token in `fields`: nothing
 * here redacts them (test/integration-log-secrets.test.ts greps a whole run for them).
 */
export function createLogger(component: string): Logger {
  const child = rootLogger().child({ component, pid: process.pid });
  return {
    debug: (msg, fields) => child.debug(msg, fields),
    info: (msg, fields) => child.info(msg, fields),
    warn: (msg, fields) => child.warn(msg, fields),
    error: (msg, fields) => child.error(msg, fields),
  };
}

/** The level in force: lines below it are not formatted at all. */
export function logLevel(): LogLevel {
  return rootLogger().level as LogLevel;
}

export function setLogLevel(level: LogLevel): void {
  rootLogger().level = level;
}

/** The format of this process's lines; text is coloured only when stdout is a terminal. */
export function logFormat(): LogFormat {
  rootLogger();
  return format;
}

export function setLogFormat(kind: LogFormat): void {
  const logger = rootLogger();
  format = kind;
  logger.format = formatOf(kind);
}

/** Sends every line this process logs (after it is written to stdout) to `next` as well. */
export function tapLogLines(next: LineTap | undefined): void {
  tap = next;
}

/** Flushes buffered log output before an entry point exits. */
export function flushLogs(): Promise<void> {
  const logger = root;
  if (!logger) return Promise.resolve();
  return new Promise((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
    setTimeout(resolve, 200).unref();
  });
}

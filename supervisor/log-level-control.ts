import { isLogLevel, type Logger, type LogLevel, logLevel, setLogLevel } from '../shared/log.js';

/**
 * The node's log level. The base level is `PROXYAUTH_LOG_LEVEL` when set (an operator's
 * override for one run), else config.json's `log.level`. SIGUSR1 toggles debug: from the base
 * level to debug, and from debug back to the base level. A reload that changes `log.level`
 * applies the new level (and ends a SIGUSR1 toggle). Every change is logged and sent to the
 * edges (`log-level` notice); an edge forked later gets the level in its environment.
 */
export class LogLevelControl {
  readonly #env: LogLevel | undefined;
  readonly #log: Logger;
  readonly #notify: (level: LogLevel) => void;
  #base: LogLevel;

  constructor(
    configured: LogLevel,
    log: Logger,
    notify: (level: LogLevel) => void,
    env = process.env,
  ) {
    const override = env.PROXYAUTH_LOG_LEVEL;
    this.#env = isLogLevel(override) ? override : undefined;
    this.#log = log;
    this.#notify = notify;
    this.#base = this.#env ?? configured;
    setLogLevel(this.#base);
  }

  /** The level in force. */
  get level(): LogLevel {
    return logLevel();
  }

  /** SIGUSR1. */
  toggle(): void {
    this.#set(logLevel() === 'debug' ? this.#base : 'debug', 'SIGUSR1');
  }

  /** A reload settled with `configured` as config.json's `log.level`. */
  configure(configured: LogLevel): void {
    const base = this.#env ?? configured;
    if (base === this.#base) return;
    this.#base = base;
    this.#set(base, 'reload');
  }

  #set(level: LogLevel, cause: string): void {
    if (level === logLevel()) return;
    const from = logLevel();
    // Logged at warn, so that the change shows whichever way it goes.
    setLogLevel(level);
    this.#log.warn('log level changed', { from, to: level, cause });
    this.#notify(level);
  }
}

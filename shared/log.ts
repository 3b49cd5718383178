import winston from 'winston';

export type LogFields = Record<string, string | number | boolean | undefined>;

/** The operational log: JSON lines on stdout, one logger per process component. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

let root: winston.Logger | undefined;

function rootLogger(): winston.Logger {
  root ??= winston.createLogger({
    level: process.env.PROXYAUTH_LOG_LEVEL ?? 'info',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
  return root;
}

/** Never pass secrets, tokens or passwords in `fields`: nothing here redacts them. */
export function createLogger(component: string): Logger {
  const child = rootLogger().child({ component, pid: process.pid });
  return {
    debug: (msg, fields) => child.debug(msg, fields),
    info: (msg, fields) => child.info(msg, fields),
    warn: (msg, fields) => child.warn(msg, fields),
    error: (msg, fields) => child.error(msg, fields),
  };
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

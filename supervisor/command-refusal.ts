import type { Writable } from 'node:stream';
import { ConfigError } from '../conf/config-error.js';
import { CodedError } from '../shared/coded-error.js';

/**
 * What an admin command (`keys`, `sync`) prints for a refusal: a config error as `check-config`
 * prints it, a coded error as `proxyauth: CODE: message`; returns exit status 1. Anything else
 * is a bug and is thrown again.
 */
export function commandRefusal(err: unknown, out: Writable): number {
  if (err instanceof ConfigError) {
    out.write(`${err.format()}\n`);
    return 1;
  }
  if (!(err instanceof CodedError)) throw err;
  out.write(`proxyauth: ${err.code}: ${err.message}\n`);
  return 1;
}

import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errorBlockProblem } from '../shared/error-block.js';
import { ConfigError } from './config-error.js';
import type { Config } from './config-schema.js';

/*
 * config.json `login_page`: the operator's login page for session-cookie mode, read and checked
 * by the supervisor's load (so `check-config` reports a bad one) and handed to the edges as text
 * inside the config snapshot, like the routes' certificate files (route-tls.ts).
 */

/** A page larger than this is refused rather than read into memory (and sent on every failure). */
export const MAX_LOGIN_PAGE_BYTES = 1024 * 1024;

/** The absolute path `login_page` names: relative paths are read from the config file's dir. */
export function loginPagePath(value: string, configFile: string): string {
  return resolve(dirname(configFile), value);
}

/**
 * The text of `config.login_page`, or undefined when it is not set. Throws ConfigError naming
 * `configFile` and the key `login_page` when the file is missing, unreadable, not a regular
 * file, larger than {@link MAX_LOGIN_PAGE_BYTES}, not UTF-8, or has no well-formed error block
 * (shared/error-block.ts): a login page that cannot show why a login failed is refused.
 */
export async function readLoginPage(
  config: Config,
  configFile: string,
): Promise<string | undefined> {
  if (config.login_page === undefined) return undefined;
  const file = loginPagePath(config.login_page, configFile);
  const fail = (why: string) =>
    new ConfigError([{ file: configFile, key: 'login_page', message: `${file}: ${why}` }]);
  let bytes: Buffer;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw fail('is not a regular file');
    if (info.size > MAX_LOGIN_PAGE_BYTES) {
      throw fail(`is larger than ${MAX_LOGIN_PAGE_BYTES} bytes`);
    }
    bytes = await readFile(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' ? 'not found' : `cannot read (${code ?? String(err)})`);
  }
  if (bytes.byteLength > MAX_LOGIN_PAGE_BYTES) {
    throw fail(`is larger than ${MAX_LOGIN_PAGE_BYTES} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail('is not UTF-8 text');
  }
  const problem = errorBlockProblem(text);
  if (problem !== undefined) throw fail(problem);
  return text;
}

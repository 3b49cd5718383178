import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './config-error.js';
import type { LogConfig } from './config-schema.js';

/*
 * config.json `log.user`, `log.password_file` and `log.tenant`: the headers of every push to
 * Loki. The password is read from its file by the supervisor's load (start, every reload, and
 * `check-config`), never sent to the edges, and never written into a message: errors and
 * warnings name the file and the key, not what the file holds.
 */

/** A password file larger than this is refused (a password is a line, not a document). */
export const MAX_PASSWORD_FILE_BYTES = 4096;

/** The headers of a push: `authorization` (Basic) and `x-scope-orgid`, each when configured. */
export type LokiHeaders = Readonly<Record<string, string>>;

/**
 * Builds the headers `log` asks for: `Authorization: Basic base64(user ":" password)` (RFC 7617,
 * UTF-8) with the password read from `password_file` (relative to the config file's dir), and
 * `X-Scope-OrgID: tenant` (Loki's multi-tenancy header). Nothing unless `type` is `loki`, with
 * a warning for each key given to no effect. Throws ConfigError naming `configFile` and
 * `log.password_file` when the file is missing, unreadable, not a regular file, larger than
 * {@link MAX_PASSWORD_FILE_BYTES}, not UTF-8, empty, or holds a control character once one
 * trailing line break is removed. A file other users may read or write is a warning.
 */
export async function readLokiHeaders(
  log: LogConfig,
  configFile: string,
): Promise<{ headers: LokiHeaders; warnings: string[] }> {
  const given = (['user', 'password_file', 'tenant'] as const).filter((k) => log[k] !== undefined);
  if (log.type !== 'loki') {
    const warnings = given.map(
      (key) => `${configFile}: log.${key}: has no effect: log.type is "${log.type}", not "loki"`,
    );
    return { headers: {}, warnings };
  }
  const headers: Record<string, string> = {};
  const warnings: string[] = [];
  if (log.user !== undefined && log.password_file !== undefined) {
    const file = resolve(dirname(configFile), log.password_file);
    const { password, openMode } = await readPassword(file, configFile);
    const pair = Buffer.from(`${log.user}:${password}`, 'utf8').toString('base64');
    headers.authorization = `Basic ${pair}`;
    if (openMode !== undefined) {
      warnings.push(
        `${configFile}: log.password_file: ${file} is open to group or others ` +
          `(mode ${openMode}): chmod 600 it`,
      );
    }
  }
  if (log.tenant !== undefined) headers['x-scope-orgid'] = log.tenant;
  return { headers, warnings };
}

async function readPassword(
  file: string,
  configFile: string,
): Promise<{ password: string; openMode: string | undefined }> {
  const fail = (why: string) =>
    new ConfigError([{ file: configFile, key: 'log.password_file', message: `${file}: ${why}` }]);
  let bytes: Buffer;
  let mode: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw fail('is not a regular file');
    if (info.size > MAX_PASSWORD_FILE_BYTES) {
      throw fail(`is larger than ${MAX_PASSWORD_FILE_BYTES} bytes`);
    }
    mode = info.mode & 0o777;
    bytes = await readFile(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' ? 'not found' : `cannot read (${code ?? 'error'})`);
  }
  if (bytes.byteLength > MAX_PASSWORD_FILE_BYTES) {
    throw fail(`is larger than ${MAX_PASSWORD_FILE_BYTES} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail('is not UTF-8 text');
  }
  // `echo secret > file` leaves a newline the operator did not mean as part of the password.
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw fail('is empty');
  if (/[\x00-\x1f\x7f]/.test(password)) {
    throw fail('holds a control character (more than one line?): put the password alone in it');
  }
  const openMode = (mode & 0o077) === 0 ? undefined : `0${mode.toString(8)}`;
  return { password, openMode };
}

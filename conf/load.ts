import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import type { ConfigIssue } from './config-error.js';
import { ConfigError } from './config-error.js';
import { deepFreeze } from './deep-freeze.js';
import { JsonSyntaxError, scanJson } from './json-source.js';
import { readLoginPage } from './login-page.js';
import { type LokiHeaders, readLokiHeaders } from './loki-auth.js';
import type { ConfigFiles, ParsedConfig } from './parse.js';
import { parseConfig } from './parse.js';
import { type RouteFiles, readRouteFiles, routeTlsWarnings } from './route-tls.js';
import { sessionWarnings } from './session-warnings.js';
import { type CheckedTlsPair, checkTlsFiles } from './tls-files.js';

/** A validated config dir, plus the raw values that edges re-validate from an IPC snapshot. */
export interface LoadedConfig extends ParsedConfig {
  raw: { config: unknown; routes: unknown };
  files: ConfigFiles;
  /** The checked certificate pair when `tls` is true and it exists; undefined otherwise. */
  tls?: CheckedTlsPair | undefined;
  /** The bytes of the routes' `cert` and `ca` files, checked (conf/route-tls.ts). */
  routeFiles: RouteFiles;
  /** The text of config.json's `login_page`, checked (conf/login-page.ts); undefined unset. */
  loginPage: string | undefined;
  /**
   * The headers of pushes to Loki (conf/loki-auth.ts): holds the password of `log.user`, so it
   * stays in the supervisor (never in a snapshot) and is never logged. `{}` when none.
   */
  lokiHeaders: LokiHeaders;
}

type Read = { ok: true; value: unknown } | { ok: false; issue: ConfigIssue } | { ok: 'missing' };

/**
 * Reads and validates `<dir>/config.json` and `<dir>/routes.yml`, and with `tls` on the
 * certificate pair in `<dir>/certs` (see checkTlsFiles), and the files routes name for upstream
 * TLS (`cert`, `ca`: see readRouteFiles), the `login_page` file (readLoginPage) and Loki's
 * `log.password_file` (readLokiHeaders). This is the one validation that both
 * `check-config` and `run` (start and reload) go through. A missing routes.yml is an empty
 * route list (with a warning); a missing config.json, a syntax error or an invalid value is a
 * ConfigError.
 */
export async function loadConfigDir(dir: string): Promise<LoadedConfig> {
  const files = { config: join(dir, 'config.json'), routes: join(dir, 'routes.yml') };
  const [config, routes] = await Promise.all([
    readDocument(files.config, parseJson),
    readDocument(files.routes, parseYaml),
  ]);
  const issues: ConfigIssue[] = [];
  if (config.ok === 'missing') {
    issues.push({ file: files.config, key: '(file)', message: 'not found' });
  }
  if (config.ok === false) issues.push(config.issue);
  if (routes.ok === false) issues.push(routes.issue);
  if (config.ok !== true || routes.ok === false) throw new ConfigError(issues);
  // An empty routes.yml parses as undefined, which IPC would drop: null means "no routes" in
  // both processes.
  const raw = { config: config.value, routes: routes.ok === true ? (routes.value ?? null) : null };
  const parsed = parseConfig(raw.config, raw.routes, files);
  const routeFiles = await readRouteFiles(parsed.routes, files.routes);
  const loginPage = await readLoginPage(parsed.config, files.config);
  const loki = await readLokiHeaders(parsed.config.log, files.config);
  const tls = parsed.config.tls ? await checkTlsFiles(dir) : { files: undefined, warnings: [] };
  const warnings = [
    ...(routes.ok === 'missing'
      ? [`${files.routes}: (file): not found, no routes configured`]
      : []),
    ...parsed.warnings,
    ...routeTlsWarnings(parsed.routes, files.routes),
    ...tls.warnings,
    ...sessionWarnings(parsed.config, parsed.routes, files.config),
    ...loki.warnings,
  ];
  return deepFreeze({
    ...parsed,
    warnings,
    raw,
    files,
    tls: tls.files,
    routeFiles,
    loginPage,
    lokiHeaders: loki.headers,
  });
}

async function readDocument(
  file: string,
  parse: (text: string, file: string) => unknown,
): Promise<Read> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: 'missing' };
    return {
      ok: false,
      issue: { file, key: '(file)', message: `cannot read (${code ?? String(err)})` },
    };
  }
  try {
    return { ok: true, value: parse(text, file) };
  } catch (err) {
    if (!(err instanceof SyntaxIssue)) throw err;
    return { ok: false, issue: { file, key: '(syntax)', ...err.position, message: err.message } };
  }
}

class SyntaxIssue extends Error {
  constructor(
    message: string,
    readonly position: { line: number; column: number },
  ) {
    super(message);
  }
}

function parseJson(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    // JSON.parse does not say where; the scanner does (its offsets include any BOM).
    try {
      scanJson(text);
    } catch (located) {
      if (located instanceof JsonSyntaxError) {
        throw new SyntaxIssue(located.message, { line: located.line, column: located.column });
      }
      throw located;
    }
    // Unreachable while the scanner is as strict as JSON.parse; keep V8's message just in case.
    throw new SyntaxIssue(err.message, { line: 1, column: 1 });
  }
}

function parseYaml(text: string, file: string): unknown {
  try {
    // CORE_SCHEMA: plain JSON-like values only (no timestamps, binary or merge keys), so the
    // value survives an IPC round trip unchanged and the edges validate exactly what we did.
    return yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: file });
  } catch (err) {
    if (!(err instanceof yaml.YAMLException)) throw err;
    const line = err.mark.line + 1;
    const column = err.mark.column + 1;
    throw new SyntaxIssue(`line ${line}, column ${column}: ${err.reason}`, { line, column });
  }
}

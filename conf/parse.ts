import { dirname } from 'node:path';
import type { z } from 'zod';
import type { ConfigIssue } from './config-error.js';
import { ConfigError } from './config-error.js';
import type { Config } from './config-schema.js';
import { configSchema } from './config-schema.js';
import {
  crossWarnings,
  duplicatePrefixes,
  duplicateUsernames,
  listenerClashes,
} from './cross-checks.js';
import { deepFreeze } from './deep-freeze.js';
import { healthPathIssues } from './health-paths.js';
import { configNotYetSupported, routesNotYetSupported } from './not-yet-supported.js';
import { resolveCertFiles } from './resolve-cert-files.js';
import type { RouteConfig } from './routes-schema.js';
import { routesFileSchema } from './routes-schema.js';
import {
  requiredKeyMessage,
  splitIssues,
  unknownKeyErrors,
  unknownKeyWarnings,
  withoutUnknownKeys,
} from './zod-issues.js';

/** Paths of the two configuration files, used in issues and to resolve relative cert files. */
export interface ConfigFiles {
  config: string;
  routes: string;
}

/** A validated, normalised and deep-frozen configuration. */
export interface ParsedConfig {
  readonly config: Config;
  readonly routes: readonly RouteConfig[];
  /** Unknown keys and suspicious settings, one `<file>: <key>: <message>` line each. */
  readonly warnings: readonly string[];
}

interface Checked<T> {
  value?: T;
  errors: ConfigIssue[];
  warnings: string[];
}

/**
 * Validates raw config.json and routes.yml values (as parsed from JSON/YAML, or as received over
 * IPC). Pure and deterministic. Unknown keys and settings that have no effect yet are warnings;
 * every other problem of both files, settings that are not supported yet included
 * (not-yet-supported.ts), is collected into one {@link ConfigError}. Relative `cert` files are
 * resolved against the directory of `files.routes`.
 */
export function parseConfig(
  rawConfig: unknown,
  rawRoutes: unknown,
  files: ConfigFiles,
): ParsedConfig {
  const config = check(configSchema, rawConfig, files.config);
  const routes = check(routesFileSchema, rawRoutes ?? {}, files.routes);
  // Each file's unbuilt settings are checked as soon as that file is valid, so they are
  // reported beside the other file's errors.
  const configPending = config.value && configNotYetSupported(config.value, files.config);
  const routesPending = routes.value && routesNotYetSupported(routes.value.routes, files.routes);
  const errors = [
    ...config.errors,
    ...duplicateUsernames(files.config, rawConfig),
    ...(config.value === undefined ? [] : listenerClashes(config.value, files.config)),
    ...(configPending?.errors ?? []),
    ...routes.errors,
    ...duplicatePrefixes(files.routes, rawRoutes),
    ...(routesPending?.errors ?? []),
  ];
  if (errors.length > 0 || config.value === undefined || routes.value === undefined) {
    throw new ConfigError(errors);
  }
  const routeList = resolveCertFiles(routes.value.routes, dirname(files.routes));
  const health = healthPathIssues(config.value, routeList, files.routes);
  if (health.errors.length > 0) throw new ConfigError(health.errors);
  const warnings = [
    ...config.warnings,
    ...(configPending?.warnings ?? []),
    ...routes.warnings,
    ...(routesPending?.warnings ?? []),
    ...crossWarnings(config.value, routeList, files),
    ...health.warnings,
  ];
  return deepFreeze({ config: config.value, routes: routeList, warnings });
}

/** Top-level lists whose entries refuse unknown keys (config.json's users, routes.yml's routes). */
const STRICT_LISTS = new Set(['users', 'routes']);

/**
 * Validates `raw`; unknown keys are reported as warnings, dropped, and the rest re-validated,
 * except inside users and routes, where they are errors.
 */
function check<S extends z.ZodType>(schema: S, raw: unknown, file: string): Checked<z.output<S>> {
  const warnings: string[] = [];
  let input = raw;
  // Each pass can only reveal unknown keys hidden under a previous error, so this ends quickly.
  for (let pass = 0; pass < 8; pass++) {
    const result = schema.safeParse(input, { error: requiredKeyMessage });
    if (result.success) return { value: result.data, errors: [], warnings };
    const { errors, unknown } = splitIssues(file, result.error.issues);
    // In a user or a route, a misspelled key (`usernames`, `alow`) would silently leave a
    // restriction out: there an unknown key is an error, elsewhere a warning.
    const strict = unknown.filter((u) => STRICT_LISTS.has(String(u.path[0])));
    if (strict.length > 0)
      return { errors: [...errors, ...unknownKeyErrors(file, strict)], warnings };
    if (unknown.length === 0) return { errors, warnings };
    warnings.push(...unknownKeyWarnings(file, unknown));
    input = withoutUnknownKeys(input, unknown);
  }
  return { errors: [{ file, key: '(root)', message: 'too deeply nested unknown keys' }], warnings };
}

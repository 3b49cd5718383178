import type { ConfigIssue } from './config-error.js';
import type { Config, UserConfig } from './config-schema.js';
import { configSchema } from './config-schema.js';
import type { RouteConfig } from './routes-schema.js';

/*
 * Keys the schema accepts (configs written for the original must load) but the gateway does not
 * act on yet. Rule: never accept a security setting that is not enforced.
 *
 * - error: the setting turns on a protection, or changes who or what gets through, and ignoring
 *   it would let through what the operator meant to stop. The config is refused (start stops,
 *   a reload keeps the running config) with "not supported yet" and why.
 * - warning: ignoring it changes no access decision; it is reported at start and by
 *   check-config as "has no effect".
 *
 * Conditions read the normalised values, and a row fires only when the setting differs from
 * its default: an absent key is its default, so defaults (and first start's config.json, which
 * spells every default out) never warn.
 *
 * Departures from a plain "security key = error" reading, and why:
 * - csrf_token set to false warns only while session_cookie is false: CSRF checks only exist in
 *   session-cookie mode, so switching them off there changes nothing.
 *
 * When a feature is built, delete its row (and its test case): the key is then enforced.
 */

/** How a row reports a setting that is on. */
export type NotYetSupportedLevel = 'error' | 'warning';

interface RowBase {
  readonly level: NotYetSupportedLevel;
  /** The whole issue message: errors start "not supported yet: ", warnings "has no effect". */
  readonly message: string;
}

/** One key of the table; `key` is the documented path, `[]` standing for every index. */
export type NotYetSupportedRow =
  | (RowBase & {
      readonly key: string;
      readonly scope: 'config';
      readonly on: (c: Config) => boolean;
    })
  | (RowBase & {
      readonly key: `users[].${string}`;
      readonly scope: 'user';
      readonly on: (u: UserConfig) => boolean;
    })
  | (RowBase & {
      readonly key: `routes[].${string}`;
      readonly scope: 'route';
      readonly on: (r: RouteConfig) => boolean;
    });

// Read from the schema so that a changed default cannot make every config warn.
const DEFAULT = {
  max_age_session_cookie: configSchema.shape.max_age_session_cookie.parse(undefined),
  max_connections: configSchema.shape.max_connections.parse(undefined),
  pending_connections_limit: configSchema.shape.pending_connections_limit.parse(undefined),
  socket_listen: configSchema.shape.socket_listen.parse(undefined),
};

const NO_EFFECT = 'has no effect yet: ';
const COMPAT = 'has no effect: accepted for compatibility, uWebSockets.js has no such setting';

/** The decision table, one row per key. */
export const NOT_YET_SUPPORTED: readonly NotYetSupportedRow[] = [
  // config.json, warnings
  {
    key: 'csrf_token',
    scope: 'config',
    level: 'warning',
    on: (c) => !c.csrf_token && !c.session_cookie,
    message: `${NO_EFFECT}CSRF checks only exist in session-cookie mode (session_cookie is false)`,
  },
  {
    key: 'max_connections',
    scope: 'config',
    level: 'warning',
    on: (c) => c.max_connections !== DEFAULT.max_connections,
    message: COMPAT,
  },
  {
    key: 'pending_connections_limit',
    scope: 'config',
    level: 'warning',
    on: (c) => c.pending_connections_limit !== DEFAULT.pending_connections_limit,
    message: COMPAT,
  },
  {
    key: 'socket_listen',
    scope: 'config',
    level: 'warning',
    on: (c) => c.socket_listen !== DEFAULT.socket_listen,
    message: COMPAT,
  },
];

/** What the table finds in one file: errors for ConfigError, `<file>: <key>: <message>` warnings. */
export interface NotYetSupportedFindings {
  errors: ConfigIssue[];
  warnings: string[];
}

/** Applies the config.json rows (scopes `config` and `user`) to a validated config. */
export function configNotYetSupported(config: Config, file: string): NotYetSupportedFindings {
  const hits: [string, NotYetSupportedRow][] = [];
  for (const row of NOT_YET_SUPPORTED) {
    if (row.scope === 'config' && row.on(config)) hits.push([row.key, row]);
    if (row.scope === 'user') {
      config.users.forEach((u, i) => {
        if (row.on(u)) hits.push([indexed(row.key, i), row]);
      });
    }
  }
  return findings(file, hits);
}

/** Applies the routes.yml rows (scope `route`) to validated routes. */
export function routesNotYetSupported(
  routes: readonly RouteConfig[],
  file: string,
): NotYetSupportedFindings {
  const hits: [string, NotYetSupportedRow][] = [];
  routes.forEach((r, i) => {
    for (const row of NOT_YET_SUPPORTED) {
      if (row.scope === 'route' && row.on(r)) hits.push([indexed(row.key, i), row]);
    }
  });
  return findings(file, hits);
}

function indexed(key: string, index: number): string {
  return key.replace('[]', `[${index}]`);
}

function findings(file: string, hits: [string, NotYetSupportedRow][]): NotYetSupportedFindings {
  const out: NotYetSupportedFindings = { errors: [], warnings: [] };
  for (const [key, { level, message }] of hits) {
    if (level === 'error') out.errors.push({ file, key, message });
    else out.warnings.push(`${file}: ${key}: ${message}`);
  }
  return out;
}

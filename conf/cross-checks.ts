import { isIP } from 'node:net';
import { parseIpEntry } from '../shared/ip-match.js';
import { foldPath } from '../shared/path-fold.js';
import type { ConfigIssue } from './config-error.js';
import type { Config } from './config-schema.js';
import type { RouteConfig } from './routes-schema.js';
import { trimTrailingSlash } from './routes-schema.js';
import { totpWarnings } from './totp-warnings.js';

// These run on the raw input, beside the schema, so that a duplicate is reported even when
// other keys of the same file are invalid (zod skips refinements after a type error).

/** An issue for every username already used by an earlier user. */
export function duplicateUsernames(file: string, rawConfig: unknown): ConfigIssue[] {
  const users = isRecord(rawConfig) ? rawConfig.users : undefined;
  return duplicates(file, users, 'users', 'username', (name) => name);
}

/**
 * An issue for every route prefix already used by an earlier route: `/a/` equals `/a`, and
 * `/A` and `/a.` equal `/a` too (a case-insensitive backend, or one that drops trailing dots,
 * could not tell them apart; shared/path-fold.ts).
 */
export function duplicatePrefixes(file: string, rawRoutes: unknown): ConfigIssue[] {
  const routes = isRecord(rawRoutes) ? rawRoutes.routes : undefined;
  return duplicates(file, routes, 'routes', 'prefix', (p) => foldPath(trimTrailingSlash(p)));
}

/** Valid but suspicious settings: route users that do not exist, a proxy list that trusts all. */
/** Exact paths the gateway answers itself (worker/endpoints.ts; `/adm` is refused outright). */
const GATEWAY_PATHS: readonly string[] = ['/auth', '/logout', '/auth/verify'];

export function crossWarnings(
  config: Config,
  routes: readonly RouteConfig[],
  files: { config: string; routes: string },
): string[] {
  const known = new Set(config.users.map((u) => u.username));
  const warnings: string[] = totpWarnings(config, files.config);
  config.trusted_proxies.forEach((entry, i) => {
    // A /0 trusts every peer: any client then picks the address limits and lockouts key on.
    if (parseIpEntry(entry).prefix === 0) {
      warnings.push(
        `${files.config}: trusted_proxies[${i}]: ${entry} trusts every address, so any client ` +
          'can choose the address that allow lists, rate limits and lockouts see; list your proxies',
      );
    }
  });
  routes.forEach((r, i) => {
    // worker/endpoints.ts answers these paths itself; only the paths below reach the route.
    if (GATEWAY_PATHS.includes(r.prefix.toLowerCase())) {
      warnings.push(
        `${files.routes}: routes[${i}].prefix: ${r.prefix} itself is the gateway's own ` +
          `endpoint; only paths below it (${r.prefix}/...) reach this route`,
      );
    }
    r.username?.forEach((name, j) => {
      if (!known.has(name)) {
        warnings.push(`${files.routes}: routes[${i}].username[${j}]: no user named "${name}"`);
      }
    });
  });
  return warnings;
}

function duplicates(
  file: string,
  list: unknown,
  listKey: string,
  field: string,
  normalise: (value: string) => string,
): ConfigIssue[] {
  if (!Array.isArray(list)) return [];
  const seen = new Map<string, number>();
  const issues: ConfigIssue[] = [];
  list.forEach((item: unknown, i) => {
    const value = isRecord(item) ? item[field] : undefined;
    if (typeof value !== 'string') return;
    const key = normalise(value);
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, i);
      return;
    }
    const message = `duplicate ${field} "${value}" (first at ${listKey}[${first}])`;
    issues.push({ file, key: `${listKey}[${i}].${field}`, message });
  });
  return issues;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `metrics.listen` on the gateway's own port where the two would bind the same address: the
 * start would then fail with the main port "already in use" by its own metrics listener. They
 * overlap unless both hosts are distinct IP literals and neither is a wildcard (`0.0.0.0`,
 * `::`); a host name may resolve to anything, so it overlaps too. Port 0 (any free port) never
 * clashes.
 */
export function listenerClashes(config: Config, file: string): ConfigIssue[] {
  const metrics = config.metrics;
  if (metrics === undefined || metrics.port === 0 || metrics.port !== config.port) return [];
  const plain = (host: string) => host.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  const a = plain(config.host);
  const b = plain(metrics.host);
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
  const apart = isIP(a) !== 0 && isIP(b) !== 0 && !wildcard(a) && !wildcard(b) && a !== b;
  if (apart) return [];
  return [
    {
      file,
      key: 'metrics.listen',
      message: `${metrics.host}:${metrics.port} overlaps the gateway's own host:port (${config.host}:${config.port}): give the metrics listener another port`,
    },
  ];
}

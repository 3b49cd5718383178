import { foldPath } from '../shared/path-fold.js';
import type { ConfigIssue } from './config-error.js';
import type { Config } from './config-schema.js';
import type { RouteConfig } from './routes-schema.js';

/** The paths the edges answer themselves when `health_on_main_port` is true. */
export const HEALTH_PATHS: readonly string[] = ['/healthz', '/readyz'];

/**
 * What `health_on_main_port` does to routes.yml. The endpoints are exact paths looked up before
 * the route table (worker/endpoints.ts), so they win over any route:
 * - a route whose prefix is one of them (also when letter case or trailing dots differ, as
 *   duplicate prefixes are compared) is an error naming the route: turning the option on
 *   would silently take that path from its backend;
 * - a root route (`/`) gets a warning: it keeps every other path, these two never reach it.
 * Nothing when the option is off. `file` is routes.yml's path, for the issues.
 */
export function healthPathIssues(
  config: Config,
  routes: readonly RouteConfig[],
  file: string,
): { errors: ConfigIssue[]; warnings: string[] } {
  const errors: ConfigIssue[] = [];
  const warnings: string[] = [];
  if (!config.health_on_main_port) return { errors, warnings };
  routes.forEach((route, i) => {
    const key = `routes[${i}].prefix`;
    if (HEALTH_PATHS.includes(foldPath(route.prefix))) {
      errors.push({
        file,
        key,
        message:
          `${route.prefix} is answered by the gateway while health_on_main_port is true: ` +
          'choose another prefix for this route, or turn health_on_main_port off',
      });
    } else if (route.prefix === '/') {
      warnings.push(
        `${file}: ${key}: / does not receive ${HEALTH_PATHS.join(' and ')}: the gateway ` +
          'answers them itself (health_on_main_port)',
      );
    }
  });
  return { errors, warnings };
}

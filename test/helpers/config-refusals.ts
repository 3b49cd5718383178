import { ConfigError } from '../../conf/config-error.js';
import { parseConfig } from '../../conf/parse.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };

/** The keys a config.json with `extra` (and a valid secret) is refused for ([] when accepted). */
export function refusedKeys(extra: Record<string, unknown>): string[] {
  try {
    parseConfig({ secret: 's'.repeat(64), ...extra }, null, FILES);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.key);
    throw err;
  }
  return [];
}

import { ConfigError } from '../conf/config-error.js';
import { loadConfigDir } from '../conf/load.js';
import type { Dirs } from './dirs.js';

/** `proxyauth check-config`: every issue with its file and key; exit 1 when there is one. */
export async function checkConfig(dirs: Dirs): Promise<number> {
  try {
    const { warnings, routes, config } = await loadConfigDir(dirs.configDir);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(
      `${dirs.configDir}: configuration is valid (${config.users.length} users, ${routes.length} routes)\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.format()}\n`);
    return 1;
  }
}

import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface Dirs {
  configDir: string;
  dataDir: string;
}

/**
 * Flag, then environment, then a default: the system paths of the original for root, the XDG
 * base directories for anyone else (so a user can try the gateway without sudo).
 */
export function resolveDirs(
  flags: { configDir: string | undefined; dataDir: string | undefined },
  env: NodeJS.ProcessEnv,
  isRoot: boolean,
): Dirs {
  const xdgConfig = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  const xdgData = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  const configDir =
    flags.configDir ??
    (env.PROXYAUTH_CONFIG_DIR || (isRoot ? '/etc/proxyauth/config' : join(xdgConfig, 'proxyauth')));
  const dataDir =
    flags.dataDir ??
    (env.PROXYAUTH_DATA_DIR || (isRoot ? '/var/lib/proxyauth' : join(xdgData, 'proxyauth')));
  return { configDir: resolve(configDir), dataDir: resolve(dataDir) };
}

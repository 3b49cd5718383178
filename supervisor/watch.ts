import { type FSWatcher, watch } from 'node:fs';
import { createLogger } from '../shared/log.js';

const log = createLogger('supervisor');

/**
 * Calls `onChange` once after a burst of changes to the named entries of `dir` (every entry
 * when `names` is 'any'). The directory is watched, not the files: editors, config management
 * and certbot replace files by rename, which would leave a watch on the old inode silent.
 */
export function watchFiles(
  dir: string,
  names: readonly string[] | 'any',
  onChange: () => void,
  debounceMs = 300,
): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dir, { persistent: false }, (_event, filename) => {
    // Kubernetes ConfigMaps and Secrets swap a `..data` symlink rather than the files
    // themselves: any event counts, and a reload that finds nothing changed is a no-op.
    const name = filename?.toString();
    if (names !== 'any' && name !== undefined && !names.includes(name) && !name.startsWith('..'))
      return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  // A watched directory that disappears (an unmounted volume) must not crash the supervisor.
  watcher.on('error', (err) => {
    log.warn('stopped watching a directory', { dir, reason: err.message });
    watcher.close();
  });
  return watcher;
}

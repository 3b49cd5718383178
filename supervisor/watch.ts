import { type FSWatcher, watch } from 'node:fs';

/**
 * Calls `onChange` once after a burst of changes to the named files in `dir`. The directory is
 * watched, not the files: editors and config management replace files by rename, which would
 * leave a watch on the old inode silent.
 */
export function watchFiles(
  dir: string,
  names: readonly string[],
  onChange: () => void,
  debounceMs = 300,
): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dir, { persistent: false }, (_event, filename) => {
    // Kubernetes ConfigMaps swap a `..data` symlink rather than the files themselves: any event
    // counts, and a reload that finds nothing changed is a no-op.
    if (
      filename !== null &&
      !names.includes(filename.toString()) &&
      !filename.toString().startsWith('..')
    )
      return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  return watcher;
}

import type { FSWatcher } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { watchFiles } from './watch.js';

/** Symlinks followed at most, as the kernel's own limit for path resolution. */
const MAX_LINKS = 40;

/** Watches a changing set of files; see {@link watchNamedFiles}. */
export interface FileWatch {
  /**
   * Watches exactly `files` (absolute paths) from now on: re-reads where their symlinks lead,
   * starts the watches that are new and stops those no longer needed.
   */
  refresh(files: readonly string[]): Promise<void>;
  close(): void;
}

/**
 * Calls `onChange` after a change to any of the files last given to `refresh`: the certificate
 * pair, the routes' upstream TLS files, the login page. Their directories are watched, not the
 * files (an editor or certbot replaces a file by rename, which would leave a watch on the old
 * inode silent), for those names only; every directory on a file's symlink chain is watched
 * whole (certbot's live/ links point into archive/, whose file names change at each renewal).
 * Directories that do not exist are skipped: the config dir's own watch sees them appear, and
 * the reload that follows refreshes this one.
 */
export function watchNamedFiles(onChange: () => void): FileWatch {
  /** Watched directories: the watcher and what it filters on ('any' or a sorted name list). */
  const watchers = new Map<string, { watcher: FSWatcher; names: string }>();
  let closed = false;
  return {
    async refresh(files) {
      const wanted = new Map<string, Set<string> | 'any'>();
      for (const file of files) {
        const dir = dirname(file);
        const names = wanted.get(dir);
        if (names === undefined) wanted.set(dir, new Set([basename(file)]));
        else if (names !== 'any') names.add(basename(file));
        for (const linked of await linkDirs(file)) wanted.set(linked, 'any');
      }
      if (closed) return;
      const specs = new Map<string, string>();
      for (const [dir, names] of wanted) {
        specs.set(dir, names === 'any' ? 'any' : JSON.stringify([...names].sort()));
      }
      for (const [dir, entry] of watchers) {
        if (specs.get(dir) === entry.names) continue;
        entry.watcher.close();
        watchers.delete(dir);
      }
      for (const [dir, names] of specs) {
        if (watchers.has(dir)) continue;
        try {
          const filter: readonly string[] | 'any' = names === 'any' ? 'any' : JSON.parse(names);
          watchers.set(dir, { watcher: watchFiles(dir, filter, onChange), names });
        } catch {
          // Not there (yet): see above.
        }
      }
    },
    close() {
      closed = true;
      for (const entry of watchers.values()) entry.watcher.close();
      watchers.clear();
    },
  };
}

/** The directories of every symlink target on `file`'s chain. */
async function linkDirs(file: string): Promise<string[]> {
  const dirs: string[] = [];
  let path = file;
  for (let i = 0; i < MAX_LINKS; i++) {
    const stats = await lstat(path).catch(() => undefined);
    if (!stats?.isSymbolicLink()) break;
    const target = await readlink(path).catch(() => undefined);
    if (target === undefined) break;
    path = resolve(dirname(path), target);
    dirs.push(dirname(path));
  }
  return dirs;
}

import type { FSWatcher } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { watchFiles } from './watch.js';

/** Symlinks followed at most, as the kernel's own limit for path resolution. */
const MAX_LINKS = 40;

/** Watches the certificate pair of a config dir; see {@link watchCertificates}. */
export interface CertWatch {
  /** Re-reads where the pair's files and symlinks live and watches those directories. */
  refresh(): Promise<void>;
  close(): void;
}

/**
 * Calls `onChange` after changes to certs/cert.pem or certs/key.pem, including a renewal that
 * only swaps symlinks elsewhere: certs/ is watched, and so is every directory on the files'
 * symlink chains (certbot's live/ links point into archive/). `refresh()` after each reload
 * follows links that moved. Directories that do not exist are skipped.
 */
export function watchCertificates(configDir: string, onChange: () => void): CertWatch {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  return {
    async refresh() {
      const certFile = join(configDir, 'certs', 'cert.pem');
      const keyFile = join(configDir, 'certs', 'key.pem');
      const dirs = new Set([dirname(certFile)]);
      for (const file of [certFile, keyFile]) for (const dir of await linkDirs(file)) dirs.add(dir);
      if (closed) return;
      for (const [dir, watcher] of watchers)
        if (!dirs.has(dir)) {
          watcher.close();
          watchers.delete(dir);
        }
      for (const dir of dirs) {
        if (watchers.has(dir)) continue;
        try {
          watchers.set(dir, watchFiles(dir, 'any', onChange));
        } catch {
          // Not there (yet): the config dir's own watch sees certs/ appear, and the reload
          // that follows refreshes this one.
        }
      }
    },
    close() {
      closed = true;
      for (const watcher of watchers.values()) watcher.close();
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

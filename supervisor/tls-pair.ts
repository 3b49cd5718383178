import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckedTlsPair } from '../conf/tls-files.js';
import type { TlsFiles } from '../shared/ipc.js';

/**
 * Copies a validated pair to `<dataDir>/tls/<fingerprint>/` (0700 dir, 0600 files) and returns
 * the paths edges load. Edges never read the operator's files: a pair replaced halfway after
 * validation cannot reach a starting edge, and an edge restarted after a crash gets the pair
 * its generation was validated with. Idempotent.
 */
export async function installTlsPair(pair: CheckedTlsPair, dataDir: string): Promise<TlsFiles> {
  const dir = join(dataDir, 'tls', pair.fingerprint);
  const files: TlsFiles = {
    certFile: join(dir, 'cert.pem'),
    keyFile: join(dir, 'key.pem'),
    fingerprint: pair.fingerprint,
  };
  if ((await exists(files.certFile)) && (await exists(files.keyFile))) return files;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Each file is written under a temporary name and renamed, so a copy is whole or absent.
  await writeWhole(files.keyFile, pair.pem.key);
  await writeWhole(files.certFile, pair.pem.cert);
  return files;
}

/** Removes the copies of every pair but those in `keep` (fingerprints). */
export async function pruneTlsCopies(dataDir: string, keep: ReadonlySet<string>): Promise<void> {
  const root = join(dataDir, 'tls');
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await Promise.all(
    entries
      .filter((name) => !keep.has(name))
      .map((name) => rm(join(root, name), { recursive: true, force: true })),
  );
}

async function writeWhole(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content, { encoding: 'latin1', mode: 0o600 });
  await rename(tmp, file);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

import { randomBytes } from 'node:crypto';
import { link, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Mode and, when running as root, owner to give the new file. */
export interface AtomicWriteOptions {
  mode: number;
  owner?: { uid: number; gid: number };
}

/**
 * Replaces `file` with `data` so that readers see the old or the new content, never a mix,
 * even across a crash: temp file in the same directory, fsync, rename, fsync of the directory.
 */
export async function writeFileAtomic(
  file: string,
  data: string,
  options: AtomicWriteOptions,
): Promise<void> {
  const dir = dirname(file);
  const tmp = tempName(file);
  try {
    await writeAndSync(tmp, data, options);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
}

/**
 * Creates `file` with `data` only if it does not exist yet, all or nothing: the content is
 * complete before the name appears (temp file + hard link). Returns false when `file` existed.
 */
export async function writeFileExclusive(
  file: string,
  data: string,
  options: AtomicWriteOptions,
): Promise<boolean> {
  const dir = dirname(file);
  const tmp = tempName(file);
  try {
    await writeAndSync(tmp, data, options);
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
  await syncDirectory(dir);
  return true;
}

function tempName(file: string): string {
  return join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
}

async function writeAndSync(tmp: string, data: string, options: AtomicWriteOptions): Promise<void> {
  const handle = await open(tmp, 'wx', options.mode);
  try {
    await handle.writeFile(data, 'utf8');
    // open()'s mode is filtered by the umask; the file must end up with exactly this mode.
    await handle.chmod(options.mode);
    const { owner } = options;
    if (owner !== undefined && process.getuid?.() === 0) await handle.chown(owner.uid, owner.gid);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

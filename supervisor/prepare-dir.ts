import { constants, type Stats } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PrepareError } from './prepare-error.js';

/** The mode of the config and data dirs: config.json and the store are the gateway's only. */
export const DIR_MODE = 0o700;
/** Parents prepare has to create (e.g. /etc/proxyauth): root's, and traversable by the user. */
const PARENT_MODE = 0o755;

/** What prepare will do with one dir, found before anything changes. */
export type DirPlan =
  | { kind: 'create'; label: string; path: string; parents: string[] }
  | { kind: 'keep'; label: string; path: string; gid: number; mode: number }
  | { kind: 'take-over'; label: string; path: string; entries: number };

/**
 * Looks at `path` for the user `uid` (undefined: the user does not exist yet) and says what
 * prepare will do, or throws PREPARE_DIR_REFUSED / PREPARE_UNSAFE_PARENT. A dir already the
 * user's is kept; a dir of root's (e.g. made by a `proxyauth run` as root) is taken over with
 * its contents; anything else (another user's dir, a symlink, a file) is refused.
 */
export async function inspectDir(
  label: string,
  path: string,
  uid: number | undefined,
): Promise<DirPlan> {
  const st = await lstatOrUndefined(path);
  if (st === undefined) {
    const parents = await missingParents(path);
    await checkParents(dirname(parents[0] ?? path), label);
    return { kind: 'create', label, path, parents };
  }
  if (st.isSymbolicLink()) refuse(label, path, 'is a symlink; give the path it points to');
  if (!st.isDirectory()) refuse(label, path, 'exists and is not a directory');
  await checkParents(dirname(path), label);
  if (uid !== undefined && st.uid === uid) {
    return { kind: 'keep', label, path, gid: st.gid, mode: st.mode & 0o7777 };
  }
  if (st.uid !== 0) refuse(label, path, `belongs to uid ${st.uid}, not root nor the user`);
  const entries = await scanTree(label, path, st, uid);
  return { kind: 'take-over', label, path, entries };
}

/**
 * Carries out a plan for `owner` and returns the line that says what happened. The dir itself
 * is changed through a handle opened with O_NOFOLLOW, so a symlink put in its place after the
 * inspection is refused by the kernel (ELOOP) rather than followed.
 */
export async function applyDirPlan(
  plan: DirPlan,
  owner: { name: string; uid: number; gid: number },
): Promise<{ line: string; changed: boolean }> {
  const head = `${plan.label} ${plan.path}`;
  const result = `${owner.name}:${owner.name} ${octal(DIR_MODE)}`;
  switch (plan.kind) {
    case 'create': {
      for (const parent of plan.parents) {
        await mkdir(parent, { mode: PARENT_MODE });
        await chmod(parent, PARENT_MODE);
      }
      await mkdir(plan.path, { mode: DIR_MODE });
      await setOwnerAndMode(plan.path, owner);
      const made = plan.parents.map((p) => `, parent ${p} root:root ${octal(PARENT_MODE)}`);
      return { line: `${head}: created (${result}${made.join('')})`, changed: true };
    }
    case 'keep': {
      const changes: string[] = [];
      if (plan.gid !== owner.gid) changes.push(`group gid ${plan.gid} -> ${owner.name}`);
      if (plan.mode !== DIR_MODE) changes.push(`mode ${octal(plan.mode)} -> ${octal(DIR_MODE)}`);
      if (changes.length === 0)
        return { line: `${head}: already there (${result})`, changed: false };
      await setOwnerAndMode(plan.path, owner);
      return { line: `${head}: ${changes.join(', ')}`, changed: true };
    }
    case 'take-over': {
      await chownTree(plan.path, owner);
      await setOwnerAndMode(plan.path, owner);
      const what = plan.entries === 1 ? '1 entry' : `${plan.entries} entries`;
      return {
        line: `${head}: taken over from root with ${what} in it (now ${result})`,
        changed: true,
      };
    }
  }
}

async function setOwnerAndMode(path: string, owner: { uid: number; gid: number }): Promise<void> {
  const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await dir.chown(owner.uid, owner.gid);
    await dir.chmod(DIR_MODE);
  } finally {
    await dir.close();
  }
}

/**
 * Counts the entries under a root-owned dir, refusing what a chown as root must not touch: an
 * entry of a third user (not ours to give away), a file with more than one link (a hard link
 * to, say, /etc/shadow would give it away), a device, socket or fifo, and a directory others
 * may write to (they could slip such an entry in between this scan and the chown).
 */
async function scanTree(
  label: string,
  path: string,
  st: Stats,
  uid: number | undefined,
): Promise<number> {
  if ((st.mode & 0o022) !== 0) refuse(label, path, `is writable by others (${octal(st.mode)})`);
  let count = 0;
  for (const name of await readdir(path)) {
    const entry = join(path, name);
    const est = await lstat(entry);
    count++;
    if (est.uid !== 0 && est.uid !== uid) refuse(label, entry, `belongs to uid ${est.uid}`);
    // A directory already the user's is given as it is, never walked: its owner may swap an
    // entry in it for a symlink at any time, and a walk by path would follow it (readdir and
    // lchown resolve every component but the last), making root chown what the link points to.
    if (est.isDirectory()) {
      if (est.uid === 0) count += await scanTree(label, entry, est, uid);
    } else if (est.isFile() && est.nlink > 1) refuse(label, entry, 'is a hard link');
    else if (!est.isFile() && !est.isSymbolicLink()) refuse(label, entry, 'is a special file');
  }
  return count;
}

/**
 * lchown: a symlink is given away itself, never what it points to. Only directories of root's
 * are walked (scanTree made sure none of them is writable by others, so no one but root can
 * change them meanwhile); a directory of the user's is given itself, its contents left as they
 * are (walking it by path would follow a symlink its owner swaps in).
 */
async function chownTree(path: string, owner: { uid: number; gid: number }): Promise<void> {
  for (const name of await readdir(path)) {
    const entry = join(path, name);
    const est = await lstat(entry);
    if (est.isDirectory() && est.uid === 0) await chownTree(entry, owner);
    await lchown(entry, owner.uid, owner.gid);
  }
}

/** The ancestors of `path` that do not exist, outermost first. */
async function missingParents(path: string): Promise<string[]> {
  const missing: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const st = await lstatOrUndefined(dir);
    if (st !== undefined) {
      if (!(await stat(dir)).isDirectory()) refuse('parent', dir, 'is not a directory');
      return missing.reverse();
    }
    missing.push(dir);
  }
}

/**
 * Every ancestor (symlinks resolved) must be root's and not writable by others unless sticky
 * (as /tmp): whoever may rename entries in a parent can swap the dir for one of their own.
 */
async function checkParents(start: string, label: string): Promise<void> {
  for (let dir = await realpath(start); ; dir = dirname(dir)) {
    const st = await stat(dir);
    if (st.uid !== 0) unsafeParent(label, dir, `belongs to uid ${st.uid}`);
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
      unsafeParent(label, dir, `is writable by others (${octal(st.mode)}) and not sticky`);
    }
    if (dirname(dir) === dir) return;
  }
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function refuse(label: string, path: string, why: string): never {
  throw new PrepareError(
    'PREPARE_DIR_REFUSED',
    `${label}: ${path} ${why}: not taken over (nothing was changed)`,
  );
}

function unsafeParent(label: string, dir: string, why: string): never {
  throw new PrepareError(
    'PREPARE_UNSAFE_PARENT',
    `${label}: parent ${dir} ${why}: its users could swap the dir (nothing was changed)`,
  );
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

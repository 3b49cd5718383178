import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';
import { PrepareError } from './prepare-error.js';

const run = promisify(execFile);

/**
 * A fixed PATH for the account tools: root's own PATH could name a directory someone else
 * writes to, and systemd-less shells (sudo -s, su) often lack the sbin directories.
 */
const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

/**
 * The names `prepare` creates: shadow-utils' portable subset (useradd(8) "Caveats": lower-case
 * letter or underscore, then letters, digits, underscores or dashes, at most 32 characters).
 * A leading digit is excluded also because getent(1) would read it as a uid.
 */
export const SYSTEM_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export interface AccountState {
  name: string;
  /** undefined: the user (or group) does not exist yet. */
  uid: number | undefined;
  gid: number | undefined;
  /** The primary group of an existing user (may differ from `gid`, the group named `name`). */
  userGid: number | undefined;
}

/** The user and the group called `name`, as NSS sees them (getent), without changing anything. */
export async function lookupAccount(name: string): Promise<AccountState> {
  const user = await getent('passwd', name);
  const group = await getent('group', name);
  return {
    name,
    uid: user === undefined ? undefined : Number(user[2]),
    userGid: user === undefined ? undefined : Number(user[3]),
    gid: group === undefined ? undefined : Number(group[2]),
  };
}

/** The shell that refuses logins, as useradd --system is usually given (else /bin/false). */
export async function nologinShell(): Promise<string> {
  for (const shell of ['/usr/sbin/nologin', '/sbin/nologin']) {
    if (
      await access(shell).then(
        () => true,
        () => false,
      )
    )
      return shell;
  }
  return '/bin/false';
}

/** `groupadd --system NAME`; returns the new gid. */
export async function createGroup(name: string): Promise<number> {
  await tool('groupadd', ['--system', name]);
  const group = await getent('group', name);
  if (group === undefined) throw toolFailure('groupadd', `group ${name} is still missing`);
  return Number(group[2]);
}

/**
 * `useradd --system` with the group `name` as primary group, `home` as home directory (not
 * created: it is the data dir, made by prepare with its own owner and mode) and a shell that
 * refuses logins. Returns the new uid.
 */
export async function createUser(name: string, home: string, shell: string): Promise<number> {
  await tool('useradd', [
    '--system',
    '--gid',
    name,
    '--home-dir',
    home,
    '--no-create-home',
    '--shell',
    shell,
    '--comment',
    'ProxyAuth gateway',
    name,
  ]);
  const user = await getent('passwd', name);
  if (user === undefined) throw toolFailure('useradd', `user ${name} is still missing`);
  return Number(user[2]);
}

/** The fields of the entry, or undefined when getent says "not found" (exit status 2). */
async function getent(db: 'passwd' | 'group', name: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await run('getent', [db, name], { env: TOOL_ENV });
    return stdout.trim().split(':');
  } catch (err) {
    if ((err as { code?: unknown }).code === 2) return undefined;
    throw toolFailure('getent', errorText(err));
  }
}

async function tool(command: string, args: string[]): Promise<void> {
  try {
    await run(command, args, { env: TOOL_ENV });
  } catch (err) {
    throw toolFailure(command, errorText(err));
  }
}

function errorText(err: unknown): string {
  const e = err as { code?: unknown; stderr?: string; message?: string };
  if (e.code === 'ENOENT') return 'not installed (it comes with the passwd package: shadow-utils)';
  return (e.stderr ?? '').trim() || `exit status ${String(e.code)}`;
}

function toolFailure(command: string, why: string): PrepareError {
  return new PrepareError('PREPARE_TOOL_FAILED', `${command}: ${why}`);
}

import type { Writable } from 'node:stream';
import type { Dirs } from './dirs.js';
import { applyDirPlan, type DirPlan, inspectDir } from './prepare-dir.js';
import { PrepareError } from './prepare-error.js';
import {
  type AccountState,
  createGroup,
  createUser,
  lookupAccount,
  nologinShell,
} from './system-account.js';

/** The service user of deploy/proxyauth.service (User=, Group=). */
export const DEFAULT_SERVICE_USER = 'proxyauth';

/**
 * `proxyauth prepare`: the system user and group `user` (created when missing: a system
 * account, home the data dir, a shell that refuses logins) and the config and data dirs, each
 * `user`:`user` 0700, so that the unit's first start finds them ready. It looks at everything
 * first and refuses (PrepareError, nothing changed) a user with uid 0 or a dir it must not
 * take over; then it makes the changes and prints one line per item, saying what it did or
 * that it was already there. A second run changes nothing. config.json is not written: the
 * first start does it. Exit status 0; failures throw.
 */
export async function prepareCommand(
  dirs: Dirs,
  user: string,
  context: { isRoot: boolean; out: Writable },
): Promise<number> {
  if (!context.isRoot) {
    throw new PrepareError(
      'PREPARE_NOT_ROOT',
      'prepare must run as root: it creates a system user and gives directories to it',
    );
  }
  if (nested(dirs.configDir, dirs.dataDir) || nested(dirs.dataDir, dirs.configDir)) {
    throw new PrepareError(
      'PREPARE_DIR_REFUSED',
      `config dir ${dirs.configDir} and data dir ${dirs.dataDir} must be apart, neither inside the other (nothing was changed)`,
    );
  }
  const account = await lookupAccount(user);
  if (account.uid === 0) {
    throw new PrepareError('PREPARE_USER_UNSAFE', `user ${user} has uid 0: not a service user`);
  }
  const plans: DirPlan[] = [
    await inspectDir('config dir', dirs.configDir, account.uid),
    await inspectDir('data dir', dirs.dataDir, account.uid),
  ];
  const { owner, lines, changed } = await ensureAccount(account, dirs.dataDir);
  let anyChange = changed;
  for (const plan of plans) {
    const result = await applyDirPlan(plan, owner);
    lines.push(result.line);
    anyChange ||= result.changed;
  }
  if (!anyChange) lines.push('nothing to do: everything was already there');
  context.out.write(`${lines.join('\n')}\n`);
  return 0;
}

/** Whether `inner` is `outer` or below it (both absolute and resolved, as resolveDirs gives). */
function nested(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

async function ensureAccount(
  account: AccountState,
  home: string,
): Promise<{
  owner: { name: string; uid: number; gid: number };
  lines: string[];
  changed: boolean;
}> {
  const { name } = account;
  const lines: string[] = [];
  let gid = account.gid;
  if (gid === undefined) {
    gid = await createGroup(name);
    lines.push(`group ${name}: created (system group, gid ${gid})`);
  } else {
    lines.push(`group ${name}: already there (gid ${gid})`);
  }
  let uid = account.uid;
  if (uid === undefined) {
    const shell = await nologinShell();
    uid = await createUser(name, home, shell);
    lines.push(`user ${name}: created (system user, uid ${uid}, home ${home}, shell ${shell})`);
  } else {
    const primary = account.userGid === gid ? '' : `; its primary group is gid ${account.userGid}`;
    lines.push(`user ${name}: already there (uid ${uid}${primary})`);
  }
  const changed = account.gid === undefined || account.uid === undefined;
  return { owner: { name, uid, gid }, lines, changed };
}

import { execFile, spawn } from 'node:child_process';
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { readReadiness } from '../supervisor/ready-signal.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { CLI } from './helpers/gateway.js';

/*
 * `proxyauth prepare` for real: it runs useradd and chown, so only as root (the test machine
 * and CI are root). Each test gets its own user name (removed in teardown with its group) and
 * its dirs under t.testdir(), so the machine's own `proxyauth` user and /etc are never touched.
 */
const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
let serial = 0;

async function getent(db: 'passwd' | 'group', name: string): Promise<string[] | undefined> {
  return exec('getent', [db, name]).then(
    ({ stdout }) => stdout.trim().split(':'),
    () => undefined,
  );
}

/** A user name no other test (or run) uses; userdel and groupdel in teardown. */
function serviceUser(t: Test): string {
  const name = `pa-t${process.pid}-${++serial}`;
  t.teardown(async () => {
    await exec('userdel', [name]).catch(() => undefined);
    await exec('groupdel', [name]).catch(() => undefined);
  });
  return name;
}

function dirsIn(root: string) {
  const configDir = join(root, 'etc', 'proxyauth', 'config');
  const dataDir = join(root, 'var', 'lib', 'proxyauth');
  return { configDir, dataDir, args: ['--config-dir', configDir, '--data-dir', dataDir] };
}

async function owner(path: string) {
  const st = await lstat(path);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
}

const skip = isRoot ? false : 'prepare needs root (useradd, chown)';

t.test('first run: user, group and dirs; second run: nothing changes', { skip }, async (t) => {
  const name = serviceUser(t);
  const { configDir, dataDir, args } = dirsIn(t.testdir({}));
  const first = await runCli(['prepare', '--user', name, ...args]);
  t.equal(first.code, 0, first.stderr);
  t.equal(first.stderr, '');
  const user = await getent('passwd', name);
  const group = await getent('group', name);
  if (user === undefined || group === undefined) throw new Error('user or group not created');
  const [uid, gid] = [Number(user[2]), Number(group[2])];
  t.ok(uid > 0 && uid < 1000, `a system uid (${uid})`);
  t.equal(Number(user[3]), gid, 'primary group: its own group');
  t.equal(user[5], dataDir, 'home: the data dir');
  t.match(user[6], /nologin$|\/bin\/false$/, 'no login shell');
  for (const dir of [configDir, dataDir]) {
    t.same(await owner(dir), { uid, gid, mode: 0o700 }, dir);
  }
  t.same(await owner(join(configDir, '..')), { uid: 0, gid: 0, mode: 0o755 }, 'parent: root');
  t.match(first.stdout, new RegExp(`^group ${name}: created \\(system group, gid ${gid}\\)$`, 'm'));
  t.match(
    first.stdout,
    new RegExp(`^user ${name}: created \\(system user, uid ${uid}, home `, 'm'),
  );
  t.match(first.stdout, `config dir ${configDir}: created (${name}:${name} 0700, parent `);
  t.match(first.stdout, `data dir ${dataDir}: created (${name}:${name} 0700, parent `);
  t.notMatch(first.stdout, /already there|nothing to do/);
  await t.rejects(stat(join(configDir, 'config.json')), { code: 'ENOENT' }, 'no config.json');

  const second = await runCli(['prepare', '--user', name, ...args]);
  t.equal(second.code, 0, second.stderr);
  t.equal(
    second.stdout,
    `group ${name}: already there (gid ${gid})\n` +
      `user ${name}: already there (uid ${uid})\n` +
      `config dir ${configDir}: already there (${name}:${name} 0700)\n` +
      `data dir ${dataDir}: already there (${name}:${name} 0700)\n` +
      'nothing to do: everything was already there\n',
  );
  t.same(await getent('passwd', name), user, 'the user is unchanged');
  for (const dir of [configDir, dataDir]) t.same(await owner(dir), { uid, gid, mode: 0o700 });
});

t.test(
  'a dir of root is taken over with its contents, symlinks not followed',
  { skip },
  async (t) => {
    const name = serviceUser(t);
    const root = t.testdir({ outside: 'root only\n' });
    const { configDir, args } = dirsIn(root);
    // As after a `proxyauth run` as root: root's dir, files and a subdirectory.
    await mkdir(join(configDir, 'certs'), { recursive: true, mode: 0o755 });
    await chmod(configDir, 0o755);
    await writeFile(join(configDir, 'routes.yml'), 'routes: []\n', { mode: 0o644 });
    await writeFile(join(configDir, 'certs', 'key.pem'), 'k', { mode: 0o600 });
    await symlink(join(root, 'outside'), join(configDir, 'link'));
    const res = await runCli(['prepare', '--user', name, ...args]);
    t.equal(res.code, 0, res.stderr);
    const uid = Number((await getent('passwd', name))?.[2]);
    const gid = Number((await getent('group', name))?.[2]);
    t.match(
      res.stdout,
      `config dir ${configDir}: taken over from root with 4 entries in it (now ${name}:${name} 0700)`,
    );
    t.same(await owner(configDir), { uid, gid, mode: 0o700 });
    t.same(await owner(join(configDir, 'routes.yml')), { uid, gid, mode: 0o644 }, 'mode kept');
    t.same(await owner(join(configDir, 'certs')), { uid, gid, mode: 0o755 });
    t.same(await owner(join(configDir, 'certs', 'key.pem')), { uid, gid, mode: 0o600 });
    t.equal((await owner(join(configDir, 'link'))).uid, uid, 'the symlink itself is given');
    t.equal((await stat(join(root, 'outside'))).uid, 0, 'what it points to stays root');
    t.equal(await readFile(join(configDir, 'routes.yml'), 'utf8'), 'routes: []\n');
  },
);

t.test(
  "taking over a dir of root: a subdir already the user's is given itself, never walked",
  { skip },
  async (t) => {
    // The user owns certs/: it could swap certs/inner for a symlink to /etc while a walk by
    // path is under way, and readdir + lchown would follow it (attack11 F5, a race won in a few
    // runs). So certs/ itself is given, and nothing below it is looked at or changed.
    const name = serviceUser(t);
    const root = t.testdir({});
    const { configDir, args } = dirsIn(root);
    const first = await runCli(['prepare', '--user', name, ...args]);
    t.equal(first.code, 0, first.stderr);
    const uid = Number((await getent('passwd', name))?.[2]);
    const gid = Number((await getent('group', name))?.[2]);
    await chown(configDir, 0, 0);
    await chmod(configDir, 0o755);
    await mkdir(join(configDir, 'certs', 'inner'), { recursive: true, mode: 0o755 });
    await writeFile(join(configDir, 'certs', 'inner', 'f'), 'root only\n', { mode: 0o600 });
    await chown(join(configDir, 'certs'), uid, gid);
    const res = await runCli(['prepare', '--user', name, ...args]);
    t.equal(res.code, 0, res.stderr);
    t.match(
      res.stdout,
      `config dir ${configDir}: taken over from root with 1 entry in it (now ${name}:${name} 0700)`,
    );
    t.same(await owner(configDir), { uid, gid, mode: 0o700 });
    t.same(await owner(join(configDir, 'certs')), { uid, gid, mode: 0o755 });
    t.same(await owner(join(configDir, 'certs', 'inner')), { uid: 0, gid: 0, mode: 0o755 });
    t.same(await owner(join(configDir, 'certs', 'inner', 'f')), { uid: 0, gid: 0, mode: 0o600 });
  },
);

t.test("a dir already the user's gets its group and mode, nothing else", { skip }, async (t) => {
  const name = serviceUser(t);
  const { dataDir, args } = dirsIn(t.testdir({}));
  t.equal((await runCli(['prepare', '--user', name, ...args])).code, 0);
  const uid = Number((await getent('passwd', name))?.[2]);
  const gid = Number((await getent('group', name))?.[2]);
  await chown(dataDir, uid, 0);
  await chmod(dataDir, 0o755);
  await writeFile(join(dataDir, 'data.mdb'), 'x', { mode: 0o640 });
  await chown(join(dataDir, 'data.mdb'), uid, 0);
  const res = await runCli(['prepare', '--user', name, ...args]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, `data dir ${dataDir}: group gid 0 -> ${name}, mode 0755 -> 0700\n`);
  t.notMatch(res.stdout, /nothing to do/);
  t.same(await owner(dataDir), { uid, gid, mode: 0o700 });
  t.same(await owner(join(dataDir, 'data.mdb')), { uid, gid: 0, mode: 0o640 }, 'contents kept');
});

t.test(
  'refusals: found before anything changes, exit 1 with a stable code',
  { skip },
  async (t) => {
    const cases: [string, (root: string) => Promise<void>, string, RegExp][] = [
      [
        "another user's dir",
        async (root) => {
          await mkdir(dirsIn(root).dataDir, { recursive: true });
          await chown(dirsIn(root).dataDir, NOBODY, NOBODY);
        },
        'PREPARE_DIR_REFUSED',
        /data dir: \S+\/var\/lib\/proxyauth belongs to uid 65534, not root nor the user/,
      ],
      [
        'a symlink as the dir',
        async (root) => {
          await mkdir(join(root, 'elsewhere'));
          await mkdir(join(root, 'etc', 'proxyauth'), { recursive: true });
          await symlink(join(root, 'elsewhere'), dirsIn(root).configDir);
        },
        'PREPARE_DIR_REFUSED',
        /config dir: \S+ is a symlink/,
      ],
      [
        'a file as the dir',
        async (root) => {
          await mkdir(join(root, 'var', 'lib'), { recursive: true });
          await writeFile(dirsIn(root).dataDir, '');
        },
        'PREPARE_DIR_REFUSED',
        /exists and is not a directory/,
      ],
      [
        'a hard link in a dir of root',
        async (root) => {
          await mkdir(dirsIn(root).configDir, { recursive: true, mode: 0o700 });
          await link(join(root, 'victim'), join(dirsIn(root).configDir, 'routes.yml'));
        },
        'PREPARE_DIR_REFUSED',
        /routes\.yml is a hard link/,
      ],
      [
        "a third user's file in a dir of root",
        async (root) => {
          await mkdir(dirsIn(root).configDir, { recursive: true, mode: 0o700 });
          await writeFile(join(dirsIn(root).configDir, 'x'), '');
          await chown(join(dirsIn(root).configDir, 'x'), NOBODY, NOBODY);
        },
        'PREPARE_DIR_REFUSED',
        /\/x belongs to uid 65534/,
      ],
      [
        'a dir of root that others may write to',
        async (root) => {
          await mkdir(dirsIn(root).configDir, { recursive: true });
          await chmod(dirsIn(root).configDir, 0o777);
        },
        'PREPARE_DIR_REFUSED',
        /is writable by others \(0777\)/,
      ],
      [
        'a parent others may write to, not sticky',
        async (root) => {
          await mkdir(join(root, 'var', 'lib'), { recursive: true });
          await chmod(join(root, 'var'), 0o777);
        },
        'PREPARE_UNSAFE_PARENT',
        /data dir: parent \S+\/var is writable by others \(0777\) and not sticky/,
      ],
      [
        "a parent of another user's",
        async (root) => {
          await mkdir(join(root, 'etc'));
          await chown(join(root, 'etc'), NOBODY, NOBODY);
        },
        'PREPARE_UNSAFE_PARENT',
        /config dir: parent \S+\/etc belongs to uid 65534/,
      ],
    ];
    for (const [what, setUp, code, message] of cases) {
      t.test(what, async (t) => {
        const name = serviceUser(t);
        const root = t.testdir({ victim: 'not the gateway file\n' });
        await setUp(root);
        const res = await runCli(['prepare', '--user', name, ...dirsIn(root).args]);
        t.equal(res.code, 1);
        t.match(res.stderr, message);
        t.match(res.stderr, new RegExp(`\\(nothing was changed\\) \\(${code}\\)\\n$`));
        t.equal(res.stdout, '');
        t.equal(await getent('passwd', name), undefined, 'no user created');
        t.equal(await getent('group', name), undefined, 'no group created');
      });
    }
  },
);

t.test('not root: a clear refusal, exit 1, nothing created', { skip }, async (t) => {
  const name = serviceUser(t);
  const root = t.testdir({});
  await chmod(root, 0o777);
  const { configDir, args } = dirsIn(root);
  // `env -i`: tap adds its NODE_OPTIONS hooks to every child, and they could not write their
  // report as nobody.
  const setpriv = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];
  const env = ['/usr/bin/env', '-i', `PATH=${cliEnv().PATH ?? '/usr/bin:/bin'}`];
  const cli = [process.execPath, CLI, 'prepare', '--user', name, ...args];
  const res = await exec('setpriv', [...setpriv, ...env, ...cli]).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => err,
  );
  t.equal(res.code, 1);
  t.equal(
    res.stderr,
    'proxyauth: prepare must run as root: it creates a system user and gives directories to it (PREPARE_NOT_ROOT)\n',
  );
  t.equal(await getent('passwd', name), undefined);
  await t.rejects(stat(configDir), { code: 'ENOENT' });
});

t.test('the first start works in the prepared dirs, as the prepared user', { skip }, async (t) => {
  const name = serviceUser(t);
  const { configDir, dataDir, args } = dirsIn(t.testdir({}));
  t.equal((await runCli(['prepare', '--user', name, ...args])).code, 0);
  const uid = Number((await getent('passwd', name))?.[2]);
  const gid = Number((await getent('group', name))?.[2]);
  // As the unit runs it, without systemd: its own network namespace (port 8080 of a first
  // start may be taken here), the user's ids, umask 077, `env -i` (tap's hooks could not write
  // their report as that user). unshare, setpriv and env exec, so the pid is the gateway's.
  const proc = spawn(
    'unshare',
    ['--net', '--', 'setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--']
      .concat(['/usr/bin/env', '-i', `PATH=${cliEnv().PATH ?? '/usr/bin:/bin'}`, `HOME=${dataDir}`])
      .concat(['/bin/sh', '-c', 'umask 077 && exec "$@"', 'sh', process.execPath, CLI, 'run'])
      .concat([...args, '--ready-fd', '3']),
    { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const ready = await readReadiness(proc.stdio[3] as Readable, 30_000);
  t.equal(ready.ready, true, 'every edge listens', { output: out });
  t.match(out, /^ {2}password: \S{16,}$/m, 'first start: the admin password');
  const written = await lstat(join(configDir, 'config.json'));
  t.same({ uid: written.uid, mode: written.mode & 0o777 }, { uid, mode: 0o600 }, 'config.json');
  t.ok((await readdir(dataDir)).length > 0, 'the store is in the data dir');
  proc.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: a clean stop');
});

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  access,
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { waitFor } from './helpers/gateway.js';
import { environment, execArgv, readUnit, value } from './helpers/systemd-unit.js';

/*
 * The README's service install, end to end as far as it goes without systemd: the package made
 * by `npm pack`, copied to <root>/opt/proxyauth with its production dependencies from
 * package-lock.json, then the unit's own ExecStartPre and ExecStart run the way systemd would:
 * the pre-start as root, the gateway as an unprivileged user, with the unit's environment and
 * umask, on a config dir that exists already and belongs to root (the case systemd does not
 * fix by itself). Every path of the unit is moved under <root>. As root (CI), the user is
 * `nobody`; otherwise the current user, and ownership is not exercised.
 */
const exec = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const isRoot = process.getuid?.() === 0;
const user = isRoot ? { name: 'nobody', group: 'nogroup', uid: 65534, gid: 65534 } : currentUser();
/** What the first-start config listens on (the gateway runs in its own network namespace). */
const FIRST_START_PORT = 8080;

function currentUser() {
  const info = userInfo();
  return { name: info.username, group: String(info.gid), uid: info.uid, gid: info.gid };
}

const unit = await readUnit();
const root = await mkdtemp(join(tmpdir(), 'proxyauth-install-'));
// The unprivileged user must reach the installed code and its directories through it.
await chmod(root, 0o755);
t.teardown(() => rm(root, { recursive: true, force: true }));

/** A path of the unit, moved under the temp root. */
const at = (path: string) => join(root, path);
const UNIT_PATHS = ['/opt/proxyauth', '/etc/proxyauth/config', '/var/lib/proxyauth'];

/** An Exec*= line with its paths moved under the temp root and User= replaced by the test user. */
function relocate(line: string): string[] {
  return execArgv(line).argv.map((arg) => {
    let out = arg;
    UNIT_PATHS.forEach((path, i) => {
      out = out.replaceAll(path, `\0${i}\0`);
    });
    out = out.replace(/\bproxyauth:proxyauth\b/g, `${user.name}:${user.group}`);
    out = out.replace(/= proxyauth\b/g, `= ${user.name}`);
    return out.replace(/\0(\d)\0/g, (_, i: string) => at(UNIT_PATHS[Number(i)]!));
  });
}

const installDir = at('/opt/proxyauth');
const configDir = at('/etc/proxyauth/config');
const dataDir = at('/var/lib/proxyauth');

/**
 * Step 2 of the README's "Install as a service" block, as written there: the lines between
 * "# 2." and "# 3.", without comments.
 */
async function readmeInstallStep(): Promise<string[]> {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const section = readme.split('\n## Install as a service\n')[1]?.split('\n## ')[0] ?? '';
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const step = block.split(/^# 2\..*$/m)[1]?.split(/^# 3\..*$/m)[0] ?? '';
  return step
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

t.test("the README's install step makes a runnable copy", async (t) => {
  // Step 1 is `npm pack`; here with --ignore-scripts, because dist/ was built by `npm test`
  // before the tests and `prepare` would rebuild it while other test files run it.
  const packed = await exec('npm', ['pack', '--ignore-scripts', '--pack-destination', root], {
    cwd: REPO,
  });
  const tarball = packed.stdout.trim().split('\n').at(-1) ?? '';
  const commands = await readmeInstallStep();
  t.same(
    commands.map((c) => c.split(' ')[0]),
    ['install', 'tar', 'install', 'npm'],
    'the README step that the rest of this test runs',
  );
  for (const command of commands) {
    // The same command with /opt/proxyauth under the temp root, run from the checkout (the
    // README's cwd: package-lock.json is relative) with the tarball where npm pack put it.
    const relocated = command
      .replaceAll('/opt/proxyauth', installDir)
      .replaceAll(tarball, join(root, tarball));
    t.not(relocated, command, `relocated: ${command}`);
    await exec('/bin/sh', ['-c', relocated], { cwd: REPO, timeout: 240_000 });
  }
  const has = (rel: string) =>
    access(join(installDir, rel)).then(
      () => true,
      () => false,
    );
  t.ok(await has('dist/supervisor/cli.js'), 'the CLI is in the package');
  t.ok(await has('dist/worker/edge.js'), 'the edge too');
  t.ok(await has('deploy/proxyauth.service'), 'and the unit');
  t.ok(await has('node_modules/uWebSockets.js/package.json'), 'runtime dependencies installed');
  t.notOk(await has('node_modules/typescript'), 'dev dependencies are not');
  t.notOk(await has('test'), 'tests are not shipped');
  const version = await exec(process.execPath, [join(installDir, 'dist/supervisor/cli.js'), '-v']);
  t.match(version.stdout, /^proxyauth \d+\.\d+\.\d+/);
});

t.test('the unit starts the installed copy: first start as the service user', async (t) => {
  // As an admin who prepared the config dir as root before the first start (without root, the
  // dir can only be the test user's own: the pre-start then has nothing to change).
  await mkdir(configDir, { recursive: true, mode: isRoot ? 0o755 : 0o700 });
  await writeFile(join(configDir, 'routes.yml'), 'routes: []\n# prepared by the admin\n', {
    mode: 0o600,
  });
  // systemd creates the StateDirectory= for User= with StateDirectoryMode=.
  await mkdir(join(root, 'var/lib'), { recursive: true, mode: 0o755 });
  await mkdir(dataDir, { mode: 0o700 });
  await chown(dataDir, user.uid, user.gid);

  const [shell, ...preArgs] = relocate(value(unit, 'Service', 'ExecStartPre'));
  await exec(shell!, preArgs);
  const dir = await stat(configDir);
  t.equal(dir.uid, user.uid, 'the pre-start gave the config dir to the service user');
  t.equal(dir.mode & 0o777, 0o700);
  t.equal((await stat(join(configDir, 'routes.yml'))).uid, user.uid, 'with what was in it');

  const gateway = startAsServiceUser(relocate(value(unit, 'Service', 'ExecStart')));
  t.teardown(() => stopProcess(gateway.proc));
  const configFile = join(configDir, 'config.json');
  const listening = () => listensOn(gateway.pid, FIRST_START_PORT);
  await waitFor(async () => gateway.exitCode() !== null || (await listening()), 30_000);
  t.equal(gateway.exitCode(), null, 'still running', { output: gateway.output() });
  t.ok(await listening(), `listening on ${FIRST_START_PORT}`, { output: gateway.output() });
  t.match(gateway.output(), /^ {2}password: \S{16,}$/m, 'the admin password is printed once');
  const written = await stat(configFile);
  t.equal(written.uid, user.uid, 'config.json belongs to the service user');
  t.equal(written.mode & 0o777, 0o600);
  t.match(JSON.parse(await readFile(configFile, 'utf8')), { port: FIRST_START_PORT });
  t.equal(
    await readFile(join(configDir, 'routes.yml'), 'utf8'),
    'routes: []\n# prepared by the admin\n',
    "the admin's routes.yml is kept",
  );
  t.equal(await processUid(gateway.pid), user.uid, 'the gateway runs as the service user');
  t.equal(await stopProcess(gateway.proc), 0, 'SIGTERM: exit 0, as systemd expects');
});

/**
 * Runs the relocated ExecStart the way systemd would: its own network namespace (so port 8080
 * is free whatever runs here), the unit's UMask= and Environment=, systemd's PATH, as the user.
 */
function startAsServiceUser(argv: string[]) {
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dataDir,
    USER: user.name,
    LOGNAME: user.name,
    ...Object.fromEntries(
      Object.entries(environment(unit)).map(([k, v]) => [k, relocate(v)[0] ?? v]),
    ),
  };
  const umask = value(unit, 'Service', 'UMask');
  const asUser = isRoot
    ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--']
    : [];
  const netns = isRoot ? ['--net'] : ['--net', '--map-current-user'];
  // `env -i`: only the environment systemd would give (tap adds NODE_OPTIONS to children, and
  // its hooks could not write their report as another user). unshare, setpriv, env and the
  // shell's `exec` all replace themselves, so the pid is the gateway's.
  const proc = spawn(
    'unshare',
    [
      ...netns,
      '--',
      ...asUser,
      '/usr/bin/env',
      '-i',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      '/bin/sh',
      '-c',
      `umask ${umask} && exec "$@"`,
      'sh',
      ...argv,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    output: () => out,
    exitCode: () => proc.exitCode,
  };
}

/** Whether the process's network namespace has a TCP socket listening on `port`. */
function listensOn(pid: number, port: number): Promise<boolean> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return Promise.all(
    ['tcp', 'tcp6'].map((file) => readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '')),
  ).then((tables) =>
    tables.some((table) =>
      table
        .split('\n')
        .slice(1)
        .some((row) => {
          const [, local, , state] = row.trim().split(/\s+/);
          return local?.endsWith(`:${hexPort}`) === true && state === '0A'; // 0A: LISTEN
        }),
    ),
  );
}

async function processUid(pid: number): Promise<number> {
  // The real uid is the first field of `Uid:`.
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

async function stopProcess(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

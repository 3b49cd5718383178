import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { verifyPassword } from '../crypto-pool/password.js';
import { runCli } from './helpers/cli.js';

const SECRET = 's'.repeat(64);
const VALID_CONFIG = `${JSON.stringify({ secret: SECRET, users: [{ username: 'admin', password: 'pw' }] }, null, 2)}\n`;
const VALID_ROUTES = 'routes:\n  - prefix: /api\n    target: http://127.0.0.1:8000/api\n';

/** The issue lines of check-config's stderr: `<file>: <key>: <message>`. */
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

t.test('-v and --version print the package version', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  // Every spelling is parsed in supervisor-args.test.ts; here, that the process prints and exits.
  for (const flag of ['--version', '-v']) {
    const res = await runCli([flag]);
    t.equal(res.code, 0, flag);
    t.equal(res.stdout, `proxyauth ${pkg.version}\n`, flag);
    t.equal(res.stderr, '', flag);
  }
});

t.test('help and -h list every command and option on stdout', async (t) => {
  for (const args of [['help'], ['-h']]) {
    const res = await runCli(args);
    const name = args.join(' ');
    t.equal(res.code, 0, name);
    t.equal(res.stderr, '', name);
    for (const word of ['run', 'check-config', 'stats', 'unban', 'hash-password', 'help']) {
      t.match(res.stdout, new RegExp(`^\\s+${word}\\b`, 'm'), `${name} lists ${word}`);
    }
    for (const option of ['--config-dir', '--data-dir', '--help', '--version', '-h', '-V', '-v']) {
      t.ok(res.stdout.includes(option), `${name} lists ${option}`);
    }
    t.match(res.stdout, /PROXYAUTH_CONFIG_DIR/);
    t.match(res.stdout, /PROXYAUTH_DATA_DIR/);
  }
});

t.test("help COMMAND prints that command's usage", async (t) => {
  const res = await runCli(['help', 'check-config']);
  t.equal(res.code, 0);
  t.equal(res.stderr, '');
  t.match(res.stdout, /^Usage: proxyauth check-config \[--config-dir DIR\]\n/);
  t.match(res.stdout, /Exit status: 0 when valid/);
});

t.test('usage errors exit 2 with a message on stderr and nothing on stdout', async (t) => {
  const commands =
    "Commands: run, check-config, stats, unban, totp, keys, sync, hash-password, prepare, explain, help. See 'proxyauth help'.";
  const general = 'Usage: proxyauth [COMMAND] [OPTIONS]';
  // [arguments, first line of stderr, second line]
  const cases: [string[], RegExp, string][] = [
    [['--bogus'], /^proxyauth: Unknown option '--bogus'\.$/, general],
    [
      ['sync', 'export', '--verify-only'],
      /^proxyauth: sync export does not take --verify-only$/,
      'Usage: proxyauth sync export [--out FILE] [--passphrase-file F | --recipient KEY.asc] [--force]',
    ],
    [['frobnicate'], /^proxyauth: unknown command: frobnicate$/, general],
    [
      ['stats', '--config-dir', '/c'],
      /^proxyauth: stats does not take --config-dir$/,
      'Usage: proxyauth stats [--data-dir DIR] [--user NAME] [--json]',
    ],
    [['help', 'frobnicate'], /^proxyauth: unknown command: frobnicate$/, general],
    [
      ['prepare', '--user', 'Proxy Auth'],
      /^proxyauth: --user "Proxy Auth": a system user name is /,
      'Usage: proxyauth prepare [--config-dir DIR] [--data-dir DIR] [--user NAME]',
    ],
    [
      ['prepare', '--json'],
      /^proxyauth: prepare does not take --json$/,
      'Usage: proxyauth prepare [--config-dir DIR] [--data-dir DIR] [--user NAME]',
    ],
    [
      ['check-config', 'extra'],
      /^proxyauth: check-config: unexpected argument: extra$/,
      'Usage: proxyauth check-config [--config-dir DIR]',
    ],
    [['--config-dir'], /^proxyauth: .*'--config-dir <value>'/, general],
  ];
  for (const [args, first, second] of cases) {
    const name = args.join(' ');
    const res = await runCli(args);
    const lines = res.stderr.split('\n');
    t.equal(res.code, 2, name);
    t.match(lines[0], first, name);
    t.equal(lines[1], second, `${name}: usage line`);
    t.equal(res.stdout, '', `${name}: nothing on stdout`);
  }
  // An unknown command says which ones exist (the other spellings: supervisor-args.test.ts).
  t.match((await runCli(['frobnicate'])).stderr, commands);
});

t.test('exit status 1: a failure, said in one line without a stack trace', async (t) => {
  const dir = t.testdir({ 'a-file': 'not a directory' });
  const res = await runCli(['--data-dir', join(dir, 'a-file', 'data')]);
  t.equal(res.code, 1);
  t.match(
    res.stderr,
    /^proxyauth: data dir .*a-file\/data: cannot be created \(ENOTDIR: a part of the path is a file\)\n$/,
  );
  t.notMatch(res.stderr, /\n\s+at /, 'no stack trace for an expected failure');
  t.equal(res.stdout, '');
});

t.test('check-config accepts a valid dir', async (t) => {
  const dir = t.testdir({ 'config.json': VALID_CONFIG, 'routes.yml': VALID_ROUTES });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stderr, '');
  t.match(res.stdout, /configuration is valid \(1 users, 1 routes\)/);
  t.equal(await readFile(join(dir, 'config.json'), 'utf8'), VALID_CONFIG, 'nothing rewritten');
});

t.test('check-config reports every error with its file and key', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({
      secret: 'too-short',
      port: 70000,
      timezone: 'Mars/Olympus_Mons',
      users: [{ username: 'admin', password: 'pw' }],
    }),
    'routes.yml': `${VALID_ROUTES}    filters:\n      allow:\n        - field: path\n          pattern: "([a-"\n`,
  });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 1);
  t.notMatch(res.stdout, /valid/);
  const issues = lines(res.stderr);
  const config = join(dir, 'config.json');
  const routes = join(dir, 'routes.yml');
  for (const [file, key] of [
    [config, 'port'],
    [config, 'secret'],
    [config, 'timezone'],
    [routes, 'routes[0].filters.allow[0].pattern'],
  ]) {
    t.ok(
      issues.some((l) => l.startsWith(`${file}: ${key}: `)),
      `${file}: ${key} reported`,
    );
  }
  t.equal(issues.length, 4, 'one line per issue, nothing else');
});

t.test('check-config warns about an unknown key and still exits 0', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({ secret: SECRET, users: [], log_colour: true }),
    'routes.yml': 'routes: []\n',
  });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, `warning: ${join(dir, 'config.json')}: log_colour: `);
});

t.test('check-config reports a JSON syntax error with file and line', async (t) => {
  const dir = t.testdir({
    'config.json': `{\n  "secret": "${SECRET}",\n  "port": 8080,\n}\n`,
    'routes.yml': 'routes: []\n',
  });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 1);
  t.match(res.stderr, `${join(dir, 'config.json')}: (syntax): `);
  t.match(res.stderr, /\bline 4\b/);
});

t.test('check-config on a dir with no config.json fails', async (t) => {
  const dir = t.testdir({ 'routes.yml': 'routes: []\n' });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 1);
  t.match(res.stderr, `${join(dir, 'config.json')}: (file): `);
});

t.test('hash-password prints one argon2id hash of the piped password', async (t) => {
  const password = 'correct horse battery staple';
  for (const input of [`${password}\n`, password]) {
    const res = await runCli(['hash-password'], { input });
    t.equal(res.code, 0, res.stderr);
    const out = lines(res.stdout);
    t.equal(out.length, 1, 'exactly one line');
    const hash = out[0] ?? '';
    t.match(hash, /^\$argon2id\$v=19\$/);
    t.equal(await verifyPassword(hash, password), true, 'verifies the password');
    t.equal(await verifyPassword(hash, 'correct horse battery stapler'), false, 'rejects another');
    t.notOk(res.stdout.includes(password) || res.stderr.includes(password), 'never echoed');
  }
});

t.test('hash-password refuses an empty password', async (t) => {
  for (const input of ['', '\n']) {
    const res = await runCli(['hash-password'], { input });
    t.equal(res.code, 1, JSON.stringify(input));
    t.equal(res.stdout, '', 'no hash printed');
    t.match(res.stderr, /empty password/);
  }
});

t.test('PROXYAUTH_CONFIG_DIR is honoured, and --config-dir wins over it', async (t) => {
  const root = t.testdir({
    good: { 'config.json': VALID_CONFIG, 'routes.yml': VALID_ROUTES },
    bad: { 'config.json': '{"port": 0}', 'routes.yml': 'routes: []\n' },
  });
  const good = join(root, 'good');
  const bad = join(root, 'bad');
  const byEnv = await runCli(['check-config'], { env: { PROXYAUTH_CONFIG_DIR: good } });
  t.equal(byEnv.code, 0, byEnv.stderr);
  t.match(byEnv.stdout, `${good}: configuration is valid`);
  const badByEnv = await runCli(['check-config'], { env: { PROXYAUTH_CONFIG_DIR: bad } });
  t.equal(badByEnv.code, 1);
  t.match(badByEnv.stderr, join(bad, 'config.json'));

  const flagGood = await runCli(['check-config', '--config-dir', good], {
    env: { PROXYAUTH_CONFIG_DIR: bad },
  });
  t.equal(flagGood.code, 0, flagGood.stderr);
  const flagBad = await runCli(['check-config', '--config-dir', bad], {
    env: { PROXYAUTH_CONFIG_DIR: good },
  });
  t.equal(flagBad.code, 1);
  t.match(flagBad.stderr, join(bad, 'config.json'));
});

t.test('PROXYAUTH_DATA_DIR is honoured, and --data-dir wins over it', async (t) => {
  // `run` creates the data dir before reading the config, so an invalid config stops it
  // right after, without ever listening.
  const root = t.testdir({ conf: { 'config.json': '{"port": 0}', 'routes.yml': 'routes: []\n' } });
  const conf = join(root, 'conf');
  const byEnv = await runCli([], {
    env: { PROXYAUTH_CONFIG_DIR: conf, PROXYAUTH_DATA_DIR: join(root, 'env-data') },
  });
  t.equal(byEnv.code, 1, 'the invalid config stops the start');
  t.ok(await exists(join(root, 'env-data')), 'data dir from the env created');

  const byFlag = await runCli(['--data-dir', join(root, 'flag-data')], {
    env: { PROXYAUTH_CONFIG_DIR: conf, PROXYAUTH_DATA_DIR: join(root, 'other-data') },
  });
  t.equal(byFlag.code, 1);
  t.ok(await exists(join(root, 'flag-data')), 'data dir from the flag created');
  t.notOk(await exists(join(root, 'other-data')), 'the env data dir is ignored');
});

import { closeSync, openSync } from 'node:fs';
import t from 'tap';
import { CodedError } from '../shared/coded-error.js';
import { type CliArgs, parseCliArgs, UsageError, usageMessage } from '../supervisor/args.js';
import { COMMAND_NAMES, helpText } from '../supervisor/help.js';

const NO_DIRS = {
  configDir: undefined,
  dataDir: undefined,
  readyFd: undefined,
  user: undefined,
  ip: undefined,
  json: false,
  totp: undefined,
  keys: undefined,
  sync: undefined,
  out: undefined,
  passphraseFile: undefined,
  recipient: undefined,
  force: false,
  verifyOnly: false,
  explain: undefined,
};
/** A descriptor open in this process, for --ready-fd. */
const openFd = openSync('/dev/null', 'w');
t.teardown(() => closeSync(openFd));

function usageError(argv: string[]): UsageError {
  try {
    parseCliArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
}

t.test('commands and their options', async (t) => {
  const cases: [string[], CliArgs][] = [
    [[], { command: 'run', ...NO_DIRS }],
    [['run'], { command: 'run', ...NO_DIRS }],
    [
      ['run', '--config-dir', '/c', '--data-dir=/d'],
      { command: 'run', ...NO_DIRS, configDir: '/c', dataDir: '/d' },
    ],
    [['--config-dir', '/c'], { command: 'run', ...NO_DIRS, configDir: '/c' }],
    [['run', '--ready-fd', String(openFd)], { command: 'run', ...NO_DIRS, readyFd: openFd }],
    [
      ['check-config', '--config-dir', '/c'],
      { command: 'check-config', ...NO_DIRS, configDir: '/c' },
    ],
    [['hash-password'], { command: 'hash-password', ...NO_DIRS }],
    [['stats'], { command: 'stats', ...NO_DIRS }],
    [
      ['stats', '--data-dir', '/d', '--user', 'bob', '--json'],
      { command: 'stats', ...NO_DIRS, dataDir: '/d', user: 'bob', json: true },
    ],
    [['unban', '--user', 'alice'], { command: 'unban', ...NO_DIRS, user: 'alice' }],
    [
      ['unban', '--ip', '2001:db8::1', '--data-dir', '/d', '--config-dir', '/c'],
      { command: 'unban', ...NO_DIRS, ip: '2001:db8::1', dataDir: '/d', configDir: '/c' },
    ],
    [['unban', '--ip=203.0.113.0/24'], { command: 'unban', ...NO_DIRS, ip: '203.0.113.0/24' }],
    [['unban', '--user', 'Zoë Ünïcode'], { command: 'unban', ...NO_DIRS, user: 'Zoë Ünïcode' }],
    [
      ['totp', 'reset', 'alice', '--config-dir', '/c', '--json'],
      {
        command: 'totp',
        ...NO_DIRS,
        configDir: '/c',
        json: true,
        totp: { action: 'reset', user: 'alice' },
      },
    ],
    [
      ['totp', '--data-dir', '/d', 'remove', 'Zoë'],
      { command: 'totp', ...NO_DIRS, dataDir: '/d', totp: { action: 'remove', user: 'Zoë' } },
    ],
  ];
  for (const [argv, expected] of cases) t.same(parseCliArgs(argv), expected, argv.join(' '));
});

t.test('an option the command does not read is a usage error', async (t) => {
  for (const argv of [
    ['check-config', '--data-dir', '/d'],
    ['check-config', `--ready-fd=${openFd}`],
    ['hash-password', '--config-dir', '/c'],
    ['run', '--json'],
    ['check-config', '--user', 'bob'],
    ['stats', '--config-dir', '/c'],
    ['stats', '--ip', '203.0.113.7'],
    ['unban', '--user', 'alice', '--json'],
  ]) {
    const err = usageError(argv);
    t.match(err.message, /does not take --/, argv.join(' '));
    t.equal(err.topic, argv[0]);
  }
});

t.test('unban takes exactly one of --user and --ip, each well-formed', async (t) => {
  const cases: [string[], RegExp][] = [
    [['unban'], /^unban needs --user NAME or --ip ADDR$/],
    [['unban', '--data-dir', '/d'], /^unban needs --user NAME or --ip ADDR$/],
    [['unban', '--user', 'a', '--ip', '203.0.113.7'], /^unban takes --user or --ip, not both$/],
    [['unban', '--user', ''], /^--user "": must be a non-empty string$/],
    [['unban', '--user', 'a\u0007b'], /^--user "a\\u0007b": must not contain control characters$/],
    [['unban', '--user', 'x'.repeat(256)], /must be at most 255 bytes of UTF-8$/],
    [['unban', '--ip', 'localhost'], /^--ip "localhost" is not an IP address or CIDR$/],
    [['unban', '--ip', '203.0.113.7/33'], /^--ip "203\.0\.113\.7\/33" is not an IP/],
    [['unban', '--ip', ''], /^--ip "" is not an IP address or CIDR$/],
    [['unban', 'alice'], /^unban: unexpected argument: alice$/],
  ];
  for (const [argv, message] of cases) {
    const err = usageError(argv);
    t.match(err.message, message, argv.join(' '));
    t.equal(err.topic, 'unban');
    t.match(usageMessage(err), /^Usage: proxyauth unban --user NAME \| --ip ADDR /m);
  }
});

t.test('prepare takes the dirs and --user NAME, a system account name', async (t) => {
  t.same(parseCliArgs(['prepare']), { ...NO_DIRS, command: 'prepare' });
  t.same(parseCliArgs(['prepare', '--config-dir', '/c', '--data-dir', '/d', '--user', '_pa-1']), {
    ...NO_DIRS,
    command: 'prepare',
    configDir: '/c',
    dataDir: '/d',
    user: '_pa-1',
  });
  t.same(parseCliArgs(['prepare', '--user', `a${'b'.repeat(31)}`]).command, 'prepare');
  // Each of these would reach useradd: refused as a usage error (exit 2) before.
  for (const user of ['', 'Proxy', '1pa', '-pa', 'pa:x', 'pa/x', 'pa x', `a${'b'.repeat(32)}`]) {
    const err = usageError(['prepare', `--user=${user}`]);
    t.match(err.message, `--user ${JSON.stringify(user)}: a system user name is`, user);
    t.equal(err.topic, 'prepare');
  }
  for (const option of ['--ip', '--json', '--force', '--ready-fd']) {
    t.equal(usageError(['prepare', option, '3']).topic, 'prepare', option);
  }
  t.equal(usageError(['prepare', 'now']).message, 'prepare: unexpected argument: now');
});

t.test('totp takes reset or remove, then one well-formed USER', async (t) => {
  const cases: [string[], RegExp][] = [
    [['totp'], /^totp needs reset or remove, got nothing$/],
    [['totp', 'rotate', 'alice'], /^totp needs reset or remove, got "rotate"$/],
    [['totp', 'reset'], /^totp reset needs a USER$/],
    [['totp', 'remove', 'alice', 'bob'], /^totp: unexpected argument: bob$/],
    [['totp', 'reset', 'a\u0007b'], /^USER "a\\u0007b": must not contain control characters$/],
    [['totp', 'reset', 'alice', '--user', 'bob'], /^totp does not take --user$/],
  ];
  for (const [argv, message] of cases) {
    const err = usageError(argv);
    t.match(err.message, message, argv.join(' '));
    t.equal(err.topic, 'totp');
    t.match(usageMessage(err), /^Usage: proxyauth totp reset\|remove USER /m);
  }
});

t.test('--ready-fd takes an open descriptor number of 3 or more', async (t) => {
  for (const bad of ['0', '2', 'x', '-1', '3.5', '', '999']) {
    const err = usageError(['run', `--ready-fd=${bad}`]);
    t.match(err.message, /--ready-fd/, bad);
    t.equal(err.topic, 'run');
  }
});

t.test('help: as a command, as a flag, for one command', async (t) => {
  t.same(parseCliArgs(['help']), { command: 'help', topic: undefined });
  t.same(parseCliArgs(['--help']), { command: 'help', topic: undefined });
  t.same(parseCliArgs(['-h']), { command: 'help', topic: undefined });
  for (const name of COMMAND_NAMES) {
    t.same(parseCliArgs(['help', name]), { command: 'help', topic: name }, `help ${name}`);
    t.same(parseCliArgs([name, '--help']), { command: 'help', topic: name }, `${name} --help`);
  }
});

t.test('version: -v, -V and --version, with or without a command', async (t) => {
  for (const argv of [['-v'], ['-V'], ['--version'], ['check-config', '-v'], ['run', '-V']]) {
    t.same(parseCliArgs(argv), { command: 'version' }, argv.join(' '));
  }
});

t.test('an unknown command is named before anything else about the line', async (t) => {
  // Commands that later issues add must not parse until they exist.
  for (const argv of [
    ['frobnicate', '--force'],
    ['frobnicate'],
    ['frobnicate', '--help'],
    ['help', 'frobnicate'],
  ]) {
    const err = usageError(argv);
    const word = argv[0] === 'help' ? argv[1] : argv[0];
    t.equal(err.message, `unknown command: ${word}`, argv.join(' '));
    t.equal(err.topic, undefined);
    t.match(usageMessage(err), `Commands: ${COMMAND_NAMES.join(', ')}.`);
  }
});

t.test('extra words and bad options name the command they belong to', async (t) => {
  const extra = usageError(['check-config', 'extra']);
  t.equal(extra.message, 'check-config: unexpected argument: extra');
  t.equal(extra.topic, 'check-config');
  t.match(usageMessage(extra), /^Usage: proxyauth check-config /m);
  t.equal(usageError(['help', 'run', 'more']).message, 'help: unexpected argument: more');
  const option = usageError(['hash-password', '--bogus']);
  t.match(option.message, /^Unknown option '--bogus'\.$/, "first sentence of node's message");
  t.equal(option.topic, 'hash-password');
  t.match(usageError(['--config-dir']).message, /--config-dir/);
  t.equal(usageError(['--config-dir']).topic, undefined, 'no command given: the general usage');
  t.ok(usageError(['frobnicate']) instanceof CodedError);
  t.equal(usageError(['frobnicate']).code, 'USAGE');
});

t.test('help texts', async (t) => {
  const general = helpText();
  for (const name of COMMAND_NAMES) t.match(general, new RegExp(`^ {2}${name} +\\S`, 'm'));
  t.match(general, /Exit status: 0 success, 1 failure, 2 usage error\./);
  for (const name of COMMAND_NAMES) {
    const text = helpText(name);
    t.match(text, /^Usage: proxyauth /, `${name}: usage first`);
    t.match(text, /-v, -V, --version/, `${name}: common options`);
  }
  t.match(helpText('run'), /--data-dir DIR/);
  t.notMatch(helpText('check-config'), /--data-dir/, 'only the options a command reads');
  t.notMatch(helpText('hash-password'), /--config-dir/);
  const unban = helpText('unban');
  for (const option of ['--user NAME', '--ip ADDR', '--data-dir DIR', '--config-dir DIR']) {
    t.ok(unban.includes(option), `unban help: ${option}`);
  }
  t.match(unban, /--user NAME +the user to unban/, "unban's own --user line");
  t.notMatch(unban, /only this user/);
  t.match(helpText('stats'), /--user NAME +only this user/);
  t.notMatch(helpText('stats'), /--ip/);
});

t.test('keys: list, rotate, remove ID (hex)', async (t) => {
  t.same(parseCliArgs(['keys', 'list', '--data-dir', '/d']), {
    command: 'keys',
    ...NO_DIRS,
    dataDir: '/d',
    keys: { action: 'list', id: undefined },
  });
  t.match(parseCliArgs(['keys', 'remove', 'DEADBEEF']), {
    keys: { action: 'remove', id: 0xdeadbeef },
  });
  t.match(parseCliArgs(['keys', 'rotate']), { keys: { action: 'rotate', id: undefined } });
  for (const argv of [
    ['keys'],
    ['keys', 'drop'],
    ['keys', 'remove'],
    ['keys', 'remove', '123456789'],
    ['keys', 'remove', 'xyz'],
    ['keys', 'list', 'extra'],
    ['keys', 'remove', '1', '2'],
    ['keys', 'list', '--out', 'f'],
  ]) {
    const err = usageError(argv);
    t.equal(err.topic, 'keys', argv.join(' '));
  }
});

t.test('sync: export, import FILE, keygen, each with its own options', async (t) => {
  t.same(parseCliArgs(['sync', 'export', '--out', 'k.pgp', '--passphrase-file', 'p', '--force']), {
    command: 'sync',
    ...NO_DIRS,
    sync: { action: 'export', file: undefined },
    out: 'k.pgp',
    passphraseFile: 'p',
    force: true,
  });
  t.same(parseCliArgs(['sync', 'import', 'k.pgp', '--verify-only']), {
    command: 'sync',
    ...NO_DIRS,
    sync: { action: 'import', file: 'k.pgp' },
    verifyOnly: true,
  });
  t.match(parseCliArgs(['sync', 'keygen']), { sync: { action: 'keygen', file: undefined } });
  const refused: [string[], RegExp][] = [
    [['sync'], /sync needs export, import or keygen/],
    [['sync', 'import'], /needs a FILE/],
    [['sync', 'export', 'file'], /unexpected argument: file/],
    [['sync', 'import', 'a', 'b'], /unexpected argument: b/],
    [['sync', 'import', 'a', '--force'], /sync import does not take --force/],
    [['sync', 'import', 'a', '--recipient', 'k'], /does not take --recipient/],
    [['sync', 'keygen', '--out', 'x'], /sync keygen does not take --out/],
    [['sync', 'export', '--verify-only'], /does not take --verify-only/],
    [['sync', 'export', '--passphrase-file', 'p', '--recipient', 'k'], /not both/],
    [['stats', '--force'], /stats does not take --force/],
  ];
  for (const [argv, message] of refused) t.match(usageError(argv).message, message, argv.join(' '));
});

t.test('explain: METHOD URL, header lines, the Host of an absolute URL', async (t) => {
  const args = parseCliArgs([
    'explain',
    '--user',
    'alice',
    '-H',
    'X-Key:  12ab ',
    '--header',
    'Accept: */*',
    'get',
    'https://gw.example:8443/api/x?q=1',
  ]);
  t.same(args.command === 'explain' ? args.explain : undefined, {
    method: 'get',
    target: '/api/x?q=1',
    headers: [
      ['host', 'gw.example:8443'],
      ['X-Key', '12ab'],
      ['Accept', '*/*'],
    ],
    bodyFile: undefined,
    user: 'alice',
    token: undefined,
    cookie: false,
    ip: '127.0.0.1',
  });
  const given = parseCliArgs(['explain', '-H', 'Host: a.example', 'GET', 'http://b.example']);
  t.same(given.command === 'explain' ? given.explain?.headers : undefined, [['Host', 'a.example']]);
  t.same(
    given.command === 'explain' ? given.explain?.target : undefined,
    '/',
    'an absolute URL without a path asks for /',
  );
  const cases: [string[], RegExp][] = [
    [['explain', 'GET'], /^explain needs a METHOD and a URL$/],
    [['explain', 'G ET', '/x'], /is not a method name$/],
    [['explain', 'GET', 'x'], /a path starting with \/ or an http\(s\):\/\/ URL$/],
    [['explain', 'GET', 'http://u:p@h/x'], /without user:password@$/],
    [['explain', '-H', ': v', 'GET', '/x'], /expected 'Name: value'$/],
    [['explain', '--token', '-', '--body', '-', 'GET', '/x'], /cannot both read stdin$/],
    [['explain', '--user', 'a\u0007', 'GET', '/x'], /must not contain control characters$/],
    [['explain', '--ip', 'localhost', 'GET', '/x'], /is not an IP address$/],
    [['explain', '--force', 'GET', '/x'], /does not take --force$/],
  ];
  for (const [argv, message] of cases) {
    const err = usageError(argv);
    t.match(err.message, message, argv.join(' '));
    t.equal(err.topic, 'explain');
  }
});

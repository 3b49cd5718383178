// `proxyauth unban` on a real store: the compiled CLI (npm run build first) lifts bans that
// this process (or another writer, as a running supervisor) recorded, and a writer that holds
// the store open all along sees the lift at once.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type LoginBan, openStore, STORE_FILE } from '../shared/store.js';
import { runCli } from './helpers/cli.js';
import { startHolder } from './helpers/store-process.js';

const NOW = Math.floor(Date.now() / 1000);
/** 2099-11-30 10:20:00 UTC: an until that prints the same on every run. */
const UNTIL = Date.UTC(2099, 10, 30, 10, 20, 0) / 1000;
const UNTIL_TEXT = '2099-11-30 10:20:00 UTC';

function ban(kind: 'user' | 'ip', subject: string, failures = 5, until = UNTIL): LoginBan {
  return { kind, subject, until, bannedAt: NOW - 60, failures };
}

/** A data dir whose store holds `bans`, closed again. */
async function storeWith(t: Test, bans: LoginBan[]): Promise<string> {
  const dir = t.testdir();
  const store = openStore(dir, { readOnly: false });
  for (const b of bans) await store.ban(b);
  await store.close();
  return dir;
}

/** The bans in force in the store of `dir`, as kind:subject. */
async function bansIn(dir: string): Promise<string[]> {
  const store = openStore(dir, { readOnly: true });
  try {
    return store.listBans(Math.floor(Date.now() / 1000), 1000).map((b) => `${b.kind}:${b.subject}`);
  } finally {
    await store.close();
  }
}

t.test('unban --user lifts that user, prints what it lifted, exit 0', async (t) => {
  const dir = await storeWith(t, [
    ban('user', 'alice'),
    ban('user', 'alice2'),
    ban('ip', '::1/128'),
  ]);
  const res = await runCli(['unban', '--user', 'alice', '--data-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stderr, '');
  t.equal(res.stdout, `unbanned user alice (was banned until ${UNTIL_TEXT} after 5 failures)\n`);
  t.same(await bansIn(dir), ['ip:::1/128', 'user:alice2'], 'the others stay');
  const again = await runCli(['unban', '--user', 'alice', '--data-dir', dir]);
  t.equal(again.code, 0, again.stderr);
  t.equal(again.stdout, 'no ban in force for user alice\n');
  t.equal(again.stderr, '');
});

t.test('an ended ban is not in force: nothing to lift', async (t) => {
  const dir = await storeWith(t, [ban('user', 'bob', 3, NOW - 1)]);
  const res = await runCli(['unban', '--user', 'bob', '--data-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout, 'no ban in force for user bob\n');
});

t.test('unban --ip: an address, its /64, IPv4-mapped, a CIDR', async (t) => {
  const dir = await storeWith(t, [
    ban('ip', '2001:db8:1:2::/64', 12),
    ban('ip', '203.0.113.7', 1),
    ban('ip', '198.51.100.1'),
    ban('ip', '198.51.100.77'),
    ban('ip', '192.0.2.1'),
    ban('user', 'alice'),
  ]);
  const cases: [string, string][] = [
    [
      '2001:DB8:1:2:aaaa::5',
      `unbanned ip 2001:db8:1:2::/64 (was banned until ${UNTIL_TEXT} after 12 failures)\n`,
    ],
    [
      '::ffff:203.0.113.7',
      `unbanned ip 203.0.113.7 (was banned until ${UNTIL_TEXT} after 1 failure)\n`,
    ],
    [
      '198.51.100.0/24',
      `unbanned ip 198.51.100.1 (was banned until ${UNTIL_TEXT} after 5 failures)\n` +
        `unbanned ip 198.51.100.77 (was banned until ${UNTIL_TEXT} after 5 failures)\n`,
    ],
    ['2001:db8:1:2::/64', 'no ban in force for ip 2001:db8:1:2::/64\n'],
  ];
  for (const [ip, stdout] of cases) {
    const res = await runCli(['unban', '--ip', ip, '--data-dir', dir]);
    t.equal(res.code, 0, `${ip}: ${res.stderr}`);
    t.equal(res.stdout, stdout, ip);
    t.equal(res.stderr, '', ip);
  }
  t.same(await bansIn(dir), ['ip:192.0.2.1', 'user:alice']);
});

t.test('no store: exit 1 with one line naming the path, and nothing created', async (t) => {
  const dir = join(t.testdir(), 'never-started');
  const res = await runCli(['unban', '--user', 'alice', '--data-dir', dir]);
  t.equal(res.code, 1);
  t.equal(res.stdout, '');
  t.equal(
    res.stderr,
    `proxyauth: no store at ${join(dir, STORE_FILE)}; start the gateway once to create it\n`,
  );
  t.notOk(existsSync(dir), 'the data dir was not created');
});

t.test('a store that cannot be opened: exit 1, the cause, no stack trace', async (t) => {
  const dir = t.testdir({ [STORE_FILE]: Buffer.alloc(64 * 1024, 0xab) });
  const res = await runCli(['unban', '--ip', '203.0.113.7', '--data-dir', dir]);
  t.equal(res.code, 1);
  t.match(res.stderr, /^proxyauth: cannot open the store at .*proxyauth\.mdb: .*not an LMDB file/);
  t.notMatch(res.stderr, /\n\s+at /);
});

t.test('usage errors exit 2 and touch nothing', async (t) => {
  const dir = await storeWith(t, [ban('user', 'alice')]);
  const cases: [string[], RegExp][] = [
    [['unban'], /^proxyauth: unban needs --user NAME or --ip ADDR$/],
    [
      ['unban', '--user', 'alice', '--ip', '203.0.113.7'],
      /^proxyauth: unban takes --user or --ip, not both$/,
    ],
    [
      ['unban', '--ip', 'example.com'],
      /^proxyauth: --ip "example.com" is not an IP address or CIDR$/,
    ],
    [
      ['unban', '--user', 'a\tb'],
      /^proxyauth: --user "a\\tb": must not contain control characters$/,
    ],
    [['unban', '--user', 'alice', '--json'], /^proxyauth: unban does not take --json$/],
  ];
  for (const [args, first] of cases) {
    const res = await runCli([...args, '--data-dir', dir]);
    const name = args.join(' ');
    t.equal(res.code, 2, name);
    t.equal(res.stdout, '', name);
    const lines = res.stderr.split('\n');
    t.match(lines[0], first, name);
    t.match(lines[1], /^Usage: proxyauth unban --user NAME \| --ip ADDR/, name);
  }
  t.same(await bansIn(dir), ['user:alice']);
});

t.test('the data dir comes from PROXYAUTH_DATA_DIR, as for stats', async (t) => {
  const dir = await storeWith(t, [ban('user', 'alice')]);
  const res = await runCli(['unban', '--user', 'alice'], { env: { PROXYAUTH_DATA_DIR: dir } });
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /^unbanned user alice /);
  const config = await runCli(['unban', '--user', 'x', '--data-dir', dir, '--config-dir', '/nope']);
  t.equal(config.code, 0, '--config-dir is accepted and not read');
});

t.test('beside a writer holding the store open: the lift is seen at once', async (t) => {
  const dir = t.testdir();
  const holder = await startHolder(dir);
  t.teardown(() => holder.proc.kill());
  const now = Math.floor(Date.now() / 1000);
  t.same(await holder.ask({ op: 'ban', ban: ban('user', 'alice') }), { ban: ban('user', 'alice') });
  t.same(await holder.ask({ op: 'ban', ban: ban('ip', '2001:db8:1:2::/64') }), {
    ban: ban('ip', '2001:db8:1:2::/64'),
  });
  t.same(await holder.ask({ op: 'getBan', kind: 'user', subject: 'alice', now }), {
    ban: ban('user', 'alice'),
  });

  const res = await runCli(['unban', '--user', 'alice', '--data-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /^unbanned user alice /);
  // No refresh(): the holder reads as the supervisor does, on a later event-loop turn.
  t.same(
    await holder.ask({ op: 'getBan', kind: 'user', subject: 'alice', now }),
    { ban: null },
    'the holding writer sees the ban gone',
  );

  const ip = await runCli(['unban', '--ip', '2001:db8:1:2::1', '--data-dir', dir]);
  t.equal(ip.code, 0, ip.stderr);
  t.match(ip.stdout, /^unbanned ip 2001:db8:1:2::\/64 /);
  t.same(await holder.ask({ op: 'getBan', kind: 'ip', subject: '2001:db8:1:2::/64', now }), {
    ban: null,
  });

  // Both write at the same time: the holder one ban after another, the CLI its lift. Neither
  // loses the other's writes.
  t.same(await holder.ask({ op: 'ban', ban: ban('user', 'carol') }), { ban: ban('user', 'carol') });
  const [many, lift] = await Promise.all([
    holder.ask({ op: 'banMany', prefix: 'u', count: 200, until: UNTIL }),
    runCli(['unban', '--user', 'carol', '--data-dir', dir]),
  ]);
  t.same(many, { done: 200 });
  t.equal(lift.code, 0, lift.stderr);
  t.match(lift.stdout, /^unbanned user carol /);
  const listed = (await holder.ask({ op: 'bans', now })).bans as LoginBan[];
  t.equal(listed.length, 200, 'every ban the holder wrote, and not carol');
  t.notOk(listed.some((b) => b.subject === 'carol'));
  t.same(await holder.ask({ op: 'stop' }), { stopped: true });
});

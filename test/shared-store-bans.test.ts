// Login bans (brute-force lockouts) in the store: recorded, never shortened, looked up while in
// force, lifted by user or by IP (address, network or CIDR, in any spelling), purged.
import t, { type Test } from 'tap';
import { type LoginBan, openStore, type Store } from '../shared/store.js';

const NOW = 1_700_000_000;

function writer(t: Test, dir = t.testdir()): Store {
  const store = openStore(dir, { readOnly: false });
  t.teardown(() => store.close());
  return store;
}

function ban(kind: 'user' | 'ip', subject: string, until = NOW + 600, failures = 5): LoginBan {
  return { kind, subject, until, bannedAt: NOW, failures };
}

const subjects = (bans: LoginBan[]): string[] => bans.map((b) => `${b.kind}:${b.subject}`);

t.test('a ban is recorded, looked up while in force, and counted', async (t) => {
  const store = writer(t);
  t.equal(store.getBan('user', 'alice', NOW), undefined);
  t.same(await store.ban(ban('user', 'alice')), ban('user', 'alice'), 'returns what is stored');
  t.same(store.getBan('user', 'alice', NOW), ban('user', 'alice'));
  t.same(store.getBan('user', 'alice', NOW + 599), ban('user', 'alice'));
  t.equal(store.getBan('user', 'alice', NOW + 600), undefined, 'until == now has ended');
  t.equal(store.getBan('ip', 'alice', NOW), undefined, 'kinds are apart');
  t.equal(store.getBan('user', 'Alice', NOW), undefined, 'exact subject');
  await store.ban(ban('ip', '203.0.113.7'));
  t.same(store.getBan('ip', '203.0.113.7', NOW), ban('ip', '203.0.113.7'));
  t.equal(store.counts().bans, 2);
});

t.test('a ban is never shortened; a longer one replaces it', async (t) => {
  const store = writer(t);
  const first = { ...ban('user', 'alice', NOW + 600, 5), bannedAt: NOW };
  await store.ban(first);
  const shorter = { ...ban('user', 'alice', NOW + 60, 9), bannedAt: NOW + 10 };
  t.same(await store.ban(shorter), first, 'the later until wins, the ban kept whole');
  t.same(await store.ban({ ...first, bannedAt: NOW + 20, failures: 7 }), first, 'same until');
  t.same(store.getBan('user', 'alice', NOW + 100), first);
  const longer = { ...ban('user', 'alice', NOW + 900, 12), bannedAt: NOW + 30 };
  t.same(await store.ban(longer), longer);
  t.same(store.getBan('user', 'alice', NOW + 700), longer);
  t.same(
    await store.purge(NOW + 600),
    { tokens: 0, revocations: 0, bans: 0, csrfNonces: 0 },
    'old index gone',
  );
  t.same(await store.purge(NOW + 900), { tokens: 0, revocations: 0, bans: 1, csrfNonces: 0 });
  t.equal(store.counts().bans, 0);
});

t.test('an ended ban is replaced by a new one of any length', async (t) => {
  const store = writer(t);
  await store.ban(ban('user', 'bob', NOW + 60));
  const again = { ...ban('user', 'bob', NOW + 30), bannedAt: NOW + 100 };
  // Still stored (not purged) but it ended: "never shortened" is about the later until only.
  t.same(await store.ban({ ...again, until: NOW + 200 }), { ...again, until: NOW + 200 });
});

t.test('listBans: in force only, ip bans then user bans, by subject, at most limit', async (t) => {
  const store = writer(t);
  await store.ban(ban('user', 'carol'));
  await store.ban(ban('user', 'alice'));
  await store.ban(ban('user', 'ended', NOW));
  await store.ban(ban('ip', '2001:db8:1:2::/64'));
  await store.ban(ban('ip', '198.51.100.1'));
  t.same(subjects(store.listBans(NOW, 100)), [
    'ip:198.51.100.1',
    'ip:2001:db8:1:2::/64',
    'user:alice',
    'user:carol',
  ]);
  t.same(subjects(store.listBans(NOW, 3)), [
    'ip:198.51.100.1',
    'ip:2001:db8:1:2::/64',
    'user:alice',
  ]);
  t.same(store.listBans(NOW + 600, 10), []);
});

t.test('unban lifts the ban of exactly that user', async (t) => {
  const store = writer(t);
  await store.ban(ban('user', 'alice'));
  await store.ban(ban('user', 'alice2'));
  await store.ban(ban('ip', '203.0.113.7'));
  t.same(await store.unban('user', 'alice', NOW), [ban('user', 'alice')]);
  t.equal(store.getBan('user', 'alice', NOW), undefined);
  t.same(await store.unban('user', 'alice', NOW), [], 'nothing left to lift');
  t.same(await store.unban('user', 'nobody'), [], 'nowSeconds defaults to now');
  t.same(await store.unban('user', '203.0.113.7', NOW), [], 'never an ip ban');
  t.same(subjects(store.listBans(NOW, 10)), ['ip:203.0.113.7', 'user:alice2']);
  await store.ban(ban('user', 'over', NOW + 10));
  t.same(await store.unban('user', 'over', NOW + 10), [], 'an ended ban is not reported...');
  t.equal(store.counts().bans, 2, '...but removed');
  await t.rejects(store.unban('ip' as 'user', '203.0.113.7'), TypeError);
});

t.test('unbanIp: an IPv4 address, also written as IPv4-mapped IPv6', async (t) => {
  const store = writer(t);
  for (const ip of ['203.0.113.7', '203.0.113.8', '203.0.113.70']) await store.ban(ban('ip', ip));
  await store.ban(ban('user', 'alice'));
  t.same(await store.unbanIp('203.0.113.7', NOW), [ban('ip', '203.0.113.7')]);
  t.same(await store.unbanIp('203.0.113.7', NOW), []);
  t.same(await store.unbanIp('::ffff:203.0.113.8', NOW), [ban('ip', '203.0.113.8')]);
  t.same(await store.unbanIp('0:0:0:0:0:FFFF:CB00:7146', NOW), [ban('ip', '203.0.113.70')]);
  t.same(subjects(store.listBans(NOW, 10)), ['user:alice'], 'user bans untouched');
});

t.test('unbanIp: an IPv6 address lifts the ban of the network that holds it', async (t) => {
  const store = writer(t);
  await store.ban(ban('ip', '2001:db8:1:2::/64'));
  await store.ban(ban('ip', '2001:db8:1:3::/64'));
  await store.ban(ban('ip', '2001:db8::1/128'));
  t.same(await store.unbanIp('2001:db8:1:2:abcd:ef01:2345:6789', NOW), [
    ban('ip', '2001:db8:1:2::/64'),
  ]);
  t.same(await store.unbanIp('2001:DB8:0:0:0:0:0:1', NOW), [ban('ip', '2001:db8::1/128')]);
  t.same(await store.unbanIp('2001:db8::2', NOW), [], 'another address of no banned network');
  t.same(await store.unbanIp(' 2001:0db8:0001:0003:0000:0000:0000:0000/64 ', NOW), [
    ban('ip', '2001:db8:1:3::/64'),
  ]);
  t.equal(store.counts().bans, 0);
});

t.test('unbanIp: a CIDR lifts every ban inside it, and the networks holding it', async (t) => {
  const store = writer(t);
  const ips = [
    '203.0.113.7',
    '203.0.113.200',
    '198.51.100.1',
    '2001:db8:1:2::/64',
    '2001:db8:ff::/64',
    '2001:db9::/64',
  ];
  for (const ip of ips) await store.ban(ban('ip', ip));
  await store.ban(ban('ip', '203.0.113.9', NOW - 1)); // ended, not yet purged
  t.same(subjects(await store.unbanIp('203.0.113.0/24', NOW)), [
    'ip:203.0.113.200',
    'ip:203.0.113.7',
  ]);
  t.same(subjects(await store.unbanIp('2001:db8::/32', NOW)), [
    'ip:2001:db8:1:2::/64',
    'ip:2001:db8:ff::/64',
  ]);
  t.same(subjects(store.listBans(NOW, 10)), ['ip:198.51.100.1', 'ip:2001:db9::/64']);
  t.equal(store.counts().bans, 2, 'the ended ban in the /24 went too');
  t.same(subjects(await store.unbanIp('2001:db9::/80', NOW)), ['ip:2001:db9::/64'], 'wider ban');
  t.same(subjects(await store.unbanIp('::ffff:0:0/96', NOW)), ['ip:198.51.100.1'], 'all IPv4');
  await store.ban(ban('ip', '192.0.2.1'));
  await store.ban(ban('ip', '2001:db9::/64'));
  await store.ban(ban('user', 'alice'));
  t.same(
    subjects(await store.unbanIp('::/0', NOW)),
    ['ip:192.0.2.1', 'ip:2001:db9::/64'],
    'every ip ban, IPv4 included (as ::ffff:a.b.c.d), no user ban',
  );
});

t.test('purge removes the bans that ended', async (t) => {
  const store = writer(t);
  await store.ban(ban('user', 'a', NOW - 1));
  await store.ban(ban('user', 'b', NOW));
  await store.ban(ban('ip', '203.0.113.7', NOW + 1));
  await store.revokeToken({ tokenId: 't', until: NOW, revokedAt: NOW - 9 });
  t.same(await store.purge(NOW), { tokens: 0, revocations: 1, bans: 2, csrfNonces: 0 });
  t.same(subjects(store.listBans(0, 10)), ['ip:203.0.113.7']);
  t.equal(store.counts().bans, 1);
  t.same(await store.purge(NOW), { tokens: 0, revocations: 0, bans: 0, csrfNonces: 0 });
});

t.test('purge takes more than one transaction for many bans', async (t) => {
  const store = writer(t);
  const N = 10_050;
  for (let i = 0; i < N; i += 2500) {
    const batch = Array.from({ length: Math.min(2500, N - i) }, (_, j) =>
      ban('user', `u${i + j}`, NOW - (j % 5)),
    );
    await Promise.all(batch.map((b) => store.ban(b)));
  }
  t.equal(store.counts().bans, N);
  t.same(await store.purge(NOW), { tokens: 0, revocations: 0, bans: N, csrfNonces: 0 });
  t.equal(store.counts().bans, 0);
});

t.test('a reader looks bans up and cannot write them', async (t) => {
  const dir = t.testdir();
  const store = writer(t, dir);
  await store.ban(ban('user', 'alice'));
  const reader = openStore(dir, { readOnly: true });
  t.teardown(() => reader.close());
  t.same(reader.getBan('user', 'alice', NOW), ban('user', 'alice'));
  t.same(subjects(reader.listBans(NOW, 10)), ['user:alice']);
  const code = { code: 'STORE_READ_ONLY' };
  await t.rejects(reader.ban(ban('user', 'bob')), code);
  await t.rejects(reader.unban('user', 'alice'), code);
  await t.rejects(reader.unbanIp('203.0.113.7'), code);
  await store.unban('user', 'alice', NOW);
  reader.refresh();
  t.equal(reader.getBan('user', 'alice', NOW), undefined, 'the reader sees the lift');
});

t.test('malformed arguments are refused before any write', async (t) => {
  const store = writer(t);
  await t.rejects(store.ban({ ...ban('user', 'a'), kind: 'host' as 'user' }), TypeError);
  await t.rejects(store.ban(ban('user', '')), TypeError);
  await t.rejects(store.ban(ban('user', 'a\0b')), TypeError);
  await t.rejects(store.ban(ban('ip', 'not-an-ip')), TypeError);
  await t.rejects(store.ban(ban('ip', '1.2.3.4/33')), TypeError);
  await t.rejects(store.ban(ban('user', 'a', Number.NaN)), TypeError);
  await t.rejects(store.ban({ ...ban('user', 'a'), bannedAt: Infinity }), TypeError);
  await t.rejects(store.ban(ban('user', 'a', NOW, -1)), RangeError);
  await t.rejects(store.ban(ban('user', 'a', NOW, 1.5)), RangeError);
  await t.rejects(store.unban('user', ''), TypeError);
  await t.rejects(store.unban('user', 'a', Number.NaN), TypeError);
  await t.rejects(store.unbanIp('nope'), TypeError);
  await t.rejects(store.unbanIp('203.0.113.7', Number.NaN), TypeError);
  t.throws(() => store.getBan('host' as 'user', 'a', NOW), TypeError);
  t.throws(() => store.getBan('user', '', NOW), TypeError);
  t.throws(() => store.getBan('user', 'a', Number.NaN), TypeError);
  t.throws(() => store.listBans(NOW, 0), RangeError);
  t.throws(() => store.listBans(Number.NaN, 1), TypeError);
  t.equal(store.counts().bans, 0, 'nothing written');
});

t.test('a closed store refuses ban reads and writes', async (t) => {
  const store = openStore(t.testdir(), { readOnly: false });
  await store.close();
  t.throws(() => store.getBan('user', 'a', NOW), { code: 'STORE_CLOSED' });
  t.throws(() => store.listBans(NOW, 1), { code: 'STORE_CLOSED' });
  await t.rejects(store.ban(ban('user', 'a')), { code: 'STORE_CLOSED' });
  await t.rejects(store.unbanIp('203.0.113.7'), { code: 'STORE_CLOSED' });
});

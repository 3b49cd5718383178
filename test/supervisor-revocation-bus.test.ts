// The Redis revocation bus with two or three nodes in one process (store + keeper + a fleet that
// records what the edges were told) and a real redis-server started by the test.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { RevocationChange } from '../shared/ipc.js';
import { openStore } from '../shared/store.js';
import { joinRecords, type SyncRecord } from '../shared/sync-record.js';
import { MERGE_SCRIPT } from '../supervisor/redis-merge-script.js';
import { RevocationBus } from '../supervisor/revocation-bus.js';
import { type KeeperFleet, StoreKeeper } from '../supervisor/store-keeper.js';
import { makeCertAuthority } from './helpers/cert-authority.js';
import { memoryLog } from './helpers/fake-edge.js';
import { waitFor } from './helpers/gateway.js';
import { startRedis, type TestRedis } from './helpers/redis-server.js';

const FAR = Math.floor(Date.now() / 1000) + 3600;
const T1 = 'AAAAAAAAAAAAAAAAAAAAAA';
const T2 = 'BBBBBBBBBBBBBBBBBBBBBB';

async function redisFor(t: Test): Promise<TestRedis> {
  const redis = await startRedis(t.testdir());
  t.teardown(() => redis.stop());
  return redis;
}

interface NodeOptions {
  prefix?: string;
  tls?: ConnectionOptions;
  /** Do not start the bus yet (changes stay in the outbox). */
  idle?: boolean;
}

async function node(t: Test, url: string, options: NodeOptions = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'proxyauth-bus-'));
  const store = openStore(dir, { readOnly: false });
  const told: RevocationChange[] = [];
  const fleet: KeeperFleet = {
    on: (() => () => {}) as unknown as KeeperFleet['on'],
    answer: (() => {}) as unknown as KeeperFleet['answer'],
    broadcast: (async (body: { changes: RevocationChange[] }) => {
      told.push(...body.changes);
      return [];
    }) as unknown as KeeperFleet['broadcast'],
  };
  const nodeId = randomBytes(8).toString('hex');
  const log = memoryLog();
  let bus: RevocationBus | undefined;
  const keeper = new StoreKeeper(store, fleet, log, undefined, {
    origin: nodeId,
    queued: () => bus?.flush(),
  });
  keeper.start();
  const makeBus = () =>
    new RevocationBus({
      url,
      prefix: options.prefix ?? 'proxyauth:',
      nodeId,
      store,
      keeper,
      log,
      retry: { minMs: 50, maxMs: 200 },
      ...(options.tls ? { tls: options.tls } : {}),
    });
  const startBus = () => {
    bus = makeBus();
    bus.start();
    return bus;
  };
  if (!options.idle) startBus();
  t.teardown(async () => {
    await bus?.close();
    await keeper.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  const revoked = (id: string) => {
    store.refresh();
    const r = store.getTokenRevocation(id);
    return r !== undefined && r.until > Date.now() / 1000;
  };
  return { store, keeper, told, log, nodeId, startBus, bus: () => bus!, revoked };
}

const revoke = (tokenId: string, until = FAR) =>
  ({ op: 'revoke-token', tokenId, until, revokedAt: Math.floor(Date.now() / 1000) }) as const;

async function connected(...nodes: { bus: () => RevocationBus }[]): Promise<boolean> {
  return waitFor(() => nodes.every((n) => n.bus().connected), 5_000);
}

t.test('a revoke on A is applied on B, store first, then its edges; a lift too', async (t) => {
  const redis = await redisFor(t);
  const a = await node(t, redis.url);
  const b = await node(t, redis.url);
  t.ok(await connected(a, b));
  await waitFor(
    async () => (await redis.cli('PUBSUB', 'NUMSUB', 'proxyauth:revocations')).includes('2'),
    5_000,
  );
  const answer = await a.keeper.change(revoke(T1));
  t.equal(answer.changed, true);
  t.ok(await waitFor(() => b.revoked(T1), 2_000), 'B refuses it');
  t.same(
    b.told.map((c) => c.op),
    ['revoke-token'],
    "B's edges were told once",
  );
  const hash = await redis.cli('HGETALL', `proxyauth:rev:token:${T1}`);
  t.match(hash, /state\nrevoked\n/);
  t.match(hash, new RegExp(`origin\\n${a.nodeId}`));
  const ttl = Number(await redis.cli('TTL', `proxyauth:rev:token:${T1}`));
  t.ok(ttl > 3500 && ttl <= 3600, `the key lives as long as the revocation (${ttl} s)`);
  t.same(a.store.syncOutbox(10), [], "A's outbox is empty once published");

  await a.keeper.change({ op: 'lift-token', tokenId: T1 });
  t.ok(await waitFor(() => !b.revoked(T1) && b.told.length === 2, 2_000), 'B lifted it');
  t.same(
    b.told.map((c) => c.op),
    ['revoke-token', 'lift-token'],
  );
  t.match(
    await redis.cli('HGETALL', `proxyauth:rev:token:${T1}`),
    /state\nlifted\n/,
    'a tombstone',
  );
  t.same(a.told.length, 2, 'A did not apply its own messages again');
});

t.test(
  'user revocations: notBefore moves forward and joins; no +1 drift on re-apply',
  async (t) => {
    const redis = await redisFor(t);
    const a = await node(t, redis.url);
    const b = await node(t, redis.url);
    t.ok(await connected(a, b));
    await a.keeper.change({
      op: 'revoke-user',
      user: 'alice',
      notBefore: 1000,
      until: FAR,
      revokedAt: 1,
    });
    t.ok(
      await waitFor(() => {
        b.store.refresh();
        return b.store.getUserRevocation('alice') !== undefined;
      }, 2_000),
    );
    // A second revocation on B: the keeper moves notBefore past the first one.
    await b.keeper.change({
      op: 'revoke-user',
      user: 'alice',
      notBefore: 900,
      until: FAR - 10,
      revokedAt: 2,
    });
    const expect = { notBefore: 1001, until: FAR };
    t.ok(
      await waitFor(() => {
        a.store.refresh();
        return a.store.getUserRevocation('alice')?.notBefore === 1001;
      }, 2_000),
    );
    t.match(
      a.store.getUserRevocation('alice'),
      expect,
      'A joined B: later notBefore, longer until',
    );
    t.match(b.store.getUserRevocation('alice'), expect);
    // A reconnect re-applies everything Redis holds: nothing moves.
    await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    t.ok(
      await waitFor(
        () => a.log.lines.some((l) => l.msg.startsWith('redis reachable again')),
        5_000,
      ),
    );
    await a.bus().idle();
    await b.bus().idle();
    t.match(a.store.getUserRevocation('alice'), expect, 'no drift after catch-up');
    t.match(b.store.getUserRevocation('alice'), expect);
  },
);

t.test(
  'outage: changes queue in the outbox; Redis back empty: re-seeded, B converges',
  async (t) => {
    const redis = await redisFor(t);
    const a = await node(t, redis.url);
    const b = await node(t, redis.url);
    t.ok(await connected(a, b));
    await a.keeper.change(revoke(T1));
    t.ok(await waitFor(() => b.revoked(T1), 2_000));
    await redis.stop();
    const started = Date.now();
    const answer = await a.keeper.change(revoke(T2));
    t.ok(Date.now() - started < 500, 'the change does not wait for Redis');
    t.equal(answer.changed, true);
    t.ok(a.revoked(T2), 'in force on A');
    t.equal(a.store.syncOutbox(10).length, 1, 'queued');
    t.equal(
      a.log.lines.filter((l) => l.msg.startsWith('redis unreachable')).length,
      1,
      'the outage is logged once',
    );
    await new Promise((r) => setTimeout(r, 400)); // a few reconnect attempts
    t.equal(
      a.log.lines.filter((l) => l.msg.startsWith('redis unreachable')).length,
      1,
      'still once',
    );
    await redis.restart();
    t.ok(await waitFor(() => b.revoked(T2), 5_000), 'B learned the change made during the outage');
    t.ok(await waitFor(() => a.store.syncOutbox(10).length === 0, 2_000), 'the outbox emptied');
    t.match(
      await redis.cli('HGET', `proxyauth:rev:token:${T1}`, 'state'),
      /revoked/,
      'T1 re-seeded',
    );
    t.ok(a.log.lines.some((l) => l.msg.startsWith('redis reachable again')));
    const c = await node(t, redis.url);
    t.ok(await waitFor(() => c.revoked(T1) && c.revoked(T2), 5_000), 'a late node knows both');
  },
);

t.test('a lift is a tombstone: a node that was away cannot resurrect the revocation', async (t) => {
  const redis = await redisFor(t);
  const away = await node(t, redis.url, { idle: true });
  await away.keeper.change(revoke(T1)); // made while its bus is off: it stays in its outbox
  await new Promise((r) => setTimeout(r, 5));
  const a = await node(t, redis.url);
  const b = await node(t, redis.url);
  t.ok(await connected(a, b));
  await a.keeper.change(revoke(T1));
  t.ok(await waitFor(() => b.revoked(T1), 2_000));
  await a.keeper.change({ op: 'lift-token', tokenId: T1 });
  t.ok(await waitFor(() => !b.revoked(T1), 2_000));
  away.startBus();
  t.ok(await waitFor(() => !away.revoked(T1), 5_000), 'the node that was away lifted it too');
  await away.bus().idle();
  t.notOk(b.revoked(T1), 'B still has it lifted');
  t.match(await redis.cli('HGET', `proxyauth:rev:token:${T1}`, 'state'), /lifted/);
  t.same(away.store.syncOutbox(10), []);
});

t.test('malformed messages and keys are dropped and logged once per kind', async (t) => {
  const redis = await redisFor(t);
  const a = await node(t, redis.url);
  t.ok(await connected(a));
  const good = {
    v: 1,
    from: 'ffffffffffffffff',
    kind: 'token',
    subject: T1,
    revokedAt: Date.now(),
    liftedAt: 0,
    until: FAR,
    notBefore: 0,
    expiresAt: FAR,
    origin: 'ffffffffffffffff',
  };
  for (const text of [
    'not json',
    'not json either',
    JSON.stringify({ ...good, until: 'soon' }),
    JSON.stringify({ ...good, kind: 'group' }),
    JSON.stringify({ ...good, subject: '' }),
  ]) {
    await redis.cli('PUBLISH', 'proxyauth:revocations', text);
  }
  await redis.cli('HSET', `proxyauth:rev:token:${T2}`, 'revokedAt', 'x', 'until', '1');
  await redis.cli('HSET', 'proxyauth:rev:group:x', 'revokedAt', '1');
  await redis.cli('PUBLISH', 'proxyauth:revocations', JSON.stringify(good));
  t.ok(await waitFor(() => a.revoked(T1), 2_000), 'a good message after bad ones is applied');
  await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal'); // reconnect: catch-up scans the bad keys
  t.ok(
    await waitFor(() => a.log.lines.some((l) => l.msg.includes('a key with a bad name')), 5_000),
  );
  const dropped = a.log.lines.filter((l) => l.msg.includes('dropped')).map((l) => l.msg);
  t.equal(dropped.filter((m) => m.includes('not JSON')).length, 1, 'logged once per kind');
  t.ok(
    dropped.some((m) => m.includes('(until)')),
    'the bad field is named',
  );
  t.ok(dropped.some((m) => m.includes('a key with bad fields')));
  t.notOk(a.revoked(T2), 'nothing applied from a bad key');
  t.equal(a.told.length, 1);
});

t.test('a record dated far ahead of the clock is dropped, from a message or a key', async (t) => {
  // Someone who can write to Redis (or a node whose clock is far ahead) published a lift dated
  // in year 5138: joined, it lifted the revocation on every node and outdated every later
  // revoke; and a user's "not before" in 5138 made every login mint a token expiring in 5138.
  const redis = await redisFor(t);
  const a = await node(t, redis.url);
  const b = await node(t, redis.url);
  t.ok(await connected(a, b));
  await a.keeper.change(revoke(T1));
  t.ok(await waitFor(() => b.revoked(T1), 2_000));
  const forged = {
    v: 1,
    from: 'ffffffffffffffff',
    kind: 'token',
    subject: T1,
    revokedAt: 0,
    liftedAt: 99_999_999_999_999,
    until: 0,
    notBefore: 0,
    expiresAt: 99_999_999_999,
    origin: 'ffffffffffffffff',
  };
  await redis.cli('PUBLISH', 'proxyauth:revocations', JSON.stringify(forged));
  await redis.cli(
    'HSET',
    `proxyauth:rev:user:u`,
    'revokedAt',
    String(Date.now()),
    'liftedAt',
    '0',
    'until',
    '99999999999',
    'notBefore',
    '99999999999',
    'expiresAt',
    '99999999999',
    'origin',
    '',
  );
  await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal'); // reconnect: catch-up scans the key
  t.ok(
    await waitFor(
      () => b.log.lines.filter((l) => l.msg.includes('dated ahead of this clock')).length >= 2,
      5_000,
    ),
    'both dropped and logged',
  );
  t.ok(a.revoked(T1), 'still revoked on A');
  t.ok(b.revoked(T1), 'still revoked on B');
  b.store.refresh();
  t.equal(b.store.getUserRevocation('u'), undefined, 'no user revocation from the key');
});

t.test('prefixes isolate clusters sharing one Redis', async (t) => {
  const redis = await redisFor(t);
  const a = await node(t, redis.url, { prefix: 'one:' });
  const b = await node(t, redis.url, { prefix: 'two:' });
  const a2 = await node(t, redis.url, { prefix: 'one:' });
  t.ok(await connected(a, b, a2));
  await a.keeper.change(revoke(T1));
  t.ok(await waitFor(() => a2.revoked(T1), 2_000), 'same prefix: applied');
  await b.bus().idle();
  t.notOk(b.revoked(T1), 'other prefix: not applied');
  t.equal((await redis.cli('KEYS', 'two:*')).trim(), '');
  const c = await node(t, redis.url, { prefix: 'two:' });
  t.ok(await connected(c));
  await c.bus().idle();
  t.notOk(c.revoked(T1), 'a late node of the other cluster does not catch it up');
});

t.test('rediss:// with a private CA', async (t) => {
  const dir = t.testdir();
  const pki = await makeCertAuthority(dir);
  const tls = { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: pki.caFile };
  const redis = await startRedis(dir, tls);
  t.teardown(() => redis.stop());
  const { readFile } = await import('node:fs/promises');
  const ca = await readFile(pki.caFile);
  const a = await node(t, redis.url, { tls: { ca } });
  const b = await node(t, redis.url, { tls: { ca } });
  t.ok(await connected(a, b), 'both connect over TLS');
  await a.keeper.change(revoke(T1));
  t.ok(await waitFor(() => b.revoked(T1), 2_000));
  const untrusted = await node(t, redis.url);
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(untrusted.bus().connected, 'a server certificate of an unknown CA is refused');
  t.ok(untrusted.log.lines.some((l) => l.msg.startsWith('redis unreachable')));
});

t.test(
  'an ACL user with only what the bus needs; a wrong password never reaches the log',
  async (t) => {
    const redis = await redisFor(t);
    await redis.cli(
      'ACL',
      'SETUSER',
      'bus',
      'on',
      '>bus-Pa55-word',
      'resetkeys',
      '~proxyauth:*',
      'resetchannels',
      '&proxyauth:*',
      '-@all',
      '+evalsha',
      '+eval',
      '+hmget',
      '+hset',
      '+expireat',
      '+publish',
      '+subscribe',
      '+scan',
      '+hgetall',
      '+ping',
    );
    const url = `redis://bus:bus-Pa55-word@127.0.0.1:${redis.port}/0`;
    const a = await node(t, url);
    const b = await node(t, url);
    t.ok(await connected(a, b));
    await a.keeper.change(revoke(T1));
    t.ok(await waitFor(() => b.revoked(T1), 2_000), 'works with the minimal ACL');
    const wrong = await node(t, `redis://bus:not-the-Pa55@127.0.0.1:${redis.port}/0`);
    t.ok(
      await waitFor(
        () => wrong.log.lines.some((l) => l.msg.startsWith('redis unreachable')),
        3_000,
      ),
    );
    const text = JSON.stringify(wrong.log.lines) + JSON.stringify(a.log.lines);
    t.notMatch(text, /Pa55/, 'no password in any log line');
    t.match(text, /redis:\/\/bus:\*\*\*@127\.0\.0\.1/, 'the URL is logged redacted');
  },
);

t.test('the Lua merge is joinRecords', async (t) => {
  const redis = await redisFor(t);
  const client = new Redis(redis.url) as Redis & {
    merge(key: string, ...args: string[]): Promise<unknown[]>;
  };
  t.teardown(() => client.disconnect());
  client.defineCommand('merge', { numberOfKeys: 1, lua: MERGE_SCRIPT });
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
  const differ: unknown[] = [];
  for (let round = 0; round < 200; round++) {
    let expected: SyncRecord | undefined;
    const key = `m:${round}`;
    for (let i = 0; i < 4; i++) {
      const until = FAR + pick([0, 10, 20]);
      const r: SyncRecord = {
        kind: 'user',
        subject: 'u',
        revokedAt: pick([0, 1000, 2000, 3000]),
        liftedAt: pick([0, 1000, 2000, 3000]),
        until,
        notBefore: pick([0, 5, 9]),
        expiresAt: until + pick([0, 30]),
        origin: pick(['aa', 'bb', 'cc']),
      };
      expected = joinRecords(expected, r);
      const reply = await client.merge(
        key,
        ...[r.revokedAt, r.liftedAt, r.until, r.notBefore, r.expiresAt].map(String),
        r.origin,
        'ch',
        'n',
        'user',
        'u',
      );
      const e = expected;
      const want = [e.revokedAt, e.liftedAt, e.until, e.notBefore, e.expiresAt].map(String);
      want.push(e.origin);
      if (JSON.stringify(reply.slice(1)) !== JSON.stringify(want))
        differ.push({ round, i, reply, want });
    }
  }
  t.same(differ, [], '800 merges in 200 random sequences agree');
  // A merge that changes nothing reports it (no message is published then).
  const again = await client.merge('m:0', '0', '0', '0', '0', '0', '', 'ch', 'n', 'user', 'u');
  t.equal(again[0], 0);
});

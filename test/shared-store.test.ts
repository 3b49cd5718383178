import { statSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import t, { type Test } from 'tap';
import {
  openStore,
  type Revocation,
  SCHEMA_VERSION,
  STORE_FILE,
  type Store,
  type TokenRecord,
} from '../shared/store.js';
import { CURRENT_DATABASES, CURRENT_SCHEMA } from './helpers/store-layout.js';

const NOW = 1_700_000_000;

function token(tokenId: string, user: string, iat: number, exp: number): TokenRecord {
  return { tokenId, user, iat, exp };
}

function writer(t: Test, dir = t.testdir()): Store {
  const store = openStore(dir, { readOnly: false });
  t.teardown(() => store.close());
  return store;
}

t.test('a new store has every database and the current schema version', async (t) => {
  const dir = t.testdir();
  const store = openStore(dir, { readOnly: false });
  t.equal(store.path, join(dir, STORE_FILE));
  t.same(store.counts(), { tokens: 0, revokedTokens: 0, revokedUsers: 0, bans: 0 });
  await store.close();
  const raw = open(join(dir, STORE_FILE), { readOnly: true, maxDbs: 32 });
  t.teardown(() => raw.close());
  t.same([...raw.getKeys()].sort(), CURRENT_DATABASES);
  const meta = raw.openDB('meta', {});
  t.equal(meta.get('schema'), SCHEMA_VERSION);
  t.equal(SCHEMA_VERSION, CURRENT_SCHEMA);
  t.type(meta.get('opened_at'), 'number', 'the writer probe wrote its open time');
});

t.test('reopening keeps the data', async (t) => {
  const dir = t.testdir();
  const first = openStore(dir, { readOnly: false });
  await first.recordTokens([token('a', 'ann', NOW, NOW + 60)]);
  await first.revokeToken({ tokenId: 'a', until: NOW + 60, revokedAt: NOW });
  await first.close();
  const again = writer(t, dir);
  t.same(again.getToken('a'), token('a', 'ann', NOW, NOW + 60));
  t.same(again.revocationsInForce(NOW).tokens, [{ tokenId: 'a', until: NOW + 60, revokedAt: NOW }]);
});

t.test('a read-only handle sees what the writer committed, after refresh()', async (t) => {
  const dir = t.testdir();
  const store = writer(t, dir);
  const reader = openStore(dir, { readOnly: true });
  t.teardown(() => reader.close());
  t.equal(reader.readOnly, true);
  t.equal(reader.getToken('a'), undefined);
  await store.recordTokens([token('a', 'ann', NOW, NOW + 60)]);
  reader.refresh();
  t.same(reader.getToken('a'), token('a', 'ann', NOW, NOW + 60));
  t.same(reader.counts(), { tokens: 1, revokedTokens: 0, revokedUsers: 0, bans: 0 });
});

t.test('a read-only handle refuses every write', async (t) => {
  const dir = t.testdir();
  await writer(t, dir).recordTokens([token('a', 'ann', NOW, NOW + 60)]);
  const reader = openStore(dir, { readOnly: true });
  t.teardown(() => reader.close());
  const code = { code: 'STORE_READ_ONLY' };
  await t.rejects(reader.recordTokens([token('b', 'bob', NOW, NOW + 60)]), code);
  await t.rejects(reader.addUses([{ record: token('a', 'ann', NOW, NOW + 60), count: 1 }]), code);
  await t.rejects(reader.revokeToken({ tokenId: 'a', until: NOW, revokedAt: NOW }), code);
  await t.rejects(
    reader.revokeUser({ user: 'ann', notBefore: NOW, until: NOW, revokedAt: NOW }),
    code,
  );
  await t.rejects(reader.liftToken('a'), code);
  await t.rejects(reader.liftUser('ann'), code);
  await t.rejects(reader.purge(NOW), code);
  t.same(reader.counts(), { tokens: 1, revokedTokens: 0, revokedUsers: 0, bans: 0 });
});

t.test(
  'recordTokens replaces a different record under the same id, indexes included',
  async (t) => {
    const store = writer(t);
    await store.recordTokens([token('a', 'ann', NOW, NOW + 60), token('b', 'ann', NOW, NOW + 90)]);
    await store.recordTokens([token('a', 'bob', NOW + 1, NOW + 30)]);
    t.same(store.getToken('a'), token('a', 'bob', NOW + 1, NOW + 30));
    t.equal(store.latestExpiryOf('ann'), NOW + 90, "ann's index lost token a");
    t.equal(store.latestExpiryOf('bob'), NOW + 30);
    t.same(
      await store.purge(NOW + 30),
      { tokens: 1, revocations: 0, bans: 0, csrfNonces: 0 },
      'a expires at its new exp',
    );
    t.same(store.counts().tokens, 1);
  },
);

t.test('addUses adds exactly under many concurrent calls', async (t) => {
  const store = writer(t);
  const record = token('a', 'ann', NOW, NOW + 600);
  await store.recordTokens([record]);
  const calls: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) {
    // Spread over several event-loop turns, so the calls land in different transactions too.
    if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    calls.push(store.addUses([{ record, count: 1 }]));
  }
  await Promise.all(calls);
  t.equal(store.stats({ user: 'ann', limit: 10, nowSeconds: NOW }).users[0]?.tokens[0]?.count, 100);
  await store.addUses([
    { record, count: 5 },
    { record, count: 7 },
  ]);
  t.equal(store.stats({ limit: 10, nowSeconds: NOW }).users[0]?.tokens[0]?.count, 112);
});

t.test('addUses records a token this node has never seen, with its indexes', async (t) => {
  const store = writer(t);
  const foreign = token('x', 'zoe', NOW, NOW + 60);
  await store.addUses([{ record: foreign, count: 3 }]);
  t.same(store.getToken('x'), foreign);
  t.equal(store.latestExpiryOf('zoe'), NOW + 60);
  t.same(store.stats({ limit: 10, nowSeconds: NOW }).users, [
    { user: 'zoe', tokens: [{ ...foreign, count: 3 }] },
  ]);
  await store.addUses([{ record: token('x', 'someone-else', 1, 2), count: 1 }]);
  t.same(store.getToken('x'), foreign, 'an existing record is kept');
  t.same(await store.purge(NOW + 60), { tokens: 1, revocations: 0, bans: 0, csrfNonces: 0 });
  t.same(store.stats({ limit: 10, nowSeconds: 0 }), { users: [], next: null });
});

t.test('revocations: overwrite, lift, and what is in force', async (t) => {
  const store = writer(t);
  await store.revokeToken({ tokenId: 'a', until: NOW + 10, revokedAt: NOW });
  await store.revokeToken({ tokenId: 'a', until: NOW + 100, revokedAt: NOW + 1 });
  await store.revokeUser({ user: 'ann', notBefore: NOW, until: NOW + 50, revokedAt: NOW });
  await store.revokeUser({ user: 'ann', notBefore: NOW + 2, until: NOW + 20, revokedAt: NOW + 2 });
  t.same(store.counts(), { tokens: 0, revokedTokens: 1, revokedUsers: 1, bans: 0 });
  t.same(store.revocationsInForce(NOW + 10), {
    tokens: [{ tokenId: 'a', until: NOW + 100, revokedAt: NOW + 1 }],
    users: [{ user: 'ann', notBefore: NOW + 2, until: NOW + 20, revokedAt: NOW + 2 }],
  });
  t.same(store.revocationsInForce(NOW + 20).users, [], 'until == now is no longer in force');
  t.same(
    await store.purge(NOW + 10),
    { tokens: 0, revocations: 0, bans: 0, csrfNonces: 0 },
    'the old until is gone',
  );
  t.equal(await store.liftToken('a'), true);
  t.equal(await store.liftToken('a'), false);
  t.equal(await store.liftUser('ann'), true);
  t.equal(await store.liftUser('ann'), false);
  t.equal(await store.liftUser('nobody'), false);
  t.same(store.revocationsInForce(0), { tokens: [], users: [] });
  t.same(
    await store.purge(NOW + 1000),
    { tokens: 0, revocations: 0, bans: 0, csrfNonces: 0 },
    'no index entry left',
  );
});

t.test('purge removes exactly what ended at or before now', async (t) => {
  const store = writer(t);
  await store.recordTokens([
    token('t1', 'ann', NOW - 100, NOW - 1),
    token('t2', 'ann', NOW - 50, NOW),
    token('t3', 'ann', NOW - 10, NOW + 1),
    token('t4', 'bob', NOW - 10, NOW + 500),
  ]);
  await store.addUses([{ record: token('t2', 'ann', NOW - 50, NOW), count: 4 }]);
  await store.revokeToken({ tokenId: 't1', until: NOW, revokedAt: NOW - 5 });
  await store.revokeToken({ tokenId: 't3', until: NOW + 1, revokedAt: NOW - 5 });
  await store.revokeUser({ user: 'ann', notBefore: NOW, until: NOW - 1, revokedAt: NOW - 5 });
  await store.revokeUser({ user: 'bob', notBefore: NOW, until: NOW + 500, revokedAt: NOW - 5 });
  t.same(await store.purge(NOW), { tokens: 2, revocations: 2, bans: 0, csrfNonces: 0 });
  t.equal(store.getToken('t1'), undefined);
  t.equal(store.getToken('t2'), undefined);
  t.ok(store.getToken('t3'));
  t.ok(store.getToken('t4'));
  t.equal(store.latestExpiryOf('ann'), NOW + 1);
  t.same(store.counts(), { tokens: 2, revokedTokens: 1, revokedUsers: 1, bans: 0 });
  t.same(
    store.listRevocations({ limit: 10, nowSeconds: 0 }).items.map((r) => r.kind),
    ['token', 'user'],
  );
  await store.recordTokens([token('t2', 'ann', NOW + 1, NOW + 60)]);
  t.equal(
    store.stats({ user: 'ann', limit: 10, nowSeconds: NOW }).users[0]?.tokens[1]?.count,
    0,
    'the uses of a purged token went with it',
  );
  t.same(
    await store.purge(NOW),
    { tokens: 0, revocations: 0, bans: 0, csrfNonces: 0 },
    'a second purge finds nothing',
  );
});

t.test('the file stays bounded across fill and purge cycles', async (t) => {
  const dir = t.testdir();
  const store = writer(t, dir);
  // More than one purge transaction's worth (10 000 of each kind) per cycle.
  const N = 12_000;
  const sizes: number[] = [];
  for (let cycle = 0; cycle < 4; cycle++) {
    const records = Array.from({ length: N }, (_, i) =>
      token(`c${cycle}-${i}`, `user${i % 50}`, NOW - 100, NOW - 1 - (i % 7)),
    );
    await store.recordTokens(records);
    await store.addUses(records.slice(0, 1000).map((record) => ({ record, count: 2 })));
    for (let i = 0; i < N; i += 4000) {
      await Promise.all(
        records
          .slice(i, i + 4000)
          .map((r) => store.revokeToken({ tokenId: r.tokenId, until: r.exp, revokedAt: NOW - 50 })),
      );
    }
    t.same(store.counts(), { tokens: N, revokedTokens: N, revokedUsers: 0, bans: 0 });
    t.same(
      await store.purge(NOW),
      { tokens: N, revocations: N, bans: 0, csrfNonces: 0 },
      `cycle ${cycle}`,
    );
    t.same(store.counts(), { tokens: 0, revokedTokens: 0, revokedUsers: 0, bans: 0 });
    t.equal(store.latestExpiryOf('user1'), undefined);
    sizes.push(statSync(store.path).size);
  }
  t.comment(`file size after each cycle: ${sizes.join(', ')}`);
  // LMDB reuses the pages a purge freed: later cycles fit in what the first one grew to
  // (a little slack for the free list's own pages).
  t.ok(sizes.at(-1)! <= sizes[0]! * 1.25, `no growth past the first cycle: ${sizes.join(', ')}`);
});

t.test('revocations in force, token then user, with until > now', async (t) => {
  const store = writer(t);
  await store.revokeToken({ tokenId: 'late', until: NOW + 300, revokedAt: NOW });
  await store.revokeToken({ tokenId: 'early', until: NOW + 100, revokedAt: NOW });
  await store.revokeToken({ tokenId: 'over', until: NOW - 1, revokedAt: NOW - 9 });
  await store.revokeToken({ tokenId: 'ends-now', until: NOW, revokedAt: NOW - 9 });
  await store.revokeUser({ user: 'ann', notBefore: NOW, until: NOW + 5, revokedAt: NOW });
  await store.revokeUser({ user: 'bob', notBefore: NOW, until: NOW, revokedAt: NOW });
  const found = store.revocationsInForce(NOW);
  t.same(
    found.tokens.map((r) => r.tokenId),
    ['early', 'late'],
    'ordered by until, the ended ones left out',
  );
  t.same(found.users, [{ user: 'ann', notBefore: NOW, until: NOW + 5, revokedAt: NOW }]);
});

t.test('listRevocations pages cover every revocation in force exactly once', async (t) => {
  const store = writer(t);
  const inForce = new Set<string>();
  for (let i = 0; i < 23; i++) {
    const until = i % 4 === 0 ? NOW - i : NOW + 1 + i; // every fourth has ended
    await store.revokeToken({
      tokenId: `tok-${String(i).padStart(2, '0')}`,
      until,
      revokedAt: NOW,
    });
    if (until > NOW) inForce.add(`token:tok-${String(i).padStart(2, '0')}`);
  }
  for (let i = 0; i < 9; i++) {
    const until = i % 3 === 0 ? NOW : NOW + 10;
    await store.revokeUser({ user: `user-${i}`, notBefore: NOW, until, revokedAt: NOW });
    if (until > NOW) inForce.add(`user:user-${i}`);
  }
  const name = (r: Revocation): string =>
    r.kind === 'token' ? `token:${r.tokenId}` : `user:${r.user}`;
  for (const limit of [1, 2, 3, 5, 7, 100]) {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = store.listRevocations({ limit, nowSeconds: NOW, ...(after ? { after } : {}) });
      t.ok(page.items.length <= limit);
      seen.push(...page.items.map(name));
      pages++;
      if (page.next === null) break;
      t.equal(page.items.length, limit, 'only the last page is short');
      after = page.next;
    }
    t.same(seen, [...inForce].sort(), `limit ${limit}: each once, tokens first, in order`);
    t.equal(pages, Math.max(1, Math.ceil(inForce.size / limit)), `limit ${limit}: no empty page`);
  }
});

t.test('a listRevocations page resumes after its cursor while entries change', async (t) => {
  const store = writer(t);
  for (const id of ['a', 'c', 'e']) {
    await store.revokeToken({ tokenId: id, until: NOW + 10, revokedAt: NOW });
  }
  const first = store.listRevocations({ limit: 2, nowSeconds: NOW });
  t.same(
    first.items.map((r) => r.kind === 'token' && r.tokenId),
    ['a', 'c'],
  );
  await store.revokeToken({ tokenId: 'b', until: NOW + 10, revokedAt: NOW }); // before the cursor
  await store.revokeToken({ tokenId: 'd', until: NOW + 10, revokedAt: NOW }); // after it
  await store.liftToken('c'); // the cursor's own entry
  const rest = store.listRevocations({ limit: 10, nowSeconds: NOW, after: first.next! });
  t.same(
    rest.items.map((r) => r.kind === 'token' && r.tokenId),
    ['d', 'e'],
  );
  t.equal(rest.next, null);
});

t.test('stats: grouped by user, unexpired only, ordered, filtered and paged', async (t) => {
  const store = writer(t);
  await store.recordTokens([
    token('b2', 'bob', NOW + 2, NOW + 100),
    token('a1', 'ann', NOW + 1, NOW + 100),
    token('b1', 'bob', NOW + 1, NOW + 100),
    token('a0', 'ann', NOW - 9, NOW), // expired at NOW
    token('c1', 'cat', NOW + 1, NOW + 100),
    token('a3', 'ann', NOW + 3, NOW + 100),
    token('a2', 'ann', NOW + 3, NOW + 100), // same iat as a3: by id
  ]);
  await store.addUses([{ record: token('b1', 'bob', NOW + 1, NOW + 100), count: 9 }]);
  const all = store.stats({ limit: 100, nowSeconds: NOW });
  t.equal(all.next, null);
  t.same(
    all.users.map((u) => [u.user, u.tokens.map((x) => x.tokenId)]),
    [
      ['ann', ['a1', 'a2', 'a3']],
      ['bob', ['b1', 'b2']],
      ['cat', ['c1']],
    ],
  );
  t.same(all.users[1]!.tokens[0], { ...token('b1', 'bob', NOW + 1, NOW + 100), count: 9 });
  t.equal(all.users[1]!.tokens[1]!.count, 0);

  const bob = store.stats({ user: 'bob', limit: 100, nowSeconds: NOW });
  t.same(
    bob.users.map((u) => u.user),
    ['bob'],
  );
  t.same(
    store.stats({ user: 'bo', limit: 100, nowSeconds: NOW }).users,
    [],
    'a prefix is not a user',
  );
  t.same(store.stats({ user: 'nobody', limit: 5, nowSeconds: NOW }), { users: [], next: null });

  const paged: string[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = store.stats({ limit: 2, nowSeconds: NOW, ...(after ? { after } : {}) });
    t.ok(page.users.flatMap((u) => u.tokens).length <= 2);
    paged.push(...page.users.flatMap((u) => u.tokens.map((x) => `${u.user}/${x.tokenId}`)));
    after = page.next ?? undefined;
    pages++;
  } while (after);
  t.same(paged, ['ann/a1', 'ann/a2', 'ann/a3', 'bob/b1', 'bob/b2', 'cat/c1']);
  t.equal(pages, 3);

  const annFirst = store.stats({ user: 'ann', limit: 2, nowSeconds: NOW });
  t.ok(annFirst.next);
  const annRest = store.stats({ user: 'ann', limit: 2, nowSeconds: NOW, after: annFirst.next! });
  t.same(annRest, {
    users: [{ user: 'ann', tokens: [{ ...token('a3', 'ann', NOW + 3, NOW + 100), count: 0 }] }],
    next: null,
  });
  t.throws(() => store.stats({ user: 'bob', limit: 2, nowSeconds: NOW, after: annFirst.next! }), {
    code: 'STORE_BAD_CURSOR',
  });
});

t.test('cursors this store did not issue are refused', async (t) => {
  const store = writer(t);
  const stats = store.stats({ limit: 1, nowSeconds: NOW });
  t.equal(stats.next, null);
  await store.revokeToken({ tokenId: 'a', until: NOW + 9, revokedAt: NOW });
  await store.revokeToken({ tokenId: 'b', until: NOW + 9, revokedAt: NOW });
  const revocationCursor = store.listRevocations({ limit: 1, nowSeconds: NOW }).next!;
  const bad = [
    'not base64!',
    '',
    Buffer.from('{"a":1}').toString('base64url'),
    Buffer.from('["x","a"]').toString('base64url'),
    Buffer.from('["t"]').toString('base64url'),
    Buffer.from('["t",1]').toString('base64url'),
  ];
  for (const after of bad) {
    t.throws(() => store.listRevocations({ limit: 1, nowSeconds: NOW, after }), {
      code: 'STORE_BAD_CURSOR',
    });
  }
  t.throws(() => store.stats({ limit: 1, nowSeconds: NOW, after: revocationCursor }), {
    code: 'STORE_BAD_CURSOR',
  });
});

t.test('latestExpiryOf is the max exp of the user', async (t) => {
  const store = writer(t);
  t.equal(store.latestExpiryOf('ann'), undefined);
  await store.recordTokens([
    token('a', 'ann', NOW + 5, NOW + 10),
    token('b', 'ann', NOW + 1, NOW + 900),
    token('c', 'ann', NOW + 9, NOW + 20),
    token('d', 'anne', NOW, NOW + 5000),
    token('e', 'an', NOW, NOW + 6000),
  ]);
  t.equal(store.latestExpiryOf('ann'), NOW + 900);
});

t.test('malformed arguments are refused before any write', async (t) => {
  const store = writer(t);
  await t.rejects(store.recordTokens([token('', 'ann', NOW, NOW)]), TypeError);
  await t.rejects(store.recordTokens([token('a\0b', 'ann', NOW, NOW)]), TypeError);
  await t.rejects(store.recordTokens([token('a', 'x'.repeat(257), NOW, NOW)]), TypeError);
  await t.rejects(store.recordTokens([token('a', 'ann', Number.NaN, NOW)]), TypeError);
  await t.rejects(
    store.recordTokens([token('ok', 'ann', NOW, NOW + 1), token('a', 'ann', NOW, Infinity)]),
    TypeError,
  );
  await t.rejects(store.addUses([{ record: token('a', 'ann', NOW, NOW), count: -1 }]), RangeError);
  await t.rejects(store.addUses([{ record: token('a', 'ann', NOW, NOW), count: 1.5 }]), RangeError);
  await t.rejects(store.purge(Number.NaN), TypeError);
  await t.rejects(store.liftToken(''), TypeError);
  await t.rejects(store.liftUser('a\0'), TypeError);
  t.throws(() => store.stats({ limit: 0, nowSeconds: NOW }), RangeError);
  t.throws(() => store.listRevocations({ limit: 1.5, nowSeconds: NOW }), RangeError);
  t.same(
    store.counts(),
    { tokens: 0, revokedTokens: 0, revokedUsers: 0, bans: 0 },
    'nothing written',
  );
});

t.test('a closed store refuses reads and writes', async (t) => {
  const store = openStore(t.testdir(), { readOnly: false });
  await store.close();
  await store.close();
  t.throws(() => store.getToken('a'), { code: 'STORE_CLOSED' });
  t.throws(() => store.counts(), { code: 'STORE_CLOSED' });
  t.throws(() => store.refresh(), { code: 'STORE_CLOSED' });
  await t.rejects(store.recordTokens([token('a', 'ann', NOW, NOW)]), { code: 'STORE_CLOSED' });
});

// The supervisor's side of the store: a change is committed before any edge hears of it, a
// lift that finds nothing tells no edge, a failed write is an error and tells no edge.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { EdgeAsk, EdgeEvent, RevocationChange } from '../shared/ipc.js';
import { createLogger } from '../shared/log.js';
import { openStore } from '../shared/store.js';
import {
  type KeeperFleet,
  StoreKeeper,
  TOKEN_BATCH_MAX,
  TOKEN_BATCH_MS,
} from '../supervisor/store-keeper.js';

async function setup(t: Test, now: () => number = () => Math.floor(Date.now() / 1000)) {
  const dir = await mkdtemp(join(tmpdir(), 'proxyauth-keeper-'));
  const store = openStore(dir, { readOnly: false });
  const sent: RevocationChange[][] = [];
  const handlers = new Map<string, (event: EdgeEvent) => void>();
  let stored = 0;
  const asks = new Map<string, (ask: EdgeAsk) => unknown>();
  const fleet: KeeperFleet = {
    on: ((type: string, handler: (event: EdgeEvent) => void) => {
      handlers.set(type, handler);
      return () => {};
    }) as KeeperFleet['on'],
    answer: ((type: string, handler: (ask: EdgeAsk) => unknown) => {
      asks.set(type, handler);
    }) as KeeperFleet['answer'],
    broadcast: (async (body: { changes: RevocationChange[] }) => {
      // What the edges are told must already be in the store.
      store.refresh();
      stored = store.counts().revokedTokens + store.counts().revokedUsers;
      sent.push(body.changes);
      return [];
    }) as unknown as KeeperFleet['broadcast'],
  };
  // Every recordTokens call, with the number of records it wrote.
  const commits: number[] = [];
  const recordTokens = store.recordTokens.bind(store);
  store.recordTokens = (records) => {
    commits.push(records.length);
    return recordTokens(records);
  };
  const lines: string[] = [];
  const log = createLogger('test');
  const error = log.error.bind(log);
  log.error = (msg, fields) => {
    lines.push(msg);
    error(msg, fields);
  };
  const keeper = new StoreKeeper(store, fleet, log, now);
  keeper.start();
  t.teardown(async () => {
    await keeper.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  return { store, keeper, sent, handlers, asks, commits, lines, stored: () => stored };
}

const ID = 'BBBBBBBBBBBBBBBBBBBBBB';

t.test('commit first, then the edges; a lift of nothing tells nobody', async (t) => {
  const { keeper, sent, stored } = await setup(t);
  const revoke = { op: 'revoke-token', tokenId: ID, until: 2e9, revokedAt: 1 } as const;
  t.equal((await keeper.change(revoke)).changed, true);
  t.equal(stored(), 1, 'in the store when the edges were told');
  t.same(sent, [[revoke]]);
  t.equal((await keeper.change({ op: 'lift-token', tokenId: ID })).changed, true);
  t.equal(
    (await keeper.change({ op: 'lift-token', tokenId: ID })).changed,
    false,
    'nothing left to lift',
  );
  t.equal((await keeper.change({ op: 'lift-user', user: 'nobody' })).changed, false);
  t.equal(sent.length, 2, 'only real changes were sent');
});

t.test(
  'csrf-spend asks: fresh once per nonce, recorded in the store, refused when it fails',
  async (t) => {
    const { store, asks } = await setup(t);
    const spend = asks.get('csrf-spend');
    t.ok(spend, 'the keeper answers csrf-spend');
    const ask = { type: 'csrf-spend', id: 1, nonce: 'AAAAAAAAAAAAAAAA', exp: 2e9 } as const;
    t.same(await spend!(ask), { fresh: true });
    t.same(await spend!({ ...ask, id: 2 }), { fresh: false });
    t.equal(await store.spendCsrfNonce(ask.nonce, ask.exp), false, 'in the store');
    await store.close();
    await t.rejects(Promise.resolve(spend!({ ...ask, id: 3, nonce: 'BBBBBBBBBBBBBBBB' })), {
      code: 'STORE_CLOSED',
    });
  },
);

t.test('a failed write rejects and tells no edge', async (t) => {
  const { store, keeper, sent } = await setup(t);
  await store.close();
  await t.rejects(
    keeper.change({ op: 'revoke-user', user: 'u', notBefore: 1, until: 2e9, revokedAt: 1 }),
  );
  t.same(sent, []);
});

t.test('issued tokens and use counts reported by edges reach the store', async (t) => {
  const { store, handlers } = await setup(t);
  const token = { tokenId: ID, user: 'u', iat: 100, exp: 2e9 };
  handlers.get('token-issued')?.({ type: 'token-issued', token });
  handlers.get('token-uses')?.({ type: 'token-uses', uses: [{ ...token, count: 2 }] });
  handlers.get('token-uses')?.({ type: 'token-uses', uses: [{ ...token, count: 3 }] });
  let count = 0;
  for (let i = 0; i < 50 && count !== 5; i++) {
    await new Promise((r) => setTimeout(r, 20));
    store.refresh();
    count = store.stats({ limit: 10, nowSeconds: 200 }).users[0]?.tokens[0]?.count ?? 0;
  }
  t.equal(count, 5);
  t.same(store.getToken(ID), token);
});

t.test('what is stored: never shorter, not-before forward, ended lifts find nothing', async (t) => {
  let clock = 1000;
  const { keeper, sent } = await setup(t, () => clock);
  const long = { op: 'revoke-token', tokenId: ID, until: 5000, revokedAt: 1000 } as const;
  await keeper.change(long);
  const short = await keeper.change({ ...long, until: 1500 });
  t.same(short.change, long, 'the longer until stays, and is what the edges get');
  t.same(sent.at(-1), [long]);
  const user = {
    op: 'revoke-user',
    user: 'u',
    notBefore: 1000,
    until: 2000,
    revokedAt: 1000,
  } as const;
  t.equal((await keeper.change(user)).change.op, 'revoke-user');
  const again = await keeper.change(user);
  t.match(again.change, { notBefore: 1001, until: 2000 }, 'same second: not before moves past');
  // Concurrent asks are carried out one at a time, each against the stored state.
  const [a, b] = await Promise.all([keeper.change(user), keeper.change(user)]);
  t.match(a.change, { notBefore: 1002 });
  t.match(b.change, { notBefore: 1003 });
  clock = 2500;
  const late = await keeper.change({ ...user, notBefore: 2500, until: 3000 });
  t.match(late.change, { notBefore: 2500 }, 'an ended revocation does not push it');
  const ending = {
    op: 'revoke-token',
    tokenId: 'CCCCCCCCCCCCCCCCCCCCCC',
    until: 2600,
    revokedAt: 2500,
  } as const;
  await keeper.change(ending);
  clock = 2600;
  const count = sent.length;
  t.equal((await keeper.change({ op: 'lift-token', tokenId: ending.tokenId })).changed, false);
  t.equal(sent.length, count, 'the edges are not told');
});

/** A valid record of token number `i`. */
function record(i: number) {
  return { tokenId: `A${String(i).padStart(21, 'B')}`, user: 'u', iat: 100, exp: 2e9 };
}

t.test('issued tokens are written in batches: one commit per window', async (t) => {
  const { store, handlers, commits } = await setup(t);
  const issued = handlers.get('token-issued')!;
  const started = performance.now();
  for (let i = 0; i < 5; i++) issued({ type: 'token-issued', token: record(i) });
  t.same(commits, [], 'nothing written at once');
  while (commits.length === 0) await new Promise((r) => setTimeout(r, 5));
  t.ok(performance.now() - started >= TOKEN_BATCH_MS - 2, 'written after the window');
  t.same(commits, [5], 'five records, one commit');
  await new Promise((r) => setTimeout(r, 20));
  store.refresh();
  for (let i = 0; i < 5; i++) t.same(store.getToken(record(i).tokenId), record(i));
  issued({ type: 'token-issued', token: record(9) });
  await new Promise((r) => setTimeout(r, TOKEN_BATCH_MS * 3));
  t.same(commits, [5, 1], 'a later token starts a new window');
});

t.test('a full batch is written at once', async (t) => {
  const { handlers, commits } = await setup(t);
  const issued = handlers.get('token-issued')!;
  for (let i = 0; i < TOKEN_BATCH_MAX + 3; i++) issued({ type: 'token-issued', token: record(i) });
  t.same(commits, [TOKEN_BATCH_MAX], 'the bound, without waiting');
  await new Promise((r) => setTimeout(r, TOKEN_BATCH_MS * 3));
  t.same(commits, [TOKEN_BATCH_MAX, 3], 'the rest after the window');
});

t.test('close() writes the tokens still waiting for their window', async (t) => {
  const { store, keeper, handlers, commits } = await setup(t);
  const path = store.path;
  handlers.get('token-issued')!({ type: 'token-issued', token: record(1) });
  await keeper.close();
  t.same(commits, [1]);
  const dir = path.slice(0, path.lastIndexOf('/'));
  const again = openStore(dir, { readOnly: true });
  t.same(again.getToken(record(1).tokenId), record(1), 'durable after close');
  await again.close();
});

t.test('an invalid record is refused alone: the others of its batch are written', async (t) => {
  const { store, handlers, commits, lines } = await setup(t);
  const issued = handlers.get('token-issued')!;
  issued({ type: 'token-issued', token: record(1) });
  issued({ type: 'token-issued', token: { ...record(2), tokenId: '' } });
  issued({ type: 'token-issued', token: { ...record(3), exp: Number.NaN } });
  issued({ type: 'token-issued', token: record(4) });
  while (commits.length === 0) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  t.same(commits, [2]);
  store.refresh();
  t.same(store.getToken(record(1).tokenId), record(1));
  t.same(store.getToken(record(4).tokenId), record(4));
  t.equal(lines.filter((l) => l.includes('issued token record is invalid')).length, 2, 'logged');
});

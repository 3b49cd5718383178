import t from 'tap';
import { RevocationSet } from '../worker/revocation-set.js';

const token = (tokenId: string, user = 'u', iat = 100) => ({ tokenId, user, iat });

t.test('a token revocation holds while now < until, then lets the token pass', async (t) => {
  const set = new RevocationSet();
  t.ok(set.apply({ op: 'revoke-token', tokenId: 'a', until: 200, revokedAt: 100 }));
  t.ok(set.revokes(token('a'), 150));
  t.ok(set.revokes(token('a'), 199));
  t.notOk(set.revokes(token('a'), 200), 'refused before until, never after');
  t.notOk(set.revokes(token('b'), 150), 'another token');
  t.ok(set.revokes(token('a'), Number.NaN), 'a NaN clock fails closed');
});

t.test('a user revocation refuses tokens issued at or before notBefore', async (t) => {
  const set = new RevocationSet();
  set.apply({ op: 'revoke-user', user: 'u', notBefore: 100, until: 1000, revokedAt: 100 });
  t.ok(set.revokes(token('a', 'u', 99), 500));
  t.ok(set.revokes(token('a', 'u', 100), 500), 'the same second');
  t.notOk(set.revokes(token('a', 'u', 101), 500), 'issued after');
  t.notOk(set.revokes(token('a', 'v', 50), 500), 'another user');
  t.equal(set.notBeforeOf('u'), 100);
  t.equal(set.notBeforeOf('v'), undefined);
});

t.test('the epoch moves on every change and only then', async (t) => {
  const set = new RevocationSet();
  const start = set.epoch;
  t.not(start, 0, 'never 0: 0 marks a token never checked');
  set.apply({ op: 'revoke-token', tokenId: 'a', until: 200, revokedAt: 1 });
  const one = set.epoch;
  t.ok(one > start);
  t.notOk(set.apply({ op: 'revoke-token', tokenId: 'a', until: 200, revokedAt: 2 }), 'same again');
  t.equal(set.epoch, one, 'no change, same epoch');
  t.notOk(set.apply({ op: 'lift-token', tokenId: 'zz' }), 'lifting nothing');
  t.equal(set.epoch, one);
  t.ok(set.apply({ op: 'lift-token', tokenId: 'a' }));
  t.ok(set.epoch > one);
  t.notOk(set.revokes(token('a'), 150), 'lifted');
  set.apply({ op: 'revoke-user', user: 'u', notBefore: 1, until: 9, revokedAt: 1 });
  t.ok(set.apply({ op: 'lift-user', user: 'u' }));
  t.equal(set.size, 0);
});

t.test('load adds what the store lists; purge drops what ended', async (t) => {
  const set = new RevocationSet();
  set.apply({ op: 'revoke-token', tokenId: 'early', until: 500, revokedAt: 1 });
  const before = set.epoch;
  set.load({
    tokens: [
      { tokenId: 'a', until: 150 },
      { tokenId: 'b', until: 300 },
    ],
    users: [{ user: 'u', notBefore: 100, until: 160 }],
  });
  t.ok(set.epoch > before, 'a load invalidates cached checks');
  t.equal(set.size, 4, 'a change received before the load is kept');
  t.equal(set.purge(160), 2, 'a (150) and u (160) ended');
  t.notOk(set.revokes(token('a'), 100), 'purged entries refuse nothing');
  t.ok(set.revokes(token('b'), 200));
  t.ok(set.revokes(token('early'), 200));
});

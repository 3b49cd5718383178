import t from 'tap';
import {
  loginIssuedAt,
  MAX_NOT_BEFORE_AHEAD_SECONDS,
  RevocationSet,
} from '../worker/revocation-set.js';

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

t.test('a login is dated after a user revocation, never far in the future', async (t) => {
  t.equal(loginIssuedAt(undefined, 1000), 1000, 'no revocation');
  t.equal(loginIssuedAt(900, 1000), 1000, 'a revocation before now');
  t.equal(loginIssuedAt(1000, 1000), 1001, 'the same second: the next one');
  t.equal(loginIssuedAt(1003, 1000), 1004, 'another node a few seconds ahead');
  t.equal(loginIssuedAt(1000 + MAX_NOT_BEFORE_AHEAD_SECONDS, 1000), 1061);
  // A "not before" in year 5138 (a record forged on the Redis bus, or a clock far ahead) made
  // every login mint a token expiring in 5138, which no later user revocation could refuse.
  t.equal(loginIssuedAt(99_999_999_999, 1000), 1000, 'far ahead: dated now (and refused)');
  const set = new RevocationSet();
  set.apply({
    op: 'revoke-user',
    user: 'u',
    notBefore: 99_999_999_999,
    until: 99_999_999_999,
    revokedAt: 1,
  });
  const iat = loginIssuedAt(set.notBeforeOf('u'), 1000);
  t.ok(set.revokes(token('a', 'u', iat), 1000), 'the login stays refused while it holds');
});

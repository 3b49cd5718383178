import t from 'tap';
import { TokenCodec } from '../shared/token-codec.js';
import { SessionCache } from '../worker/session-cache.js';

// The cache is keyed by a token's last characters (worker/session-cache.ts): every case below
// is about a token that shares them with another, or differs from a cached one anywhere else.

const SECRET = 'session cache test secret: 0123456789abcdef0123456789abcdef0123';
const NOW = 1_767_225_600;
const codec = new TokenCodec(SECRET);

/** `token` with the character at `at` replaced by another base64url character. */
function changedAt(token: string, at: number): string {
  const c = token.charAt(at);
  return token.slice(0, at) + (c === 'A' ? 'B' : 'A') + token.slice(at + 1);
}

/** A string that ends like `token` but is not a token of ours (its start is another token's). */
function sameEnding(token: string, other: string): string {
  return other.slice(0, other.length - 16) + token.slice(-16);
}

t.test('a valid token is verified once, then served from the cache', async (t) => {
  const cache = new SessionCache(10);
  const { token, claims } = codec.issue('alice', 600, NOW);
  const first = cache.authenticate(codec, token, NOW);
  t.equal(first?.user, 'alice');
  t.equal(first?.tokenId, codec.tokenId(claims));
  t.same(cache.lookups, { hits: 0, misses: 1 });
  const again = cache.authenticate(codec, `${token}`, NOW + 1);
  t.equal(again, first, 'the same cached session');
  t.same(cache.lookups, { hits: 1, misses: 1 });
  t.notOk(Object.values(first!).includes(token), 'the session does not carry the token');
});

t.test('a token that ends like a cached one is refused and leaves it in place', async (t) => {
  const cache = new SessionCache(10);
  const alice = codec.issue('alice', 600, NOW).token;
  const bob = codec.issue('bob', 600, NOW).token;
  const session = cache.authenticate(codec, alice, NOW);
  t.ok(session);
  const forged = sameEnding(alice, bob);
  t.not(forged, alice);
  t.equal(forged.slice(-16), alice.slice(-16));
  t.equal(cache.authenticate(codec, forged, NOW), undefined, 'the forged token is refused');
  t.same(cache.lookups, { hits: 0, misses: 2 }, 'it was verified, not served from the cache');
  t.equal(cache.authenticate(codec, alice, NOW), session, "alice's entry is still there");
  t.same(cache.lookups, { hits: 1, misses: 2 });
});

t.test('a cached token changed at any position is refused', async (t) => {
  const cache = new SessionCache(10);
  const token = codec.issue('carol', 600, NOW).token;
  t.ok(cache.authenticate(codec, token, NOW));
  for (const at of [0, 1, Math.floor(token.length / 2), token.length - 17, token.length - 16]) {
    t.equal(cache.authenticate(codec, changedAt(token, at), NOW), undefined, `position ${at}`);
  }
  t.equal(cache.authenticate(codec, `${token}A`, NOW), undefined, 'one character more');
  t.equal(cache.authenticate(codec, token.slice(1), NOW), undefined, 'one character less');
  t.equal(cache.authenticate(codec, token.slice(-16), NOW), undefined, 'its last characters alone');
  t.equal(cache.authenticate(codec, token, NOW)?.user, 'carol', 'the token itself still opens');
});

t.test('a cached token past its expiry is refused and forgotten', async (t) => {
  const cache = new SessionCache(10);
  const token = codec.issue('dave', 60, NOW).token;
  t.ok(cache.authenticate(codec, token, NOW));
  t.equal(cache.authenticate(codec, token, NOW + 60), undefined, 'at exp');
  t.equal(cache.authenticate(codec, token, Number.NaN), undefined, 'a NaN clock fails closed');
  const misses = cache.lookups.misses;
  t.equal(cache.authenticate(codec, token, NOW + 1)?.user, 'dave', 'valid at an earlier clock');
  t.equal(cache.lookups.misses, misses + 1, 'verified again: the expired entry was dropped');
});

t.test('an entry verified under another codec is verified again', async (t) => {
  const cache = new SessionCache(10);
  const token = codec.issue('erin', 600, NOW).token;
  t.ok(cache.authenticate(codec, token, NOW));
  const other = new TokenCodec('another secret entirely, 0123456789abcdef0123456789abcdef');
  t.equal(cache.authenticate(other, token, NOW), undefined, 'refused under a ring without its key');
  const same = new TokenCodec(SECRET);
  t.equal(cache.authenticate(same, token, NOW)?.user, 'erin', 'accepted under a ring with it');
  t.same(cache.lookups, { hits: 0, misses: 3 });
});

t.test('the cache holds at most its bound', async (t) => {
  const cache = new SessionCache(4);
  const tokens = Array.from({ length: 10 }, (_, i) => codec.issue(`u${i}`, 600, NOW).token);
  for (const token of tokens) t.ok(cache.authenticate(codec, token, NOW));
  const before = cache.lookups.misses;
  for (const token of tokens.slice(-4)) t.ok(cache.authenticate(codec, token, NOW));
  t.equal(cache.lookups.misses, before, 'the last four are cached');
  t.ok(cache.authenticate(codec, tokens[0]!, NOW));
  t.equal(cache.lookups.misses, before + 1, 'the first was evicted');
});

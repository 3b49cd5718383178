// The token codec over a key ring (docs/token-format.md, Rotation): issue under the active key,
// verify under whichever key the token names, token ids keyed by the issuing key.
import t from 'tap';
import { formatKeyId, TokenCodec } from '../shared/token-codec.js';

const NOW = 1_767_225_600;
const A = 'ring key A: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
const B = 'ring key B: fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876';
const C = 'ring key C: 00112233445566778899aabbccddeeff00112233445566778899aabbcc';
// Two materials whose key ids collide (41bc6811), found by a birthday search over this prefix.
const COLLIDING = ['key ring collision test 14478', 'key ring collision test 37071'] as const;

t.test('new tokens carry the active key id; every key of the ring verifies its own', async (t) => {
  const a = new TokenCodec(A);
  const b = new TokenCodec(B);
  const ring = new TokenCodec({ active: B, verifyOnly: [A, C] });
  t.equal(ring.keyId, b.keyId, 'the active key is B');
  t.same(ring.keyIds, [b.keyId, a.keyId, new TokenCodec(C).keyId]);
  const issued = ring.issue('alice', 600, NOW);
  t.equal(issued.claims.keyId, b.keyId);
  t.same(b.verify(issued.token, NOW), { ok: true, claims: issued.claims }, 'B alone verifies it');
  t.same(a.verify(issued.token, NOW), { ok: false, reason: 'unknown_key' }, 'A alone does not');
  const old = a.issue('bob', 600, NOW);
  const verified = ring.verify(old.token, NOW + 1);
  t.same(verified, { ok: true, claims: old.claims }, "A's token verifies under the ring");
  t.equal(verified.ok && verified.claims.keyId, a.keyId, 'claims name the issuing key');
  t.same(ring.verify(old.token, old.claims.exp), { ok: false, reason: 'expired' });
});

t.test('a token id is computed under the issuing key, whatever the active key', async (t) => {
  const a = new TokenCodec(A);
  const { token, claims } = a.issue('carol', 600, NOW);
  const id = a.tokenId(claims);
  for (const ring of [
    { active: B, verifyOnly: [A] },
    { active: C, verifyOnly: [B, A] },
    { active: A, verifyOnly: [B] },
  ]) {
    const codec = new TokenCodec(ring);
    const verified = codec.verify(token, NOW);
    t.ok(verified.ok);
    if (verified.ok)
      t.equal(codec.tokenId(verified.claims), id, `active ${ring.active.slice(0, 10)}`);
  }
  const rotated = new TokenCodec({ active: B, verifyOnly: [A] });
  const fresh = rotated.issue('carol', 600, NOW);
  t.equal(rotated.tokenId(fresh.claims), new TokenCodec(B).tokenId(fresh.claims), 'new: under B');
});

t.test('a key removed from the ring makes its tokens unknown_key', async (t) => {
  const before = new TokenCodec({ active: B, verifyOnly: [A] });
  const { token, claims } = new TokenCodec(A).issue('dave', 600, NOW);
  t.ok(before.verify(token, NOW).ok);
  const after = new TokenCodec({ active: B, verifyOnly: [C] });
  t.same(after.verify(token, NOW), { ok: false, reason: 'unknown_key' });
  t.throws(() => after.tokenId(claims), { name: 'TokenCodecError', code: 'TOKEN_KEY_UNKNOWN' });
});

t.test('repeated material counts once', async (t) => {
  const a = new TokenCodec(A);
  const ring = new TokenCodec({ active: A, verifyOnly: [B, A, B, C, C] });
  t.same(ring.keyIds, [a.keyId, new TokenCodec(B).keyId, new TokenCodec(C).keyId]);
  const { token, claims } = ring.issue('erin', 60, NOW);
  t.same(a.verify(token, NOW), { ok: true, claims });
});

t.test('two different keys with one key id cannot share a ring', async (t) => {
  const [first, second] = COLLIDING;
  const id = new TokenCodec(first).keyId;
  t.equal(new TokenCodec(second).keyId, id, 'test setup: the two key ids collide');
  t.equal(formatKeyId(id), '41bc6811');
  for (const [ring, entries] of [
    [{ active: first, verifyOnly: [second] }, 'active and verifyOnly[0]'],
    [{ active: A, verifyOnly: [B, first, second] }, 'verifyOnly[1] and verifyOnly[2]'],
  ] as const) {
    const error = t.throws(() => new TokenCodec(ring), {
      name: 'TokenCodecError',
      code: 'TOKEN_KEY_ID_COLLISION',
    }) as Error;
    t.match(error.message, entries, 'names the entries');
    t.match(error.message, '41bc6811', 'names the key id');
    t.notOk(error.message.includes('collision test'), 'never the material');
  }
});

t.test('an empty entry is refused, naming where it is', async (t) => {
  t.throws(() => new TokenCodec({ active: '', verifyOnly: [] }), { code: 'TOKEN_SECRET_EMPTY' });
  t.throws(() => new TokenCodec({ active: A, verifyOnly: [B, ''] }), {
    code: 'TOKEN_SECRET_EMPTY',
    message: /verifyOnly\[1\]/,
  });
});

t.test('holds compares the material, not the order or repeats', async (t) => {
  const codec = new TokenCodec({ active: A, verifyOnly: [B, C] });
  t.ok(codec.holds({ active: A, verifyOnly: [C, B] }));
  t.ok(codec.holds({ active: A, verifyOnly: [B, C, B, A] }));
  t.notOk(codec.holds({ active: B, verifyOnly: [A, C] }), 'another active key');
  t.notOk(codec.holds({ active: A, verifyOnly: [B] }), 'a key less');
  t.notOk(codec.holds({ active: A, verifyOnly: [B, C, 'D'] }), 'a key more');
  t.ok(new TokenCodec(A).holds({ active: A, verifyOnly: [] }), 'a secret is a ring of one');
});

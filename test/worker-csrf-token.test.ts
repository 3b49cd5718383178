import t from 'tap';
import { TokenCodec } from '../shared/token-codec.js';
import { CSRF_TOKEN_LENGTH, CsrfTokens, csrfTokensFor } from '../worker/csrf-token.js';

const SECRET = 'k'.repeat(64);
const tokens = CsrfTokens.ofSecret(SECRET);
const NOW = 1_800_000_000;

t.test('a token verifies for its session until it expires', async (t) => {
  const token = tokens.mint('session-a', NOW, 600);
  t.equal(token.length, CSRF_TOKEN_LENGTH);
  t.match(token, /^[A-Za-z0-9_-]+$/);
  const ok = tokens.verify(token, 'session-a', NOW + 599);
  t.ok(ok.ok);
  if (ok.ok) t.equal(ok.exp, NOW + 600);
  t.same(tokens.verify(token, 'session-a', NOW + 600), { ok: false, reason: 'expired' });
  t.not(tokens.mint('session-a', NOW, 600), token, 'every token is new');
});

t.test('nonces never repeat, across blocks of pre-fetched random bytes', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const bytes = Buffer.from(tokens.mint('session-a', NOW, 600), 'base64url');
    seen.add(bytes.subarray(5, 17).toString('hex'));
  }
  t.equal(seen.size, 2000, 'every nonce is new (2000 tokens span several blocks)');
});

t.test('bound to the session and the secret, and tamper-evident', async (t) => {
  const token = tokens.mint('session-a', NOW, 600);
  t.same(tokens.verify(token, 'session-b', NOW), { ok: false, reason: 'forged' });
  t.same(CsrfTokens.ofSecret('j'.repeat(64)).verify(token, 'session-a', NOW), {
    ok: false,
    reason: 'forged',
  });
  const bytes = Buffer.from(token, 'base64url');
  for (const at of [1, 4, 8, 20, 32]) {
    const copy = Buffer.from(bytes);
    copy[at]! ^= 1;
    t.same(
      tokens.verify(copy.toString('base64url'), 'session-a', NOW),
      {
        ok: false,
        reason: 'forged',
      },
      `byte ${at} flipped`,
    );
  }
  // An expiry pushed later is caught by the MAC, not trusted.
  const later = Buffer.from(bytes);
  later.writeUInt32BE(NOW + 999_999, 1);
  t.equal(tokens.verify(later.toString('base64url'), 'session-a', NOW + 700).ok, false);
});

t.test('malformed inputs are refused before any MAC work', async (t) => {
  for (const bad of [
    '',
    'x',
    'a'.repeat(43),
    'a'.repeat(45),
    `${'a'.repeat(43)}=`,
    `${'a'.repeat(43)}+`,
  ]) {
    t.same(tokens.verify(bad, 's', NOW), { ok: false, reason: 'malformed' }, JSON.stringify(bad));
  }
  const v2 = Buffer.from(tokens.mint('s', NOW, 60), 'base64url');
  v2[0] = 2;
  t.same(tokens.verify(v2.toString('base64url'), 's', NOW), { ok: false, reason: 'malformed' });
});

t.test(
  'csrfTokensFor: keyed by the ring key that issued the session, once per codec',
  async (t) => {
    const a = new TokenCodec(SECRET);
    t.equal(csrfTokensFor(a, a.keyId), csrfTokensFor(a, a.keyId), 'derived once');
    const token = csrfTokensFor(a, a.keyId)!.mint('s', NOW, 60);
    t.ok(tokens.verify(token, 's', NOW).ok, "a ring of config.json's secret: the secret's key");
    const other = 'another key of the ring'.padEnd(64, '-');
    const rotated = new TokenCodec({ active: other, verifyOnly: [SECRET] });
    t.ok(
      csrfTokensFor(rotated, a.keyId)!.verify(token, 's', NOW).ok,
      'after a rotation, sessions of the old key keep their CSRF tokens',
    );
    const b = new TokenCodec(other);
    const underB = csrfTokensFor(b, b.keyId)!.mint('s', NOW, 60);
    t.same(
      csrfTokensFor(rotated, b.keyId)!.verify(underB, 's', NOW),
      {
        ok: true,
        nonce: Buffer.from(underB, 'base64url').subarray(5, 17).toString('base64url'),
        exp: NOW + 60,
      },
      'another node holding the same key accepts them',
    );
    t.same(tokens.verify(underB, 's', NOW), { ok: false, reason: 'forged' }, 'no other key does');
    t.equal(csrfTokensFor(b, a.keyId), undefined, 'a key the ring does not hold: none');
  },
);

import t from 'tap';
import { CSRF_TOKEN_LENGTH, CsrfTokens, csrfTokensFor } from '../worker/csrf-token.js';

const SECRET = 'k'.repeat(64);
const tokens = new CsrfTokens(SECRET);
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
  t.same(new CsrfTokens('j'.repeat(64)).verify(token, 'session-a', NOW), {
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

t.test('csrfTokensFor derives once per secret', async (t) => {
  t.equal(csrfTokensFor(SECRET), csrfTokensFor(SECRET));
  const token = csrfTokensFor(SECRET).mint('s', NOW, 60);
  t.ok(tokens.verify(token, 's', NOW).ok, 'same key as a fresh instance');
});

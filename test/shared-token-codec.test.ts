import t from 'tap';
import { decodeBase64Url, encodeBase64Url } from '../shared/base64url.js';
import {
  MAX_TOKEN_LENGTH,
  MAX_USERNAME_BYTES,
  MIN_TOKEN_LENGTH,
  TokenCodec,
  TokenCodecError,
} from '../shared/token-codec.js';
import { cpuMs } from './helpers/cpu-time.js';

const SECRET = 'test secret: 0123456789abcdef0123456789abcdef0123456789abcdef0123';
const NOW = 1_767_225_600;
const codec = new TokenCodec(SECRET);

function freshToken(username = 'alice', ttl = 3600): string {
  return codec.issue(username, ttl, NOW).token;
}

function bytesOf(token: string): Uint8Array {
  const bytes = decodeBase64Url(token);
  if (bytes === null) throw new Error('test setup: token is not base64url');
  return bytes;
}

t.test('a token round-trips its claims', async (t) => {
  for (const username of ['alice', 'x', 'Zoë 管理者 🚀', 'u'.repeat(MAX_USERNAME_BYTES)]) {
    const { token, claims } = codec.issue(username, 600, NOW);
    t.match(token, /^[A-Za-z0-9_-]+$/, 'URL-safe alphabet, no padding');
    t.ok(token.length >= MIN_TOKEN_LENGTH && token.length <= MAX_TOKEN_LENGTH);
    t.same(claims, {
      sub: username,
      iat: NOW,
      exp: NOW + 600,
      jti: claims.jti,
      keyId: codec.keyId,
    });
    t.equal(claims.jti.length, 16);
    const result = codec.verify(token, NOW);
    t.same(result, { ok: true, claims });
  }
});

t.test('a second codec from the same secret verifies tokens of the first', async (t) => {
  const other = new TokenCodec(SECRET);
  t.equal(other.keyId, codec.keyId);
  const { token, claims } = codec.issue('bob', 60, NOW);
  t.same(other.verify(token, NOW + 1), { ok: true, claims });
});

t.test('every token is different, even for the same user and second', async (t) => {
  const tokens = new Set<string>();
  const ids = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const { token, claims } = codec.issue('alice', 3600, NOW);
    tokens.add(token);
    ids.add(codec.tokenId(claims));
  }
  t.equal(tokens.size, 200);
  t.equal(ids.size, 200, 'token ids differ between tokens');
});

t.test('flipping any single bit of the decoded token is rejected', async (t) => {
  const bytes = bytesOf(freshToken('Zoë'));
  let accepted = 0;
  const reasons = new Set<string>();
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const tampered = Uint8Array.from(bytes);
      tampered[i]! ^= 1 << bit;
      const result = codec.verify(encodeBase64Url(tampered), NOW);
      if (result.ok) accepted++;
      else reasons.add(result.reason);
    }
  }
  t.equal(accepted, 0);
  // Byte 0 is the version, bytes 1-4 the key id, everything else is covered by the MAC.
  t.same([...reasons].sort(), ['bad_mac', 'bad_version', 'unknown_key']);
});

t.test('a MAC failure is reported before anything else is looked at', async (t) => {
  const bytes = bytesOf(freshToken());
  // A token that expired long ago: tampering must still say bad_mac, not expired.
  const old = bytesOf(codec.issue('alice', 1, 1000).token);
  old[40]! ^= 1;
  t.same(codec.verify(encodeBase64Url(old), NOW), { ok: false, reason: 'bad_mac' });
  bytes[bytes.length - 1]! ^= 0x80;
  t.same(codec.verify(encodeBase64Url(bytes), NOW), { ok: false, reason: 'bad_mac' });
});

t.test('every truncation of a token is rejected', async (t) => {
  const token = freshToken('carol');
  for (let length = 0; length < token.length; length++) {
    const result = codec.verify(token.slice(0, length), NOW);
    t.equal(result.ok, false, `length ${length}`);
  }
  const bytes = bytesOf(token);
  for (let length = 0; length < bytes.length; length++) {
    const result = codec.verify(encodeBase64Url(bytes.subarray(0, length)), NOW);
    t.equal(result.ok, false, `${length} bytes`);
  }
});

t.test('appended bytes or characters are rejected', async (t) => {
  const token = freshToken();
  for (const suffix of ['A', 'AA', 'AAA', 'AAAA', '=', '==']) {
    t.equal(codec.verify(token + suffix, NOW).ok, false, suffix);
  }
  const bytes = bytesOf(token);
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  t.equal(codec.verify(encodeBase64Url(longer), NOW).ok, false);
});

t.test('a token is valid strictly before exp and expired from exp on', async (t) => {
  const { token, claims } = codec.issue('dave', 10, NOW);
  t.equal(codec.verify(token, NOW).ok, true, 'at iat');
  t.equal(codec.verify(token, claims.exp - 1).ok, true, 'one second before exp');
  t.same(codec.verify(token, claims.exp), { ok: false, reason: 'expired' }, 'at exp');
  t.same(codec.verify(token, claims.exp + 1), { ok: false, reason: 'expired' });
  t.same(codec.verify(token, Number.NaN), { ok: false, reason: 'expired' }, 'NaN clock');
});

t.test('a token issued under another secret is refused', async (t) => {
  const other = new TokenCodec('another secret, as long as you like: 0123456789abcdef');
  t.not(other.keyId, codec.keyId);
  const { token } = other.issue('alice', 3600, NOW);
  t.same(codec.verify(token, NOW), { ok: false, reason: 'unknown_key' });
  // Same key id, wrong keys: rewrite the key id so that only the MAC can catch it.
  const bytes = bytesOf(token);
  new DataView(bytes.buffer).setUint32(1, codec.keyId);
  t.same(codec.verify(encodeBase64Url(bytes), NOW), { ok: false, reason: 'bad_mac' });
});

t.test('an unknown version is refused as such', async (t) => {
  const bytes = bytesOf(freshToken());
  for (const version of [0, 2, 255]) {
    bytes[0] = version;
    t.same(codec.verify(encodeBase64Url(bytes), NOW), { ok: false, reason: 'bad_version' });
  }
});

t.test('garbage is malformed and never throws', async (t) => {
  const token = freshToken();
  const garbage: unknown[] = [
    '',
    'Bearer',
    'a'.repeat(MIN_TOKEN_LENGTH - 1),
    'A'.repeat(MIN_TOKEN_LENGTH),
    `${token.slice(0, 20)}+${token.slice(21)}`,
    `${token.slice(0, 20)}/${token.slice(21)}`,
    `${token.slice(0, 20)}=${token.slice(21)}`,
    `${token.slice(0, 20)} ${token.slice(21)}`,
    `${token.slice(0, 20)}é${token.slice(21)}`,
    `${token.slice(0, 20)}\u0000${token.slice(21)}`,
    `${token}=`,
    ` ${token}`,
    'x'.repeat(MAX_TOKEN_LENGTH + 1),
    undefined,
    null,
    42,
  ];
  for (const value of garbage) {
    const result = codec.verify(value as string, NOW);
    t.equal(result.ok, false, JSON.stringify(value)?.slice(0, 40));
  }
  t.same(codec.verify('A'.repeat(MIN_TOKEN_LENGTH), NOW), { ok: false, reason: 'bad_version' });
  t.same(codec.verify(`${token.slice(0, 20)}+${token.slice(21)}`, NOW), {
    ok: false,
    reason: 'malformed',
  });
});

t.test('a non-canonical spelling of a valid token is refused', async (t) => {
  const token = freshToken();
  // The last character carries unused low bits unless the byte count is a multiple of 3.
  const bytes = bytesOf(token);
  t.not(bytes.length % 3, 0, 'test setup: the token has a partial last group');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token.at(-1)!);
  const sibling = `${token.slice(0, -1)}${alphabet[last | 1]}`;
  t.not(sibling, token);
  t.same(Buffer.from(sibling, 'base64url'), Buffer.from(bytes), 'Node decodes both alike');
  t.same(codec.verify(sibling, NOW), { ok: false, reason: 'malformed' });
});

t.test('a 1 MB string is rejected quickly', async (t) => {
  const huge = 'A'.repeat(1 << 20);
  // 1000 calls: total CPU milliseconds = microseconds per call.
  const perCallUs = cpuMs(() => {
    for (let i = 0; i < 1000; i++) codec.verify(huge, NOW);
  });
  t.same(codec.verify(huge, NOW), { ok: false, reason: 'malformed' });
  t.ok(perCallUs < 50, `${perCallUs.toFixed(2)} µs per rejection`);
});

t.test('tokenId is stable for a token and hides the jti', async (t) => {
  const { token, claims } = codec.issue('erin', 3600, NOW);
  const id = codec.tokenId(claims);
  t.match(id, /^[A-Za-z0-9_-]{22}$/);
  const verified = codec.verify(token, NOW);
  t.ok(verified.ok);
  if (verified.ok) t.equal(codec.tokenId(verified.claims), id, 'same id after verify');
  t.equal(codec.tokenId(claims), id, 'same id when asked twice');
  t.not(id, encodeBase64Url(claims.jti), 'not the raw jti');
  t.notOk(token.includes(id), 'not a piece of the token');
  const other = new TokenCodec('a different secret for the same jti, 0123456789');
  t.not(other.tokenId({ ...claims, keyId: other.keyId }), id, 'keyed by the secret');
  t.throws(() => other.tokenId(claims), { code: 'TOKEN_KEY_UNKNOWN' }, 'not under another key');
});

t.test('claims returned by verify do not alias the codec scratch space', async (t) => {
  const a = codec.issue('first', 3600, NOW);
  const b = codec.issue('second', 3600, NOW);
  const first = codec.verify(a.token, NOW);
  const jti = first.ok ? Uint8Array.from(first.claims.jti) : new Uint8Array();
  codec.verify(b.token, NOW);
  t.ok(first.ok);
  if (first.ok) {
    t.same(first.claims.jti, jti);
    t.equal(first.claims.sub, 'first');
  }
});

t.test('issue refuses what it cannot encode', async (t) => {
  const bad: Array<[string, () => unknown, string]> = [
    ['empty username', () => codec.issue('', 60, NOW), 'TOKEN_USERNAME_INVALID'],
    [
      'username over 255 bytes',
      () => codec.issue('é'.repeat(128), 60, NOW),
      'TOKEN_USERNAME_INVALID',
    ],
    ['lone surrogate', () => codec.issue('a\uD800b', 60, NOW), 'TOKEN_USERNAME_INVALID'],
    ['zero ttl', () => codec.issue('a', 0, NOW), 'TOKEN_TIME_INVALID'],
    ['fractional ttl', () => codec.issue('a', 1.5, NOW), 'TOKEN_TIME_INVALID'],
    ['negative now', () => codec.issue('a', 60, -100), 'TOKEN_TIME_INVALID'],
    ['NaN now', () => codec.issue('a', 60, Number.NaN), 'TOKEN_TIME_INVALID'],
    [
      'exp past 2^53',
      () => codec.issue('a', 60, Number.MAX_SAFE_INTEGER - 10),
      'TOKEN_TIME_INVALID',
    ],
    [
      'short nonce',
      () => codec.issueDeterministic('a', 1, 2, new Uint8Array(16), new Uint8Array(12)),
      'TOKEN_RANDOM_INVALID',
    ],
    [
      'long jti',
      () => codec.issueDeterministic('a', 1, 2, new Uint8Array(17), new Uint8Array(24)),
      'TOKEN_RANDOM_INVALID',
    ],
    [
      'exp not after iat',
      () => codec.issueDeterministic('a', 5, 5, new Uint8Array(16), new Uint8Array(24)),
      'TOKEN_TIME_INVALID',
    ],
    ['empty secret', () => new TokenCodec(''), 'TOKEN_SECRET_EMPTY'],
  ];
  for (const [name, run, code] of bad) {
    t.throws(run, { name: 'TokenCodecError', code }, name);
  }
  t.ok(codec.issue('é'.repeat(127), 60, NOW).token, '254 bytes is fine');
  t.type(new TokenCodecError('TOKEN_TIME_INVALID', 'x'), Error);
});

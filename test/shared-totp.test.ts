// TOTP codes (RFC 6238 vectors), the ±1 step window, constant-time comparison inputs, URIs and
// base32; the sealing of secrets at rest (XChaCha20-Poly1305, AAD bound to user and parameters).
import { Secret, TOTP, URI } from 'otpauth';
import t from 'tap';
import {
  base32Of,
  base32Problem,
  matchingSteps,
  NEW_SECRET,
  newTotpSecret,
  otpauthUri,
  secretFromBase32,
  type TotpSecret,
  totpCodeAt,
  totpStep,
} from '../shared/totp.js';
import {
  deriveTotpKey,
  openTotp,
  type SealedTotp,
  sealTotp,
  TOTP_KEY_CONTEXT,
  TotpSealError,
} from '../shared/totp-seal.js';

const ascii = (text: string) => new Uint8Array(Buffer.from(text, 'ascii'));

t.test('codes: the RFC 6238 Appendix B vectors', async (t) => {
  const keys = {
    SHA1: ascii('12345678901234567890'),
    SHA256: ascii('12345678901234567890123456789012'),
    SHA512: ascii('1234567890123456789012345678901234567890123456789012345678901234'),
  } as const;
  const vectors: [number, string, string, string][] = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  for (const [time, sha1, sha256, sha512] of vectors) {
    const step = totpStep(time * 1000, 30);
    const at = (algorithm: keyof typeof keys) =>
      totpCodeAt({ bytes: keys[algorithm], algorithm, digits: 8, period: 30 }, step);
    t.same([at('SHA1'), at('SHA256'), at('SHA512')], [sha1, sha256, sha512], `T = ${time}`);
  }
});

const SECRET: TotpSecret = {
  bytes: ascii('12345678901234567890'),
  algorithm: 'SHA1',
  digits: 6,
  period: 30,
};
const NOW = 1_750_000_015_000; // ms, 15 s into a step
const STEP = totpStep(NOW, 30);

/** The code of `secret` `offset` steps from NOW, computed by otpauth itself. */
function codeAt(secret: TotpSecret, offset: number): string {
  return TOTP.generate({
    secret: new Secret({ buffer: secret.bytes.slice().buffer }),
    algorithm: secret.algorithm,
    digits: secret.digits,
    period: secret.period,
    timestamp: NOW + offset * secret.period * 1000,
  });
}

t.test('the window: steps -1, 0 and +1 are accepted, ±2 are not', async (t) => {
  for (const secret of [
    SECRET,
    { ...SECRET, algorithm: 'SHA512' as const },
    { ...SECRET, digits: 8 },
  ]) {
    for (const offset of [-1, 0, 1]) {
      t.same(
        matchingSteps(secret, codeAt(secret, offset), NOW),
        [STEP + offset],
        `${secret.algorithm}/${secret.digits} ${offset}`,
      );
    }
    for (const offset of [-2, 2, -10, 10]) {
      t.same(matchingSteps(secret, codeAt(secret, offset), NOW), [], `${offset} steps away`);
    }
  }
});

t.test(
  'anything but the right number of ASCII digits matches nothing, without throwing',
  async (t) => {
    const code = codeAt(SECRET, 0);
    for (const bad of [
      '',
      code.slice(1),
      `${code}0`,
      ` ${code.slice(1)}`,
      `${code.slice(0, 5)}é`,
      '１２３４５６',
      `${code.slice(0, 5)}\u0000`,
      '+12345',
      '-12345',
      '1e5123',
    ]) {
      t.same(matchingSteps(SECRET, bad, NOW), [], JSON.stringify(bad));
    }
    t.same(matchingSteps(SECRET, code, NOW), [STEP], 'the code itself does');
  },
);

t.test('a code of another secret or another algorithm does not match', async (t) => {
  const other = { ...SECRET, bytes: ascii('00000000000000000000') };
  t.same(matchingSteps(SECRET, codeAt(other, 0), NOW), []);
  const sha512 = { ...SECRET, algorithm: 'SHA512' as const };
  t.same(matchingSteps(SECRET, codeAt(sha512, 0), NOW), []);
});

t.test('new secrets: 20 random bytes, SHA1, 6 digits, 30 s', async (t) => {
  const a = newTotpSecret();
  const b = newTotpSecret();
  t.equal(a.bytes.length, 20);
  t.same([a.algorithm, a.digits, a.period], ['SHA1', 6, 30]);
  t.same(NEW_SECRET, { algorithm: 'SHA1', digits: 6, period: 30, bytes: 20 });
  t.not(Buffer.from(a.bytes).toString('hex'), Buffer.from(b.bytes).toString('hex'));
});

t.test('the otpauth URI apps scan, and the base32 key', async (t) => {
  const secret = secretFromBase32('JBSWY3DPEHPK3PXP');
  t.same(
    [secret.algorithm, secret.digits, secret.period],
    ['SHA512', 6, 30],
    "the original's parameters",
  );
  t.equal(base32Of(secret), 'JBSWY3DPEHPK3PXP');
  t.equal(
    otpauthUri('alice', secret),
    'otpauth://totp/ProxyAuth:alice?issuer=ProxyAuth&secret=JBSWY3DPEHPK3PXP&algorithm=SHA512&digits=6&period=30',
  );
  t.match(
    otpauthUri('a b:c/é', newTotpSecret()),
    /^otpauth:\/\/totp\/ProxyAuth:a%20b%3Ac%2F%C3%A9\?/,
    'the label is encoded',
  );
  const fresh = newTotpSecret();
  const read = URI.parse(otpauthUri('alice', fresh)) as TOTP;
  t.same(
    [read.issuer, read.label, read.algorithm, read.digits, read.period, read.secret.base32],
    ['ProxyAuth', 'alice', 'SHA1', 6, 30, base32Of(fresh)],
    'an otpauth parser reads back what was written',
  );
  t.equal(secretFromBase32('jbswy3dpehpk3pxp').bytes.length, 10, 'lower case decodes');
});

t.test('base32Problem', async (t) => {
  t.equal(base32Problem('JBSWY3DPEHPK3PXP'), undefined);
  t.match(base32Problem('JBSWY3DPEHPK3PX8'), /A-Z and the digits 2-7/);
  t.match(base32Problem('JBSWY3DPEHPK3PXPA'), /whole bytes/);
  t.match(base32Problem('=JBSWY3DPEHPK3PXP'), /A-Z/);
});

const KEY = deriveTotpKey('config-secret-'.repeat(5));

t.test(
  'sealing: a round trip, a fresh nonce each time, nothing of the secret in the record',
  async (t) => {
    const secret = newTotpSecret();
    const sealed = sealTotp(KEY, 'alice', secret, 1_750_000_000);
    t.same(openTotp(KEY, 'alice', sealed), secret);
    const again = sealTotp(KEY, 'alice', secret, 1_750_000_000);
    t.not(again.nonce, sealed.nonce);
    t.not(again.box, sealed.box);
    t.equal(Buffer.from(sealed.nonce, 'base64url').length, 24);
    t.equal(Buffer.from(sealed.box, 'base64url').length, 20 + 16, 'ciphertext and tag');
    const text = JSON.stringify(sealed);
    t.notOk(text.includes(base32Of(secret)), 'no base32 key');
    t.notOk(Buffer.from(text).includes(Buffer.from(secret.bytes)), 'no raw key bytes');
    t.notOk(text.includes(Buffer.from(secret.bytes).toString('base64url')), 'no encoded key bytes');
  },
);

t.test(
  'sealing: a record moved to another user, edited, or opened under another key fails',
  async (t) => {
    const secret = newTotpSecret();
    const sealed = sealTotp(KEY, 'alice', secret, 1_750_000_000);
    const fails = (key: Uint8Array, user: string, record: SealedTotp, why: string) =>
      t.throws(() => openTotp(key, user, record), TotpSealError, why);
    fails(KEY, 'bob', sealed, 'AAD binds the user');
    fails(KEY, 'alice ', sealed, 'exactly');
    fails(deriveTotpKey('another-secret-'.repeat(5)), 'alice', sealed, 'another config secret');
    fails(KEY, 'alice', { ...sealed, algorithm: 'SHA512' }, 'the algorithm is bound');
    fails(KEY, 'alice', { ...sealed, digits: 8 }, 'the digits are bound');
    fails(KEY, 'alice', { ...sealed, period: 60 }, 'the period is bound');
    fails(KEY, 'alice', { ...sealed, createdAt: sealed.createdAt + 1 }, 'the date is bound');
    const box = Buffer.from(sealed.box, 'base64url');
    box[0] = box[0]! ^ 1;
    fails(KEY, 'alice', { ...sealed, box: box.toString('base64url') }, 'a flipped bit');
    fails(KEY, 'alice', { ...sealed, nonce: sealed.nonce.slice(1) }, 'a short nonce');
    fails(KEY, 'alice', { ...sealed, box: 'AAAA' }, 'a box shorter than a tag');
    t.equal(
      (t.throws(() => openTotp(KEY, 'bob', sealed)) as TotpSealError).code,
      'TOTP_SEAL_INVALID',
    );
  },
);

t.test('the key: derived from the config secret with its own context', async (t) => {
  t.equal(TOTP_KEY_CONTEXT, 'ProxyAuth 2026 totp secret v1');
  t.equal(KEY.length, 32);
  t.same(deriveTotpKey('config-secret-'.repeat(5)), KEY, 'deterministic');
  t.not(
    Buffer.from(deriveTotpKey('x'.repeat(64))).toString('hex'),
    Buffer.from(KEY).toString('hex'),
  );
  t.throws(() => sealTotp(KEY, 'alice', { ...SECRET, bytes: new Uint8Array(0) }, 1), RangeError);
});

import { randomBytes } from 'node:crypto';
import t from 'tap';
import {
  decodeBase64Url,
  decodeBase64UrlInto,
  decodedLength,
  encodeBase64Url,
} from '../shared/base64url.js';

t.test('round-trips every length from 0 to 300 bytes', async (t) => {
  let failures = 0;
  for (let length = 0; length <= 300; length++) {
    const bytes = randomBytes(length);
    const text = encodeBase64Url(bytes);
    if (text !== bytes.toString('base64url')) failures++;
    const back = decodeBase64Url(text);
    if (back === null || !Buffer.from(back).equals(bytes)) failures++;
  }
  t.equal(failures, 0);
});

t.test('encodes a subarray, not its whole buffer', async (t) => {
  const whole = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  t.equal(encodeBase64Url(whole.subarray(2, 5)), Buffer.from([3, 4, 5]).toString('base64url'));
});

t.test('RFC 4648 test vectors (padding removed)', async (t) => {
  const cases: Array<[string, string]> = [
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, encoded] of cases) {
    t.equal(encodeBase64Url(Buffer.from(plain)), encoded);
    t.equal(Buffer.from(decodeBase64Url(encoded) ?? []).toString(), plain);
  }
  t.equal(encodeBase64Url(Uint8Array.from([0xfb, 0xff])), '-_8', 'URL-safe characters');
});

t.test('refuses what is not canonical unpadded base64url', async (t) => {
  for (const text of [
    'Z',
    'Zg=',
    'Zg==',
    'Zm9v=',
    'Zm+v',
    'Zm/v',
    'Zm9 v',
    'Zm9\u00e9',
    'Zh',
    'Zm9',
    'Zm8\u0000',
  ]) {
    t.equal(decodeBase64Url(text), null, JSON.stringify(text));
  }
  t.not(decodeBase64Url('Zm8'), null);
  // 'Zh' and 'Zm9' decode like 'Zg' and 'Zm8' in Node (trailing bits ignored); here they do not.
  t.same(Buffer.from('Zh', 'base64url'), Buffer.from('Zg', 'base64url'));
});

t.test('decodeBase64UrlInto checks the room it is given', async (t) => {
  const out = new Uint8Array(3);
  t.equal(decodeBase64UrlInto('Zm9v', out), 3);
  t.equal(Buffer.from(out).toString(), 'foo');
  t.equal(decodeBase64UrlInto('Zm9vYg', out), -1, 'four bytes do not fit in three');
  t.equal(decodedLength(5), -1);
  t.equal(decodedLength(6), 4);
  t.equal(decodedLength(512), 384);
});

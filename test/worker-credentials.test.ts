// Login bodies: username, password and the optional totp_code, from JSON or a form.
import t from 'tap';
import { GatewayError } from '../shared/errors.js';
import { parseCredentials } from '../worker/credentials.js';

const json = (value: unknown) => parseCredentials(Buffer.from(JSON.stringify(value)), 'json');
const form = (text: string) => parseCredentials(Buffer.from(text), 'form');

t.test('totp_code is optional; an empty one is none', async (t) => {
  t.same(json({ username: 'a', password: 'p' }), {
    username: 'a',
    password: 'p',
    totpCode: undefined,
  });
  t.equal(json({ username: 'a', password: 'p', totp_code: '012345' }).totpCode, '012345');
  t.equal(json({ username: 'a', password: 'p', totp_code: '' }).totpCode, undefined);
  t.equal(form('username=a&password=p&totp_code=012345').totpCode, '012345');
  t.equal(form('username=a&password=p&totp_code=').totpCode, undefined);
  t.equal(form('username=a&password=p').totpCode, undefined);
});

t.test(
  'a JSON number is read as its digits (a leading zero cannot survive JSON anyway)',
  async (t) => {
    t.equal(json({ username: 'a', password: 'p', totp_code: 123456 }).totpCode, '123456');
  },
);

t.test('anything else is a 400 BAD_BODY naming the field, never echoing it', async (t) => {
  for (const totp_code of [null, true, ['123456'], { code: 1 }, 1.5, '1'.repeat(17), 2 ** 60]) {
    const err = t.throws(() => json({ username: 'a', password: 'p', totp_code })) as GatewayError;
    t.ok(err instanceof GatewayError, JSON.stringify(totp_code));
    t.equal(err.code, 'BAD_BODY');
    t.match(err.detail, /^totp_code must be a string of at most 16 characters$/);
  }
});

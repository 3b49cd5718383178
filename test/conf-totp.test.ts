// users[].totp and login_via_otp in config.json: true, false or the original's plaintext base32
// secret (validated), with the warnings a plaintext secret and an unused setting get.
import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { parseConfig } from '../conf/parse.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };
const SECRET = 's'.repeat(64);
// 32 characters: 160 bits, as the original generated.
const BASE32 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

function withTotp(totp: unknown, extra: Record<string, unknown> = {}) {
  return parseConfig(
    { secret: SECRET, users: [{ username: 'alice', password: 'p', totp }], ...extra },
    null,
    FILES,
  );
}

function messages(totp: unknown): string[] {
  try {
    withTotp(totp);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.key}: ${i.message}`);
  }
  throw new Error(`accepted: ${JSON.stringify(totp)}`);
}

t.test('login_via_otp and users[].totp: true are accepted (no longer refused)', async (t) => {
  const { config, warnings } = withTotp(true, { login_via_otp: true });
  t.equal(config.login_via_otp, true);
  t.equal(config.users[0]?.totp, true);
  t.same(warnings, [], 'nothing to warn about');
});

t.test('a base32 secret of a sane length is accepted as written', async (t) => {
  for (const secret of [
    BASE32,
    BASE32.toLowerCase(),
    'JBSWY3DPEHPK3PXP', // 16 characters: 80 bits, the shortest
    'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX=', // 31 + padding to 32
    'A'.repeat(128),
  ]) {
    t.equal(withTotp(secret, { login_via_otp: true }).config.users[0]?.totp, secret, secret);
  }
});

t.test('anything else is refused, naming the key and the rule', async (t) => {
  const cases: [unknown, RegExp][] = [
    ['JBSWY3DPEHPK3PX', /16 to 128 characters .* this one has 15/],
    ['A'.repeat(129), /this one has 129/],
    ['JBSWY3DPEHPK3PXP1', /only the letters A-Z and the digits 2-7/],
    ['JBSWY3DP EHPK3PXP', /only the letters/],
    ['JBSWY3DPEHPK3PXPJ', /not one that whole bytes encode to/], // 17: 17 % 8 = 1
    ['JBSWY3DPEHPK3PXPJBS', /not one that whole bytes encode to/], // 19 % 8 = 3
    ['JBSWY3DPEHPK3PXPJB=', /not one that whole bytes encode to/], // padding to 19
    ['yes', /only the letters|16 to 128/],
    [1, /./],
    [null, /./],
  ];
  for (const [value, rule] of cases) {
    const found = messages(value);
    t.equal(found.length, 1, JSON.stringify(value));
    t.match(found[0], /^users\[0\]\.totp: /, 'names the key');
    t.match(found[0], rule, JSON.stringify(value));
    t.notMatch(found[0] ?? '', String(value).slice(0, 12) || '^$', 'the secret is not echoed');
  }
});

t.test('a plaintext secret warns that it is readable, and how to move it', async (t) => {
  const { warnings } = withTotp(BASE32, { login_via_otp: true });
  t.equal(warnings.length, 1);
  t.match(warnings[0], /^\/etc\/pa\/config\.json: users\[0\]\.totp: a plaintext TOTP secret/);
  t.match(warnings[0], /proxyauth totp reset alice/);
  t.match(warnings[0], /"totp": true/);
  t.notMatch(warnings[0], BASE32, 'the secret itself is not repeated');
});

t.test('totp without login_via_otp warns that no code is asked', async (t) => {
  for (const totp of [true, BASE32]) {
    const { warnings } = withTotp(totp);
    t.ok(
      warnings.includes(
        '/etc/pa/config.json: users[0].totp: login_via_otp is false, so no TOTP code is asked at login',
      ),
      JSON.stringify(totp),
    );
  }
  t.same(withTotp(false).warnings, [], 'totp: false warns about nothing');
});

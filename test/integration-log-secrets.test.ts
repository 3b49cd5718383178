// No log line ever holds a token, a password, a TOTP code, the secret or the admin token
// (issue 11): a run exercises each of them, then everything it logged is searched, at debug
// level: stdout and stderr, the Loki payloads, and /adm/logs.
import t, { type Test } from 'tap';
import { secretFromBase32, totpCodeAt, totpStep } from '../shared/totp.js';
import { startFakeLoki } from './helpers/fake-loki.js';
import { login, loginWithId, type RunningGateway, startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const ADMIN = 'a'.repeat(64);
const SECRET = 'integration-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const TOTP_B32 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const USERS = [
  { username: 'alice', password: 'alice-password-Qz7' },
  { username: 'bob', password: 'bob-password-Wk3', totp: TOTP_B32 },
];
const WRONG_PASSWORD = 'wrong-password-Hj9';
/** A password typed into the username field: the ban it causes must not log it. */
const PASSWORD_AS_NAME = 'typed-as-name-Vb4';

const upstream = await startUpstream();
t.teardown(() => upstream.close());
const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}/api\n`;

async function post(g: RunningGateway, path: string, body: unknown, headers = {}) {
  const res = await fetch(`${g.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

/** Uses every secret the gateway sees; returns them all. */
async function exercise(t: Test, g: RunningGateway): Promise<string[]> {
  const alice = await login(g.url, 'alice', USERS[0]!.password);
  const code = totpCodeAt(secretFromBase32(TOTP_B32), totpStep(Date.now(), 30));
  const bob = await post(g, '/auth', {
    username: 'bob',
    password: USERS[1]!.password,
    totp_code: code,
  });
  t.equal(bob.status, 200, bob.body);
  const bobToken = (JSON.parse(bob.body) as { token: string }).token;
  t.equal((await post(g, '/auth', { username: 'alice', password: WRONG_PASSWORD })).status, 401);
  const bad = `${alice.slice(0, -4)}AAAA`;
  for (const token of [alice, bobToken, bad]) {
    const res = await fetch(`${g.url}/api/x?access_token=${token}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await res.arrayBuffer();
  }
  // A token in the path (a client that puts it there): its request is logged, the token not.
  const inPath = await fetch(`${g.url}/api/${alice}/x`, {
    headers: { authorization: `Bearer ${alice}` },
  });
  await inPath.arrayBuffer();
  const { tokenId } = await loginWithId(g.url, 'alice', USERS[0]!.password);
  const revoked = await post(g, '/adm/revoke', { token_id: tokenId }, { 'x-auth-token': ADMIN });
  t.equal(revoked.status, 200, revoked.body);
  // Three failures ban the name and the address (max_failures 3), from an address of their
  // own (the test client is a trusted proxy): the ban lines name the user, here a password.
  for (let i = 0; i < 3; i++) {
    const typed = await post(
      g,
      '/auth',
      { username: PASSWORD_AS_NAME, password: 'alice' },
      { 'x-forwarded-for': '192.0.2.77' },
    );
    t.equal(typed.status, 401, typed.body);
  }
  await new Promise((r) => setTimeout(r, 300)); // the access log flushes every 50 ms
  t.match(g.output(), /"login ban"/, 'the ban was logged');
  t.match(g.output(), '"path":"/api/<token>/x"', 'the path with its token replaced');
  return [
    alice,
    bobToken,
    bad,
    code,
    SECRET,
    ADMIN,
    WRONG_PASSWORD,
    PASSWORD_AS_NAME,
    TOTP_B32,
    ...USERS.map((u) => u.password),
  ];
}

function assertClean(t: Test, where: string, text: string, secrets: string[]): void {
  t.ok(text.length > 1000, `${where}: there is something to search (${text.length} chars)`);
  for (const secret of secrets) {
    // A TOTP code is 6 digits: only a match not inside a longer number counts.
    const found = /^[0-9]{6}$/.test(secret)
      ? new RegExp(`(?<![0-9])${secret}(?![0-9])`).test(text)
      : text.includes(secret);
    t.notOk(found, `${where}: no ${secret.slice(0, 6)}...`);
  }
}

const config = {
  login_via_otp: true,
  login_lockout: { max_failures: 3 },
  trusted_proxies: ['127.0.0.1'],
};

t.test('loki run: stdout, stderr and Loki payloads hold no secret', async (t) => {
  const loki = await startFakeLoki();
  t.teardown(() => loki.close());
  const g = await startGateway({
    routes,
    users: USERS,
    config: { ...config, log: { type: 'loki', host: loki.url } },
  });
  const secrets = await exercise(t, g);
  await g.stop();
  assertClean(t, 'output', g.output(), secrets);
  t.ok(
    loki.lines().some((l) => l.includes('"path":"/api/x"')),
    'access lines shipped',
  );
  assertClean(t, 'loki', JSON.stringify(loki.pushes), secrets);
});

t.test('http run: stdout, stderr and /adm/logs hold no secret', async (t) => {
  const g = await startGateway({
    routes,
    users: USERS,
    config: { ...config, log: { type: 'http' } },
  });
  t.teardown(() => g.stop());
  const secrets = await exercise(t, g);
  const res = await fetch(`${g.url}/adm/logs?limit=10000`, { headers: { 'x-auth-token': ADMIN } });
  const logs = await res.text();
  t.equal(res.status, 200);
  t.match(logs, /"path":"\/api\/x"/);
  assertClean(t, '/adm/logs', logs, secrets);
  assertClean(t, 'output', g.output(), secrets);
});

// TOTP on the real CLI with 2 edges: enrolment rules, login with a code, replay refused on
// either edge, wrong and missing codes, login_via_otp off, admin reset and removal (API and
// CLI, while the gateway runs), the original's plaintext secret, secrets unreadable in the data
// dir, and code failures counted by the lockout.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { logged, logLines, type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';

const ADMIN = 'a'.repeat(64); // the helper's token_admin
const routes = 'routes: []\n';
// The original's format: a base32 secret in config.json, SHA512, 6 digits, 30 s.
const CAROL_SECRET = 'KRUGS4ZANFZSAYJAORSXG5BAONSWG4TFOQQGM33SEBKE6VCQ';
const ERIN_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const USERS = [
  { username: 'alice', password: 'alice-password', totp: true },
  { username: 'bob', password: 'bob-password' },
  { username: 'carol', password: 'carol-password', totp: CAROL_SECRET },
  { username: 'dave', password: 'dave-password', totp: true },
  { username: 'erin', password: 'erin-password', totp: ERIN_SECRET },
];

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body. */
  text: string;
}

/** One request on a connection of its own (agent: false), so the kernel may pick either edge. */
function send(
  g: RunningGateway,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const payload =
    body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${g.url}${path}`,
      {
        method,
        agent: false,
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
            headers: res.headers,
            text,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const auth = (g: RunningGateway, username: string, password: string, totp_code?: string) =>
  send(g, 'POST', '/auth', { username, password, ...(totp_code ? { totp_code } : {}) });
const enrol = (g: RunningGateway, username: string, password: string, totp_code?: string) =>
  send(g, 'POST', '/adm/auth/totp/get', {
    username,
    password,
    ...(totp_code ? { totp_code } : {}),
  });
const admin = (g: RunningGateway, method: string, path: string, body?: unknown) =>
  send(g, method, path, body, { 'x-auth-token': ADMIN });

/** The code of a base32 key `offset` steps from now, computed by otpauth. */
function code(key: string, offset = 0, algorithm = 'SHA1'): string {
  return TOTP.generate({
    secret: Secret.fromBase32(key),
    algorithm,
    digits: 6,
    period: 30,
    timestamp: Date.now() + offset * 30_000,
  });
}

/** Pids of the edges whose access lines after `offset` (in the output) answered `path` with `code`. */
function answeredBy(g: RunningGateway, offset: number, path: string, code: string): Set<unknown> {
  return new Set(
    logLines(g.output().slice(offset))
      .filter((l) => l.type === 'access' && l.path === path && l.code === code)
      .map((l) => l.pid),
  );
}

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

t.test('TOTP with login_via_otp on, on 2 edges', async (t) => {
  const g = await startGateway({
    users: USERS,
    routes,
    config: { login_via_otp: true, login_lockout: { max_failures: 0 } },
  });
  t.teardown(() => g.stop());
  t.equal(g.edges.length, 2);
  const keys: string[] = [];

  const wrongPassword = await auth(g, 'alice', 'wrong');
  t.equal(wrongPassword.status, 401);
  t.equal(wrongPassword.body.error, 'INVALID_CREDENTIALS');

  await t.test('a user who must use TOTP and has none is told to enrol', async (t) => {
    const r = await auth(g, 'alice', 'alice-password');
    t.equal(r.status, 403);
    t.equal(r.body.error, 'TOTP_ENROLMENT_REQUIRED');
    t.same((await auth(g, 'alice', 'wrong')).body, wrongPassword.body, 'only after the password');
    t.equal((await auth(g, 'bob', 'bob-password')).status, 200, 'users without TOTP: no code');
  });

  let aliceKey = '';
  await t.test('enrolment: a new secret once, never again with the password alone', async (t) => {
    t.same((await enrol(g, 'alice', 'wrong')).body, wrongPassword.body, 'a wrong password');
    t.same((await enrol(g, 'mallory', 'x')).body, wrongPassword.body, 'an unknown user');
    const r = await enrol(g, 'alice', 'alice-password');
    t.equal(r.status, 200);
    t.equal(r.headers['cache-control'], 'no-store');
    t.equal(r.body.created, true);
    aliceKey = String(r.body.otpkey);
    keys.push(aliceKey);
    t.match(aliceKey, /^[A-Z2-7]{32}$/, '160 bits in base32');
    t.equal(
      r.body.otpauth_uri,
      `otpauth://totp/ProxyAuth:alice?issuer=ProxyAuth&secret=${aliceKey}&algorithm=SHA1&digits=6&period=30`,
    );
    t.match(
      String(r.body.qr_svg),
      /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>.*<\/svg>\s*$/s,
    );
    const again = await enrol(g, 'alice', 'alice-password');
    t.equal(again.status, 401, 'the password alone never reveals an existing secret');
    t.same(again.body, wrongPassword.body, 'the same answer as a wrong password');
    t.notMatch(again.text, aliceKey);
    const wrongCode = await enrol(g, 'alice', 'alice-password', code(aliceKey, 3));
    t.same(wrongCode.body, wrongPassword.body, 'nor with a wrong code');
    const form = await send(g, 'POST', '/adm/auth/totp/get', `username=bob&password=wrong`, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    t.same(form.body, wrongPassword.body, 'form bodies are read too');
  });

  await t.test(
    'login: missing, wrong and replayed codes get the 401 of a wrong password',
    async (t) => {
      t.same((await auth(g, 'alice', 'alice-password')).body, wrongPassword.body, 'no code');
      // Three steps ahead: the gateway's clock may pass a step boundary after the code is made.
      const far = await auth(g, 'alice', 'alice-password', code(aliceKey, 3));
      t.same(far.body, wrongPassword.body, 'a code three steps ahead');
      const stale = await auth(g, 'alice', 'alice-password', code(aliceKey, -2));
      t.same(stale.body, wrongPassword.body, 'a code two steps old');
      t.same(
        (await auth(g, 'alice', 'wrong', code(aliceKey))).body,
        wrongPassword.body,
        'a right code with a wrong password',
      );
      const now = code(aliceKey);
      const ok = await auth(g, 'alice', 'alice-password', now);
      t.equal(ok.status, 200, 'the current code');
      t.type(ok.body.token, 'string');
      // Access lines are flushed every 50 ms: from here on, only the replays' lines come.
      await new Promise((r) => setTimeout(r, 300));
      const offset = g.output().length;
      // The same code again, on fresh connections, until both edges have refused it.
      let attempts = 0;
      const bothRefused = await waitFor(
        async () => {
          attempts++;
          const replay = await auth(g, 'alice', 'alice-password', now);
          if (replay.status !== 401) throw new Error(`a replay was answered ${replay.status}`);
          return answeredBy(g, offset, '/auth', 'INVALID_CREDENTIALS').size === 2;
        },
        20_000,
        0,
      );
      t.ok(bothRefused, `both edges refused the replay (${attempts} attempts)`);
      const earlier = await auth(g, 'alice', 'alice-password', code(aliceKey, -1));
      t.same(earlier.body, wrongPassword.body, 'an earlier step after a later one');
      t.equal(
        (await auth(g, 'alice', 'alice-password', code(aliceKey, 1))).status,
        200,
        'a later one',
      );
    },
  );

  await t.test('one fresh code sent 12 times at once: exactly one login', async (t) => {
    const r = await enrol(g, 'dave', 'dave-password');
    keys.push(String(r.body.otpkey));
    const now = code(String(r.body.otpkey));
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => auth(g, 'dave', 'dave-password', now)),
    );
    t.same(answers.map((a) => a.status).sort(), [200, ...Array(11).fill(401)]);
  });

  await t.test(
    "the original's plaintext secret works, and is handed back only with a code",
    async (t) => {
      t.same((await auth(g, 'carol', 'carol-password')).body, wrongPassword.body, 'no code');
      const sha1 = await auth(g, 'carol', 'carol-password', code(CAROL_SECRET, 0, 'SHA1'));
      t.same(sha1.body, wrongPassword.body, 'its codes are SHA512 ones');
      // Made once: a step boundary between two uses must not turn one into another step's code.
      const now = code(CAROL_SECRET, 0, 'SHA512');
      const next = code(CAROL_SECRET, 1, 'SHA512');
      t.equal((await auth(g, 'carol', 'carol-password', now)).status, 200);
      t.same((await enrol(g, 'carol', 'carol-password')).body, wrongPassword.body, 'no code');
      const back = await enrol(g, 'carol', 'carol-password', next);
      t.equal(back.status, 200, 'with a valid code, the existing secret is handed back');
      t.equal(back.body.created, false);
      t.equal(back.body.otpkey, CAROL_SECRET);
      t.match(String(back.body.otpauth_uri), /algorithm=SHA512&digits=6&period=30$/);
      const replay = await auth(g, 'carol', 'carol-password', next);
      t.same(replay.body, wrongPassword.body, 'the enrolment consumed its code');
    },
  );

  await t.test(
    "a store secret wins over config.json's; removed, config.json's applies again",
    async (t) => {
      const now = code(ERIN_SECRET, 0, 'SHA512');
      const reset = await admin(g, 'POST', '/adm/auth/totp/reset', { username: 'erin' });
      t.equal(reset.status, 200);
      const key = String(reset.body.otpkey);
      keys.push(key);
      t.match(String(reset.body.otpauth_uri), /algorithm=SHA1/);
      const old = await auth(g, 'erin', 'erin-password', now);
      t.same(old.body, wrongPassword.body, "config.json's secret no longer applies");
      t.equal((await auth(g, 'erin', 'erin-password', code(key))).status, 200, 'the new one does');
      const removed = await admin(g, 'DELETE', '/adm/auth/totp?user=erin');
      t.same(removed.body, { removed: true, username: 'erin', config_secret: true });
      t.equal((await auth(g, 'erin', 'erin-password', now)).status, 200, "config.json's again");
      t.same((await auth(g, 'erin', 'erin-password', now)).body, wrongPassword.body, 'once');
    },
  );
  await t.test('admin reset and removal take effect at once', async (t) => {
    const before = aliceKey;
    const reset = await admin(g, 'POST', '/adm/auth/totp/reset', { username: 'alice' });
    t.equal(reset.status, 200);
    aliceKey = String(reset.body.otpkey);
    keys.push(aliceKey);
    t.not(aliceKey, before);
    const old = await auth(g, 'alice', 'alice-password', code(before, 1));
    t.same(old.body, wrongPassword.body, 'a code of the old secret is refused after a reset');
    t.equal((await auth(g, 'alice', 'alice-password', code(aliceKey))).status, 200);
    const removed = await admin(g, 'DELETE', '/adm/auth/totp?user=alice');
    t.same(removed.body, { removed: true, username: 'alice', config_secret: false });
    t.equal((await auth(g, 'alice', 'alice-password')).body.error, 'TOTP_ENROLMENT_REQUIRED');
    const none = await admin(g, 'DELETE', '/adm/auth/totp?user=alice');
    t.equal(none.status, 404);
    t.equal(none.body.error, 'TOTP_NOT_FOUND');
    const unknown = await admin(g, 'POST', '/adm/auth/totp/reset', { username: 'mallory' });
    t.equal(unknown.body.error, 'USER_NOT_FOUND');
    t.equal((await admin(g, 'DELETE', '/adm/auth/totp?user=a&user=b')).body.error, 'BAD_REQUEST');
    t.equal(
      (await admin(g, 'POST', '/adm/auth/totp/reset', { user: 'alice' })).body.error,
      'BAD_BODY',
    );
    const anon = await send(g, 'POST', '/adm/auth/totp/reset', { username: 'alice' });
    t.equal(anon.body.error, 'ADMIN_TOKEN_MISSING', 'the admin token is needed');
    const del = await send(g, 'DELETE', '/adm/auth/totp?user=bob');
    t.equal(del.body.error, 'ADMIN_TOKEN_MISSING');
    t.equal((await enrol(g, 'alice', 'alice-password')).status, 200, 'alice may enrol anew');
  });

  await t.test('proxyauth totp reset / remove, while the gateway runs', async (t) => {
    const dirs = ['--config-dir', g.configDir, '--data-dir', join(g.configDir, 'data')];
    const reset = await runCli(['totp', 'reset', 'bob', '--json', ...dirs]);
    t.equal(reset.code, 0, reset.stderr);
    const printed = JSON.parse(reset.stdout) as Record<string, string>;
    t.equal(printed.username, 'bob');
    keys.push(printed.otpkey!);
    t.match(printed.otpauth_uri, /^otpauth:\/\/totp\/ProxyAuth:bob\?issuer=ProxyAuth&secret=/);
    t.same((await auth(g, 'bob', 'bob-password')).body, wrongPassword.body, 'bob needs a code now');
    t.equal((await auth(g, 'bob', 'bob-password', code(printed.otpkey!))).status, 200);
    const text = await runCli(['totp', 'reset', 'bob', ...dirs]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /^new TOTP secret for bob \(SHA1, 6 digits, 30 s\)/);
    const key = /otpkey: ([A-Z2-7]+)\n/.exec(text.stdout)?.[1] ?? '';
    keys.push(key);
    t.match(text.stdout, /[▀▄█]/, 'a QR code for the terminal');
    t.same(
      (await auth(g, 'bob', 'bob-password', code(printed.otpkey!, 1))).body,
      wrongPassword.body,
      'the first CLI secret is replaced',
    );
    t.equal((await auth(g, 'bob', 'bob-password', code(key))).status, 200);
    const removed = await runCli(['totp', 'remove', 'bob', ...dirs]);
    t.same([removed.code, removed.stdout], [0, 'removed the TOTP secret of bob from the store\n']);
    t.equal((await auth(g, 'bob', 'bob-password')).status, 200, 'no code needed again');
    const again = await runCli(['totp', 'remove', 'bob', ...dirs]);
    t.same([again.code, again.stdout], [0, 'bob has no TOTP secret in the store\n']);
    const unknown = await runCli(['totp', 'reset', 'mallory', ...dirs]);
    t.equal(unknown.code, 1);
    t.match(unknown.stderr, /config\.json: no user named "mallory"/);
  });

  await t.test('no secret is readable in the data dir or the logs', async (t) => {
    keys.push(CAROL_SECRET, ERIN_SECRET);
    t.ok(keys.length >= 8, `${keys.length} secrets handed out or configured`);
    const files = await filesUnder(join(g.configDir, 'data'));
    t.ok(
      files.some((f) => f.endsWith('proxyauth.mdb')),
      'the store is among them',
    );
    for (const file of files) {
      const bytes = await readFile(file);
      for (const key of keys) {
        const raw = Secret.fromBase32(key).bytes;
        t.notOk(bytes.includes(Buffer.from(key)), `${file}: no base32 key`);
        t.notOk(bytes.includes(Buffer.from(raw)), `${file}: no raw key bytes`);
        t.notOk(bytes.includes(Buffer.from(Buffer.from(raw).toString('base64url'))), 'no base64');
        t.notOk(bytes.includes(Buffer.from(Buffer.from(raw).toString('hex'))), 'no hex');
      }
    }
    for (const key of keys) t.notMatch(g.output(), key, 'not in the logs either');
    t.ok(logged(g.output(), { message: 'totp secret enrolled', user: 'alice' }).length > 0);
    t.ok(logged(g.output(), { message: 'totp secret reset', user: 'erin' }).length > 0);
    t.ok(logged(g.output(), { message: 'totp secret removed', user: 'erin' }).length > 0);
  });
});

t.test(
  'login_via_otp off: no code asked; enrolment still works, without the admin API',
  async (t) => {
    const g = await startGateway({
      users: USERS,
      routes,
      config: {
        token_admin: '',
        login_lockout: { max_failures: 0 },
        ratelimit_auth: { requests_per_second: 0.5, burst: 8 },
      },
    });
    t.teardown(() => g.stop());
    t.match(g.output(), /users\[0\]\.totp: login_via_otp is false, so no TOTP code is asked/);
    t.match(g.output(), /users\[2\]\.totp: a plaintext TOTP secret/);
    t.equal((await auth(g, 'alice', 'alice-password')).status, 200, 'totp: true, no code');
    t.equal((await auth(g, 'alice', 'alice-password', '123456')).status, 200, 'a code is ignored');
    t.equal((await auth(g, 'carol', 'carol-password')).status, 200, 'a config secret too');
    t.equal((await send(g, 'GET', '/adm/stats')).body.error, 'ADMIN_DISABLED');
    const r = await enrol(g, 'alice', 'alice-password');
    t.equal(r.status, 200, 'enrolment is a user operation, not behind the admin token');
    t.equal((await auth(g, 'alice', 'alice-password')).status, 200, 'and still no code asked');
    const burst = await Promise.all(Array.from({ length: 6 }, () => enrol(g, 'bob', 'x')));
    t.ok(
      burst.some((a) => a.body.error === 'TooManyRequests'),
      'enrolment spends the ratelimit_auth budget of /auth',
    );
  },
);

t.test('the lockout counts wrong codes, at login and at enrolment', async (t) => {
  const g = await startGateway({
    users: USERS,
    routes,
    config: {
      login_via_otp: true,
      login_lockout: { max_failures: 3, find_time: 60, ban_time: 60 },
      trusted_proxies: ['127.0.0.1'],
    },
  });
  t.teardown(() => g.stop());
  // One address per attempt: only the user's count can ban.
  const from = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i}` });
  const r = await send(
    g,
    'POST',
    '/adm/auth/totp/get',
    { username: 'dave', password: 'dave-password' },
    from(1),
  );
  t.equal(r.status, 200);
  const key = String(r.body.otpkey);
  const body = (extra: Record<string, string>) => ({
    username: 'dave',
    password: 'dave-password',
    ...extra,
  });
  t.equal(
    (await send(g, 'POST', '/auth', body({ totp_code: code(key, 3) }), from(2))).body.error,
    'INVALID_CREDENTIALS',
  );
  t.equal(
    (await send(g, 'POST', '/auth', body({}), from(3))).body.error,
    'INVALID_CREDENTIALS',
    'a missing code',
  );
  t.equal(
    (await send(g, 'POST', '/adm/auth/totp/get', body({}), from(4))).body.error,
    'INVALID_CREDENTIALS',
    'the password alone at enrolment',
  );
  const locked = await send(g, 'POST', '/auth', body({ totp_code: code(key) }), from(5));
  t.equal(locked.status, 429, 'three failures with the right password: locked out');
  t.equal(locked.body.error, 'LOGIN_LOCKED');
});

t.test(
  'a changed secret makes stored TOTP secrets unreadable: refused, logged, reset works',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'proxyauth-totp-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const config = { login_via_otp: true, login_lockout: { max_failures: 0 }, num_instances: 1 };
    const first = await startGateway({ users: USERS, routes, config, dir });
    const r = await enrol(first, 'dave', 'dave-password');
    t.equal(r.status, 200);
    const key = String(r.body.otpkey);
    await first.stop();
    const secret = `another-secret-${'x'.repeat(64)}`;
    const g = await startGateway({ users: USERS, routes, config: { ...config, secret }, dir });
    t.teardown(() => g.stop());
    const refused = await auth(g, 'dave', 'dave-password', code(key));
    t.equal(refused.status, 401, 'the sealed secret no longer opens: fail closed');
    t.equal(refused.body.error, 'INVALID_CREDENTIALS');
    t.equal((await enrol(g, 'dave', 'dave-password')).status, 401, 'no silent re-enrolment either');
    t.ok(
      await waitFor(
        () =>
          logged(g.output(), {
            message: 'a TOTP secret in the store does not open; reset it',
            user: 'dave',
          }).length > 0,
        5_000,
      ),
      'logged, naming the user',
    );
    const reset = await admin(g, 'POST', '/adm/auth/totp/reset', { username: 'dave' });
    t.equal(reset.status, 200);
    t.equal((await auth(g, 'dave', 'dave-password', code(String(reset.body.otpkey)))).status, 200);
  },
);

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { login, startGateway, waitFor, writeConfig } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

// check-config and run go through one validation (conf/load.ts): what one accepts the other
// starts, what one refuses the other refuses with the same `file: key: rule` line.

const SECRET = 's'.repeat(64);
const VALID_ROUTES = 'routes:\n  - prefix: /api\n    target: http://127.0.0.1:8000/api\n';

/** The issue lines of check-config's stderr: `<file>: <key>: <message>`. */
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

// Each of these once passed check-config and then stopped `run` with "edge cannot start" and
// no file or key. Both commands now go through loadConfigDir, so they refuse it alike.
const REFUSED_AT_LOAD: {
  name: string;
  config: unknown;
  routes: string;
  file: string;
  key: string;
}[] = [
  {
    name: 'a CIDR prefix with a leading zero',
    config: {
      secret: SECRET,
      users: [{ username: 'admin', password: 'pw', allow: ['10.0.0.0/08'] }],
    },
    routes: VALID_ROUTES,
    file: 'config.json',
    key: 'users[0].allow[0]',
  },
  {
    name: 'a target with credentials',
    config: { secret: SECRET, users: [{ username: 'admin', password: 'pw' }] },
    routes: 'routes:\n  - prefix: /api\n    target: http://user:pw@127.0.0.1:8000/api\n',
    file: 'routes.yml',
    key: 'routes[0].target',
  },
  {
    name: 'a malformed Argon2 hash',
    config: { secret: SECRET, users: [{ username: 'admin', password: '$argon2id$v=19$garbage' }] },
    routes: VALID_ROUTES,
    file: 'config.json',
    key: 'users[0].password',
  },
];

for (const c of REFUSED_AT_LOAD) {
  t.test(`check-config and run both refuse ${c.name} with file: key: rule`, async (t) => {
    const dir = t.testdir({ 'config.json': JSON.stringify(c.config), 'routes.yml': c.routes });
    const check = await runCli(['check-config', '--config-dir', dir]);
    t.equal(check.code, 1);
    const issues = lines(check.stderr);
    t.equal(issues.length, 1, check.stderr);
    const prefix = `${join(dir, c.file)}: ${c.key}: `;
    t.ok(issues[0]?.startsWith(prefix), `${issues[0]} starts with ${prefix}`);
    t.ok((issues[0]?.length ?? 0) > prefix.length, 'with a rule');
    t.notMatch(check.stderr, /garbage|user:pw/, 'the offending secret is not echoed');

    const run = await runCli(['run', '--config-dir', dir, '--data-dir', join(dir, 'data')]);
    t.equal(run.code, 1, 'run refuses it too, before starting any edge');
    t.ok(lines(run.stderr).includes(issues[0] ?? 'missing'), 'with the same line');
  });
}

t.test('check-config: the browser-session security keys are built, so they load', async (t) => {
  const config = {
    secret: SECRET,
    cors_origins: ['https://app.example'],
    session_cookie: true,
    login_via_otp: true,
    users: [{ username: 'admin', password: 'pw', totp: true }],
  };
  const dir = t.testdir({
    'config.json': JSON.stringify(config),
    'routes.yml': VALID_ROUTES,
  });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.notMatch(res.stderr, /not supported yet/);
});

t.test('check-config: a key without effect is a warning, exit 0', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({
      secret: SECRET,
      users: [],
      max_connections: 500,
    }),
    'routes.yml': `${VALID_ROUTES}    cache: true\n`,
  });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, `warning: ${join(dir, 'config.json')}: max_connections: has no effect`);
  // routes[].cache is built (issue 12): accepted without a word.
  t.notMatch(res.stderr, 'routes[0].cache');
});

t.test('check-config with tls: the certificate pair is checked', async (t) => {
  const config = JSON.stringify({ secret: SECRET, users: [], tls: true });
  const none = t.testdir({ 'config.json': config, 'routes.yml': 'routes: []\n' });
  const pending = await runCli(['check-config', '--config-dir', none]);
  t.equal(pending.code, 0, pending.stderr);
  t.match(pending.stderr, `warning: ${join(none, 'certs')}: (file): `);
  t.match(pending.stderr, /will be generated at first start/);

  const half = t.testdir({
    'config.json': config,
    'routes.yml': 'routes: []\n',
    certs: { 'cert.pem': 'not a certificate' },
  });
  const res = await runCli(['check-config', '--config-dir', half]);
  t.equal(res.code, 1);
  t.same(
    lines(res.stderr).map((l) => l.split(': ').slice(0, 2)),
    [[join(half, 'certs', 'key.pem'), '(file)']],
  );
});

t.test(
  'run: a no-effect key warns at start; a reload with an invalid security setting is refused',
  async (t) => {
    const upstream = await startUpstream();
    t.teardown(() => upstream.close());
    const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n    secure: false\n`;
    const noEffect = { max_connections: 500 };
    const gw = await startGateway({ routes, config: noEffect });
    t.teardown(() => gw.stop());
    t.match(
      gw.output(),
      /config\.json: max_connections: has no effect/,
      'the start logs the warning',
    );

    const before = JSON.parse(await readFile(join(gw.configDir, 'config.json'), 'utf8')) as {
      port: number;
    };
    await writeConfig(gw.configDir, before.port, {
      routes,
      // `null` can never be a CORS origin (README "CORS"): an error, not a silent no-op.
      config: { ...noEffect, cors_origins: ['null'] },
    });
    gw.proc.kill('SIGHUP');
    t.ok(
      await waitFor(
        () => gw.output().includes('invalid configuration, keeping the running one'),
        15_000,
      ),
      'the reload is refused',
    );
    t.match(gw.output(), /"key":"cors_origins\[0\]"/);
    t.equal((await fetch(`${gw.url}/api/x`)).status, 200, 'the running config keeps serving');
    t.ok(await login(gw.url), 'logins still work');
    t.equal(gw.proc.exitCode, null, 'the gateway is still running');
  },
);

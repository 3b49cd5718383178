import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t, { type Test } from 'tap';
import { parseConfig } from '../conf/parse.js';
import { ROUTES_EXAMPLE_YML } from '../conf/routes-example.js';
import { hashPassword, verifyPassword } from '../crypto-pool/password.js';
import { type CliProcess, isListening, runCli, spawnCli } from './helpers/cli.js';
import { freePort } from './helpers/free-port.js';

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
const count = (text: string, part: string) => text.split(part).length - 1;
const started = (out: string) => out.includes('gateway started');
const ADMIN_PASSWORD = /^ {2}password: (\S+)$/m;

/** Spawns the CLI and makes sure it is gone when the test ends, whatever happened. */
function spawnOwned(t: Test, args: string[]): CliProcess {
  const child = spawnCli(args);
  t.teardown(() => child.stop(2_000));
  return child;
}

t.test(
  'first start on an empty dir writes a private config and shows the password once',
  async (t) => {
    const root = t.testdir({});
    const configDir = join(root, 'conf');
    const args = ['--config-dir', configDir, '--data-dir', join(root, 'data')];
    const first = spawnOwned(t, args);
    t.ok(
      await first.waitForOutput((out) => ADMIN_PASSWORD.test(out), 30_000),
      `password block printed\n${first.stdout()}${first.stderr()}`,
    );
    // The generated config listens on 0.0.0.0:8080, which may be busy here: let the start
    // succeed or fail, then stop it. Only what happens before listening is checked.
    await first.waitForOutput((out) => started(out), 20_000);
    await first.stop();
    const stdout = first.stdout();
    const password = ADMIN_PASSWORD.exec(stdout)?.[1] ?? '';
    t.match(password, /^[A-Za-z0-9_-]{16,}$/);
    t.match(stdout, `created ${join(configDir, 'config.json')}`);
    t.equal(count(stdout, password), 1, 'the password is printed exactly once');
    t.equal(count(first.stderr(), password), 0, 'and never on stderr');

    const configFile = join(configDir, 'config.json');
    const routesFile = join(configDir, 'routes.yml');
    t.equal(await modeOf(configDir), 0o700, 'config dir is 0700');
    t.equal(await modeOf(configFile), 0o600, 'config.json is 0600');
    const text = await readFile(configFile, 'utf8');
    t.equal(count(text, password), 0, 'the password is not in config.json');
    const routesText = await readFile(routesFile, 'utf8');
    t.equal(routesText, ROUTES_EXAMPLE_YML, 'routes.yml is the commented example');
    t.same(yaml.load(routesText), { routes: [] }, 'with no active route');

    const raw = JSON.parse(text) as { secret: string; token_admin: string };
    const parsed = parseConfig(raw, yaml.load(routesText), {
      config: configFile,
      routes: routesFile,
    });
    t.ok(raw.secret.length >= 64, 'secret of at least 64 characters');
    t.match(raw.token_admin, /^[0-9a-f]{64}$/);
    const admin = parsed.config.users.find((u) => u.username === 'admin');
    t.match(admin?.password, /^\$argon2id\$/);
    t.equal(
      await verifyPassword(admin?.password ?? '', password),
      true,
      'hash of the shown password',
    );
    t.equal(await verifyPassword(admin?.password ?? '', `${password}x`), false);

    t.test('a second start shows no password and keeps the secret', async (t) => {
      // On a free port this time, so the second start really gets to listening.
      const port = await freePort();
      const edited = text
        .replace('"port": 8080', `"port": ${port}`)
        .replace('"0.0.0.0"', '"127.0.0.1"');
      t.not(edited, text, 'port changed for the second start');
      await writeFile(configFile, edited);
      const second = spawnOwned(t, args);
      t.ok(
        await second.waitForOutput(started, 30_000),
        `started\n${second.stdout()}${second.stderr()}`,
      );
      t.equal((await second.stop()).code, 0);
      t.notMatch(second.stdout(), /First start|^\s*password:/im);
      t.equal(count(second.stdout() + second.stderr(), password), 0);
      const after = await readFile(configFile, 'utf8');
      t.equal(after, edited, 'config.json untouched');
      t.equal((JSON.parse(after) as { secret: string }).secret, raw.secret);
    });
  },
);

t.test('a plaintext password is hashed in place at start', async (t) => {
  const dir = t.testdir({ 'routes.yml': 'routes: []\n' });
  const port = await freePort();
  const plaintext = 'plain "text" pässword';
  const otherHash = await hashPassword('other-password');
  // Odd but valid spacing, key order and number spelling must all survive the rewrite.
  const original = `{
\t"secret":   "${'k'.repeat(80)}",
  "token_admin": "${'b'.repeat(64)}", "host": "127.0.0.1",
  "port": ${port}, "worker": 1, "num_instances": 1,
  "client_timeout": 2.0e3,
  "users": [
    {"username": "carol", "password": ${JSON.stringify(plaintext)}, "roles": ["x"]},
    {"password": "${otherHash}", "username": "dave"}
  ]
}
`;
  const configFile = join(dir, 'config.json');
  await writeFile(configFile, original, { mode: 0o600 });
  const gw = spawnOwned(t, ['--config-dir', dir, '--data-dir', join(dir, 'data')]);
  t.ok(await gw.waitForOutput(started, 30_000), `started\n${gw.stdout()}${gw.stderr()}`);

  const after = await readFile(configFile, 'utf8');
  const hash = (JSON.parse(after) as { users: { password: string }[] }).users[0]?.password ?? '';
  t.match(hash, /^\$argon2id\$/, 'carol now has an argon2id hash');
  t.equal(await verifyPassword(hash, plaintext), true);
  t.equal(
    after.replace(JSON.stringify(hash), JSON.stringify(plaintext)),
    original,
    'every other byte unchanged',
  );
  t.equal(await modeOf(configFile), 0o600, 'mode kept');
  t.equal(count(gw.stdout() + gw.stderr(), plaintext), 0, 'the plaintext is never logged');

  const res = await fetch(`http://127.0.0.1:${port}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'carol', password: plaintext }),
  });
  t.equal(res.status, 200, 'login with the plaintext password');
  t.match(await res.json(), { token: String });
  t.equal((await gw.stop()).code, 0, 'SIGTERM stops it with exit code 0');
});

t.test('an invalid config stops the start before anything listens', async (t) => {
  const port = await freePort();
  const original = JSON.stringify({
    secret: 'short',
    host: '127.0.0.1',
    port,
    timezone: 'Nowhere/Atlantis',
    users: [{ username: 'erin', password: 'plaintext-stays' }],
  });
  const dir = t.testdir({ 'config.json': original, 'routes.yml': 'routes: []\n' });
  const res = await runCli(['--config-dir', dir, '--data-dir', join(dir, 'data')]);
  t.equal(res.code, 1, 'exit code 1');
  const configFile = join(dir, 'config.json');
  t.match(res.stderr, `${configFile}: secret: `);
  t.match(res.stderr, `${configFile}: timezone: `);
  t.notOk(started(res.stdout), 'never started');
  t.equal(await isListening(port), false, 'nothing listens on the configured port');
  t.equal(await readFile(configFile, 'utf8'), original, 'an invalid file is not rewritten');
});

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ensureConfigDir, ensureSelfSignedCert } from '../conf/first-run.js';
import { loadConfigDir } from '../conf/load.js';
import { ROUTES_EXAMPLE_YML } from '../conf/routes-example.js';
import { hashPassword, verifyPassword } from '../crypto-pool/password.js';

const hash = (pw: string) => hashPassword(pw);

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

t.test('creates a private config dir that the loader accepts', async (t) => {
  const dir = join(t.testdir({}), 'etc', 'proxyauth');
  const result = await ensureConfigDir(dir, { hash });
  t.equal(result.created, true);
  t.match(result.adminPassword, /^[A-Za-z0-9_-]{24}$/);

  t.equal(await modeOf(dir), 0o700);
  t.equal(await modeOf(join(dir, 'config.json')), 0o600);
  t.equal(await modeOf(join(dir, 'routes.yml')), 0o600);
  t.equal(await readFile(join(dir, 'routes.yml'), 'utf8'), ROUTES_EXAMPLE_YML);

  const text = await readFile(join(dir, 'config.json'), 'utf8');
  t.notMatch(text, result.adminPassword ?? 'missing', 'the password is stored only as a hash');
  const { config, routes, warnings } = await loadConfigDir(dir);
  t.same(routes, []);
  t.same(warnings, []);
  t.equal(config.secret.length, 96);
  t.match(config.token_admin, /^[0-9a-f]{64}$/);
  t.equal(config.host, '0.0.0.0');
  t.equal(config.port, 8080);
  t.equal(config.tls, false);
  t.equal(config.worker, 2);
  t.equal(config.num_instances, 2);
  t.equal(config.timezone, 'UTC');
  t.equal(config.users.length, 1);
  const [admin] = config.users;
  t.equal(admin?.username, 'admin');
  t.same(admin?.roles, ['admin']);
  t.ok(await verifyPassword(admin?.password ?? '', result.adminPassword ?? ''));
  // Every default is written out, so the operator sees what can be tuned.
  const written = JSON.parse(text) as Record<string, unknown>;
  for (const key of [
    'max_idle_per_host',
    'keep_alive',
    'client_timeout',
    'ratelimit_auth',
    'log',
    'csrf_token',
  ]) {
    t.ok(key in written, `${key} written out`);
  }
});

t.test('two first starts get different secrets', async (t) => {
  const root = t.testdir({});
  await ensureConfigDir(join(root, 'a'), { hash });
  await ensureConfigDir(join(root, 'b'), { hash });
  const secret = async (d: string) => (await loadConfigDir(join(root, d))).config.secret;
  t.not(await secret('a'), await secret('b'));
});

t.test('an existing config.json is left alone', async (t) => {
  const dir = t.testdir({ 'config.json': '{"mine": true}' });
  let hashed = 0;
  const counting = async (pw: string) => {
    hashed++;
    return hash(pw);
  };
  t.same(await ensureConfigDir(dir, { hash: counting }), { created: false });
  t.equal(await readFile(join(dir, 'config.json'), 'utf8'), '{"mine": true}');
  t.equal(hashed, 0);
});

t.test('an existing routes.yml is kept', async (t) => {
  const dir = t.testdir({ 'routes.yml': 'routes: []\n# mine\n' });
  t.equal((await ensureConfigDir(dir, { hash })).created, true);
  t.equal(await readFile(join(dir, 'routes.yml'), 'utf8'), 'routes: []\n# mine\n');
});

t.test('self-signed certificate: generated once, key private', async (t) => {
  const dir = t.testdir({});
  const first = await ensureSelfSignedCert(dir);
  t.equal(first.created, true);
  t.equal(first.certFile, join(dir, 'certs', 'cert.pem'));
  t.equal(await modeOf(first.keyFile), 0o600);
  t.equal(await modeOf(join(dir, 'certs')), 0o700);
  const cert = new X509Certificate(await readFile(first.certFile));
  t.match(cert.subject, /CN=proxyauth/);
  t.match(cert.subjectAltName, /DNS:localhost/);
  t.ok(cert.checkPrivateKey(createPrivateKey(await readFile(first.keyFile))));
  const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
  t.ok(days > 824 && days < 826, `valid 825 days (${days})`);

  const before = await readFile(first.certFile);
  t.equal((await ensureSelfSignedCert(dir)).created, false);
  t.ok((await readFile(first.certFile)).equals(before));
});

t.test('self-signed certificate: a lone cert.pem is never overwritten', async (t) => {
  const dir = t.testdir({ certs: { 'cert.pem': 'operator cert' } });
  await t.rejects(ensureSelfSignedCert(dir), { code: 'TLS_CERT_INCOMPLETE' });
  t.equal(await readFile(join(dir, 'certs', 'cert.pem'), 'utf8'), 'operator cert');
  await writeFile(join(dir, 'certs', 'key.pem'), 'operator key');
  t.equal((await ensureSelfSignedCert(dir)).created, false);
});

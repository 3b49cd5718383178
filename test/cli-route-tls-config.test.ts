import { execFile } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { makeCertAuthority } from './helpers/cert-authority.js';
import { runCli } from './helpers/cli.js';

// The files of routes.yml's `cert` and `ca` are read and checked by the one validation that
// check-config and run share (conf/load.ts): a file that cannot be used is a config error
// naming routes.yml, the route's key and its prefix, never a 502 at the first request.

t.jobs = 4;
const SECRET = 's'.repeat(64);
const pkiDir = t.testdir({});
const pki = await makeCertAuthority(pkiDir);
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** A config dir whose routes.yml has one https route with `extra` YAML lines (4 spaces). */
async function configDir(t: Test, extra: string[]) {
  const dir = t.testdir({
    'config.json': JSON.stringify({ secret: SECRET, users: [] }),
    'routes.yml': `routes:\n  - prefix: /api\n    target: https://127.0.0.1:9/api\n${extra.map((l) => `    ${l}\n`).join('')}`,
  });
  return dir;
}

const CASES: { name: string; extra: string[]; key: string; message: RegExp }[] = [
  {
    name: 'a PKCS#12 file with the wrong password',
    extra: [`cert: {file: ${pki.clientP12File}, password: "not-the-password"}`],
    key: 'routes[0].cert',
    message:
      /route "\/api": .*client\.p12: cannot be opened: wrong password, or not a PKCS#12 file/,
  },
  {
    name: 'a PEM file that is not PKCS#12',
    extra: [`cert: {file: ${pki.clientCertFile}, password: "x"}`],
    key: 'routes[0].cert',
    message: /not a PKCS#12 file/,
  },
  {
    name: 'a PEM key that does not match the certificate',
    extra: [`cert: {file: ${pki.clientCertFile}, key: ${pki.strayKeyFile}}`],
    key: 'routes[0].cert',
    message: /route "\/api": .*not a usable certificate and matching private key \(.*mismatch/,
  },
  {
    name: 'a missing certificate file',
    extra: ['cert: {file: nowhere.p12, password: "x"}'],
    key: 'routes[0].cert.file',
    message: /route "\/api": .*nowhere\.p12: not found/,
  },
  {
    name: 'a missing key file',
    extra: [`cert: {file: ${pki.clientCertFile}, key: /nonexistent/client.key}`],
    key: 'routes[0].cert.key',
    message: /\/nonexistent\/client\.key: not found/,
  },
  {
    name: 'a CA file without a certificate',
    extra: [`ca: ${pki.clientKeyFile}`],
    key: 'routes[0].ca',
    message: /route "\/api": .*expected PEM CA certificates/,
  },
  {
    name: 'a directory as CA file',
    extra: [`ca: ${pkiDir}`],
    key: 'routes[0].ca',
    message: /not a regular file/,
  },
];

for (const c of CASES) {
  const who = c === CASES[0] ? 'check-config and run refuse' : 'check-config refuses';
  t.test(`${who} ${c.name}`, async (t) => {
    const dir = await configDir(t, c.extra);
    const check = await runCli(['check-config', '--config-dir', dir]);
    t.equal(check.code, 1, check.stderr);
    const issues = lines(check.stderr);
    t.equal(issues.length, 1, check.stderr);
    const prefix = `${join(dir, 'routes.yml')}: ${c.key}: `;
    t.ok(issues[0]?.startsWith(prefix), `${issues[0]} starts with ${prefix}`);
    t.match(issues[0], c.message);
    t.notMatch(check.stderr, /not-the-password/, 'the password is not echoed');
    if (c !== CASES[0]) return;
    const run = await runCli(['run', '--config-dir', dir, '--data-dir', join(dir, 'data')]);
    t.equal(run.code, 1, 'run refuses it too, before starting any edge');
    t.ok(lines(run.stderr).includes(issues[0] ?? 'missing'), 'with the same line');
  });
}

t.test('relative paths are relative to the config dir; good files pass', async (t) => {
  const dir = await configDir(t, [
    'ca: pki/ca.crt',
    'cert: {file: pki/client.p12, password: "p12-secret-Pa55"}',
  ]);
  await mkdir(join(dir, 'pki'));
  await copyFile(pki.caFile, join(dir, 'pki', 'ca.crt'));
  await copyFile(pki.clientP12File, join(dir, 'pki', 'client.p12'));
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 0, res.stderr);
  t.equal(pki.clientP12Password, 'p12-secret-Pa55', 'the password this test wrote');
});

t.test('an encrypted PEM key is refused with the reason', async (t) => {
  const encrypted = join(pkiDir, 'client-encrypted.key');
  await promisify(execFile)('openssl', [
    'pkey',
    '-in',
    pki.clientKeyFile,
    '-aes256',
    '-passout',
    'pass:xyz',
    '-out',
    encrypted,
  ]);
  const dir = await configDir(t, [`cert: {file: ${pki.clientCertFile}, key: ${encrypted}}`]);
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 1);
  t.match(
    res.stderr,
    /routes\[0\]\.cert\.key: route "\/api": .*encrypted, and PEM keys take no password/,
  );
});

t.test('tls_verify: false is a warning; settings on an http route are errors', async (t) => {
  const dir = await configDir(t, ['tls_verify: false']);
  const ok = await runCli(['check-config', '--config-dir', dir]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stderr + ok.stdout, /routes\[0\]\.tls_verify: false: route "\/api" does not verify/);
  const http = t.testdir({
    'config.json': JSON.stringify({ secret: SECRET, users: [] }),
    'routes.yml': `routes:\n  - prefix: /api\n    target: http://127.0.0.1:9/api\n    ca: ${pki.caFile}\n`,
  });
  const refused = await runCli(['check-config', '--config-dir', http]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /routes\[0\]\.ca: applies to https upstreams only/);
});

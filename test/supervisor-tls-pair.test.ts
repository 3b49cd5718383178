import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { installTlsPair, pruneTlsCopies, readTlsPair } from '../supervisor/tls-pair.js';

/** A self-signed P-256 pair from openssl; the key encrypted when `passphrase` is given. */
function makePair(dir: string, name: string, passphrase?: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  const keyArgs = passphrase ? ['-passout', `pass:${passphrase}`] : ['-nodes'];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      ...keyArgs,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

const work = t.testdir({});
const a = makePair(work, 'a');
const b = makePair(work, 'b');

function configDir(files: { cert?: string; key?: string }): string {
  const dir = join(work, `conf-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(dir, 'certs'), { recursive: true });
  if (files.cert !== undefined) writeFileSync(join(dir, 'certs', 'cert.pem'), files.cert);
  if (files.key !== undefined) writeFileSync(join(dir, 'certs', 'key.pem'), files.key);
  return dir;
}

t.test('a matching pair is read with its fingerprints', async (t) => {
  const pair = await readTlsPair(configDir(a));
  t.equal(pair.certFingerprint256, new X509Certificate(a.cert).fingerprint256);
  t.match(pair.fingerprint, /^[0-9a-f]{64}$/);
  t.equal((await readTlsPair(configDir(a))).fingerprint, pair.fingerprint, 'stable');
  const otherKeyBytes = await readTlsPair(configDir({ cert: a.cert, key: `${a.key}\n` }));
  t.not(otherKeyBytes.fingerprint, pair.fingerprint, 'any byte of either file changes it');
  t.ok(pair.validTo.getTime() > Date.now());
});

t.test('an unusable pair names the file at fault', async (t) => {
  const cases: [string, { cert?: string; key?: string }, string, RegExp][] = [
    ['key missing', { cert: a.cert }, 'key.pem', /missing/],
    ['cert missing', { key: a.key }, 'cert.pem', /missing/],
    ['mismatched', { cert: a.cert, key: b.key }, 'key.pem', /does not belong/],
    ['cert cut short', { cert: a.cert.slice(0, 200), key: a.key }, 'cert.pem', /certificate/],
    ['key cut short', { cert: a.cert, key: a.key.slice(0, 60) }, 'key.pem', /private key/],
    [
      'key encrypted',
      { cert: a.cert, key: makePair(work, 'enc', 'secret').key },
      'key.pem',
      /private key/,
    ],
  ];
  for (const [name, files, file, reason] of cases) {
    const dir = configDir(files);
    await t.rejects(
      readTlsPair(dir),
      { code: 'TLS_CERT_INVALID', file: join(dir, 'certs', file), reason },
      name,
    );
  }
});

t.test('copies for the edges: private, idempotent, pruned', async (t) => {
  const data = t.testdir({});
  const pairA = await readTlsPair(configDir(a));
  const pairB = await readTlsPair(configDir(b));
  const files = await installTlsPair(pairA, data);
  t.equal(readFileSync(files.certFile, 'utf8'), a.cert);
  t.equal(readFileSync(files.keyFile, 'utf8'), a.key);
  t.equal(statSync(files.keyFile).mode & 0o777, 0o600);
  t.equal(statSync(join(data, 'tls', pairA.fingerprint)).mode & 0o777, 0o700);
  t.same(await installTlsPair(pairA, data), files, 'installing again changes nothing');
  await installTlsPair(pairB, data);
  await pruneTlsCopies(data, new Set([pairB.fingerprint]));
  t.same(readdirSync(join(data, 'tls')), [pairB.fingerprint]);
  await pruneTlsCopies(join(data, 'nowhere'), new Set());
});

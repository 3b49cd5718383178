import { X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { checkTlsFiles } from '../conf/tls-files.js';
import { installTlsPair, pruneTlsCopies } from '../supervisor/tls-pair.js';
import { makeSelfSignedPair } from './helpers/tls-pair.js';

const work = t.testdir({});
const [a, b] = await Promise.all([
  makeSelfSignedPair(work, 'a', { days: 1 }),
  makeSelfSignedPair(work, 'b', { days: 1 }),
]);

function configDir(files: { cert?: string; key?: string }): string {
  const dir = join(work, `conf-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(dir, 'certs'), { recursive: true });
  if (files.cert !== undefined) writeFileSync(join(dir, 'certs', 'cert.pem'), files.cert);
  if (files.key !== undefined) writeFileSync(join(dir, 'certs', 'key.pem'), files.key);
  return dir;
}

t.test('copies for the edges: private, idempotent, pruned', async (t) => {
  const data = t.testdir({});
  const pairA = (await checkTlsFiles(configDir(a))).files!;
  const pairB = (await checkTlsFiles(configDir(b))).files!;
  t.equal(pairA.certFingerprint256, new X509Certificate(a.cert).fingerprint256);
  const files = await installTlsPair(pairA, data);
  t.equal(readFileSync(files.certFile, 'utf8'), a.cert, 'the checked bytes, exactly');
  t.equal(readFileSync(files.keyFile, 'utf8'), a.key);
  t.equal(statSync(files.keyFile).mode & 0o777, 0o600);
  t.equal(statSync(join(data, 'tls', pairA.fingerprint)).mode & 0o777, 0o700);
  t.same(await installTlsPair(pairA, data), files, 'installing again changes nothing');
  await installTlsPair(pairB, data);
  await pruneTlsCopies(data, new Set([pairB.fingerprint]));
  t.same(readdirSync(join(data, 'tls')), [pairB.fingerprint]);
  await pruneTlsCopies(join(data, 'nowhere'), new Set());
});

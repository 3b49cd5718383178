import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { ensureSelfSignedCert } from '../conf/first-run.js';
import { loadConfigDir } from '../conf/load.js';
import { checkTlsFiles } from '../conf/tls-files.js';
import { makeSelfSignedPair } from './helpers/tls-pair.js';

interface Pair {
  cert: string;
  key: string;
}

/** A self-signed pair made by the same code as first start, in a scratch dir. */
async function makePair(dir: string): Promise<Pair> {
  const { certFile, keyFile } = await ensureSelfSignedCert(dir);
  return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

// Generated once: openssl takes a moment.
const scratch = t.testdir({});
const pairs = Promise.all([makePair(join(scratch, 'a')), makePair(join(scratch, 'b'))]);

/** Fills `<dir>/certs` with the given files (undefined: absent); returns `dir`. */
async function certDir(dir: string, files: { cert?: string; key?: string }): Promise<string> {
  await mkdir(join(dir, 'certs'));
  if (files.cert !== undefined) await writeFile(join(dir, 'certs', 'cert.pem'), files.cert);
  if (files.key !== undefined)
    await writeFile(join(dir, 'certs', 'key.pem'), files.key, { mode: 0o600 });
  return dir;
}

async function issuesOf(dir: string): Promise<[string, string, string][]> {
  try {
    await checkTlsFiles(dir);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => [i.file, i.key, i.message]);
    throw err;
  }
  throw new Error('accepted');
}

const certFile = (dir: string) => join(dir, 'certs', 'cert.pem');
const keyFile = (dir: string) => join(dir, 'certs', 'key.pem');

t.test('a matching pair: no warning, a fingerprint of both files', async (t) => {
  const [a] = await pairs;
  const dir = await certDir(t.testdir({}), a);
  const { files, warnings } = await checkTlsFiles(dir);
  t.same(warnings, []);
  t.equal(files?.certFile, certFile(dir));
  t.equal(files?.keyFile, keyFile(dir));
  t.match(files?.fingerprint, /^[0-9a-f]{64}$/);
  const again = await checkTlsFiles(dir);
  t.equal(again.files?.fingerprint, files?.fingerprint, 'stable while nothing changes');
  await appendFile(certFile(dir), '\n');
  const certChanged = (await checkTlsFiles(dir)).files?.fingerprint;
  t.not(certChanged, files?.fingerprint, 'changes with cert.pem');
  await appendFile(keyFile(dir), '\n');
  t.not((await checkTlsFiles(dir)).files?.fingerprint, certChanged, 'changes with key.pem');
});

t.test('a chain: the key is checked against the first (leaf) certificate', async (t) => {
  const [a, b] = await pairs;
  const chained = await certDir(t.testdir({}), { cert: a.cert + b.cert, key: a.key });
  t.ok((await checkTlsFiles(chained)).files, 'leaf + another certificate');
  const wrongLeaf = await certDir(t.testdir({}), { cert: b.cert + a.cert, key: a.key });
  t.same(
    (await issuesOf(wrongLeaf)).map((i) => i.slice(0, 2)),
    [[keyFile(wrongLeaf), '(file)']],
  );
  const broken = a.cert + b.cert.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!!!!!!!!!!!!!!!!!');
  const dir = await certDir(t.testdir({}), { cert: broken, key: a.key });
  const [issue] = await issuesOf(dir);
  t.same(issue?.slice(0, 2), [certFile(dir), '(file)']);
  t.match(issue?.[2], /certificate 2 of 2/);
});

t.test('both files missing: a warning, since run generates a pair', async (t) => {
  const dir = await certDir(t.testdir({}), {});
  const { files, warnings } = await checkTlsFiles(dir);
  t.equal(files, undefined);
  t.equal(warnings.length, 1);
  t.match(warnings[0], /will be generated at first start/);
  t.ok(warnings[0]?.startsWith(`${join(dir, 'certs')}: `), 'names the directory');
  t.same((await checkTlsFiles(t.testdir({}))).files, undefined, 'no certs dir at all');
});

t.test('one file without the other: an error naming the missing one', async (t) => {
  const [a] = await pairs;
  const certOnly = await certDir(t.testdir({}), { cert: a.cert });
  t.same(
    (await issuesOf(certOnly)).map((i) => i.slice(0, 2)),
    [[keyFile(certOnly), '(file)']],
  );
  const keyOnly = await certDir(t.testdir({}), { key: a.key });
  t.same(
    (await issuesOf(keyOnly)).map((i) => i.slice(0, 2)),
    [[certFile(keyOnly), '(file)']],
  );
});

t.test('unusable files: an error naming each file', async (t) => {
  const [a, b] = await pairs;
  const encrypted = createPrivateKey(a.key).export({
    type: 'pkcs8',
    format: 'pem',
    cipher: 'aes-256-cbc',
    passphrase: 'secret',
  }) as string;
  const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  const der = new X509Certificate(a.cert).raw.toString('latin1');
  const cases: [string, { cert?: string; key?: string }, 'cert' | 'key' | 'both', RegExp][] = [
    ['garbage cert', { cert: 'hello', key: a.key }, 'cert', /PEM certificate/],
    ['DER cert', { cert: der, key: a.key }, 'cert', /PEM certificate/],
    ['a key in cert.pem', { cert: a.key, key: a.key }, 'cert', /PEM certificate/],
    [
      'truncated cert',
      { cert: a.cert.replace(/\n[A-Za-z0-9+/]{20}/, '\n'), key: a.key },
      'cert',
      /does not parse/,
    ],
    ['garbage key', { cert: a.cert, key: 'hello' }, 'key', /PEM private key/],
    ['a certificate in key.pem', { cert: a.cert, key: a.cert }, 'key', /PEM private key/],
    ['encrypted key', { cert: a.cert, key: encrypted }, 'key', /encrypted/],
    ['key of another certificate', { cert: a.cert, key: b.key }, 'key', /does not match/],
    ['key of another type', { cert: a.cert, key: otherRsa }, 'key', /does not match/],
    ['both broken', { cert: 'x', key: 'y' }, 'both', /PEM/],
  ];
  for (const [name, files, which, message] of cases) {
    const dir = await certDir(t.testdir({}), files);
    const found = await issuesOf(dir);
    const expected = {
      cert: [certFile(dir)],
      key: [keyFile(dir)],
      both: [certFile(dir), keyFile(dir)],
    }[which];
    t.same(
      found.map(([file, key]) => [file, key]),
      expected.map((f) => [f, '(file)']),
      name,
    );
    t.match(found[0]?.[2], message, name);
    const secretLine = a.key.split('\n')[1] ?? 'missing';
    t.notOk(
      found.some(([, , m]) => m.includes(secretLine)),
      `${name}: file content is not echoed`,
    );
  }
});

t.test('a pair the TLS server cannot load is an error, whatever node:crypto says', async (t) => {
  const work = t.testdir({});
  const cases: [string, string[], boolean][] = [
    ['ECDSA P-256', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], true],
    ['ECDSA P-384', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], true],
    ['RSA 2048', ['rsa:2048'], true],
    ['Ed25519', ['ed25519'], true],
    ['RSA-PSS', ['rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048'], false],
    ['ECDSA secp256k1', ['ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], false],
  ];
  for (const [name, keyType, usable] of cases) {
    const pair = await makeSelfSignedPair(work, name.replace(/\W/g, ''), { keyType });
    const dir = await certDir(t.testdir({}), pair);
    if (usable) {
      t.ok((await checkTlsFiles(dir)).files, `${name}: accepted`);
    } else {
      const found = await issuesOf(dir);
      t.same(
        found.map(([file]) => file),
        [keyFile(dir)],
        `${name}: refused, naming key.pem`,
      );
      t.match(found[0]?.[2], /TLS server cannot use this pair/);
    }
  }
});

t.test('a file that cannot be read is an error naming it', async (t) => {
  const [a] = await pairs;
  const dir = await certDir(t.testdir({}), { key: a.key });
  await mkdir(certFile(dir));
  const [issue] = await issuesOf(dir);
  t.same(issue?.slice(0, 2), [certFile(dir), '(file)']);
  t.match(issue?.[2], /cannot read \(EISDIR\)/);
});

t.test('outside the validity dates: a warning, not an error', async (t) => {
  const [a] = await pairs;
  const dir = await certDir(t.testdir({}), a);
  const cert = new X509Certificate(a.cert);
  const after = new Date(new Date(cert.validTo).getTime() + 1000);
  const expired = await checkTlsFiles(dir, after);
  t.ok(expired.files, 'still usable');
  t.equal(expired.warnings.length, 1);
  t.match(expired.warnings[0], /expired on/);
  t.ok(expired.warnings[0]?.startsWith(`${certFile(dir)}: `));
  const before = new Date(new Date(cert.validFrom).getTime() - 1000);
  const early = await checkTlsFiles(dir, before);
  t.ok(early.files);
  t.match(early.warnings, [/not valid before/]);
});

t.test('loadConfigDir checks the pair only when tls is true', async (t) => {
  const [a, b] = await pairs;
  const config = (tls: boolean) => JSON.stringify({ secret: 's'.repeat(64), tls });
  const mismatched = await certDir(t.testdir({}), { cert: a.cert, key: b.key });
  await writeFile(join(mismatched, 'routes.yml'), 'routes: []\n');

  await writeFile(join(mismatched, 'config.json'), config(false));
  const off = await loadConfigDir(mismatched);
  t.equal(off.tls, undefined, 'tls off: certs/ is not read');
  t.same(off.warnings, []);

  await writeFile(join(mismatched, 'config.json'), config(true));
  const error = await loadConfigDir(mismatched).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(error instanceof ConfigError, 'a ConfigError');
  t.same(
    (error as ConfigError).issues.map((i) => [i.file, i.key]),
    [[keyFile(mismatched), '(file)']],
  );

  const good = await certDir(t.testdir({}), a);
  await writeFile(join(good, 'config.json'), config(true));
  await writeFile(join(good, 'routes.yml'), 'routes: []\n');
  const loaded = await loadConfigDir(good);
  t.match(loaded.tls, {
    certFile: certFile(good),
    keyFile: keyFile(good),
    fingerprint: /^[0-9a-f]{64}$/,
  });
  t.ok(Object.isFrozen(loaded.tls));

  const none = t.testdir({ 'config.json': config(true), 'routes.yml': 'routes: []\n' });
  const pending = await loadConfigDir(none);
  t.equal(pending.tls, undefined);
  t.match(pending.warnings, [/will be generated at first start/]);
});

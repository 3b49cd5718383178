import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CodedError } from '../shared/coded-error.js';
import type { TlsFiles } from '../shared/ipc.js';

/** A certificate pair that cannot be served; `file` names the file at fault. */
export class CertificateError extends CodedError<'TLS_CERT_INVALID'> {
  readonly file: string;
  readonly reason: string;

  constructor(file: string, reason: string) {
    super('TLS_CERT_INVALID', `${file}: ${reason}`);
    this.file = file;
    this.reason = reason;
  }
}

/** A validated pair, read once: what is checked is what the edges get. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 (hex) over both files' bytes: any change to either file changes it. */
  fingerprint: string;
  /** The certificate's own SHA-256 fingerprint, as TLS clients show it (AA:BB:...). */
  certFingerprint256: string;
  /** The certificate's notAfter. */
  validTo: Date;
}

/** Where the pair lives in a config dir. */
export function tlsPaths(configDir: string): { certFile: string; keyFile: string } {
  return {
    certFile: join(configDir, 'certs', 'cert.pem'),
    keyFile: join(configDir, 'certs', 'key.pem'),
  };
}

/**
 * Reads certs/cert.pem and certs/key.pem and checks that they can be served: a certificate
 * that parses, an unencrypted private key that parses, and a key that belongs to the
 * certificate. A half-written or mismatched pair (a renewal caught midway) throws
 * CertificateError naming the file and the reason.
 */
export async function readTlsPair(configDir: string): Promise<TlsPair> {
  const { certFile, keyFile } = tlsPaths(configDir);
  const cert = await readPem(certFile);
  const key = await readPem(keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new CertificateError(certFile, `not a usable certificate (${(err as Error).message})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new CertificateError(
      keyFile,
      `not a usable unencrypted private key (${(err as Error).message})`,
    );
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new CertificateError(keyFile, `does not belong to the certificate in ${certFile}`);
  const fingerprint = createHash('sha256').update(cert).update('\0').update(key).digest('hex');
  return {
    cert,
    key,
    fingerprint,
    certFingerprint256: x509.fingerprint256,
    validTo: new Date(x509.validTo),
  };
}

async function readPem(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CertificateError(file, code === 'ENOENT' ? 'missing' : (err as Error).message);
  }
}

/**
 * Copies a validated pair to `<dataDir>/tls/<fingerprint>/` (0700 dir, 0600 files) and returns
 * the paths edges load. Edges never read the operator's files: a pair replaced halfway after
 * validation cannot reach a starting edge, and an edge restarted after a crash gets the pair
 * its generation was validated with. Idempotent.
 */
export async function installTlsPair(pair: TlsPair, dataDir: string): Promise<TlsFiles> {
  const dir = join(dataDir, 'tls', pair.fingerprint);
  const files: TlsFiles = {
    certFile: join(dir, 'cert.pem'),
    keyFile: join(dir, 'key.pem'),
    fingerprint: pair.fingerprint,
  };
  if ((await exists(files.certFile)) && (await exists(files.keyFile))) return files;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Each file is written under a temporary name and renamed, so a copy is whole or absent.
  await writeWhole(files.keyFile, pair.key);
  await writeWhole(files.certFile, pair.cert);
  return files;
}

/** Removes the copies of every pair but those in `keep` (fingerprints). */
export async function pruneTlsCopies(dataDir: string, keep: ReadonlySet<string>): Promise<void> {
  const root = join(dataDir, 'tls');
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await Promise.all(
    entries
      .filter((name) => !keep.has(name))
      .map((name) => rm(join(root, name), { recursive: true, force: true })),
  );
}

async function writeWhole(file: string, content: Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await rename(tmp, file);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

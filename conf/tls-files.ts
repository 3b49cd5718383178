import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tlsServerAccepts } from '../shared/tls-server-check.js';
import type { ConfigIssue } from './config-error.js';
import { ConfigError } from './config-error.js';

/** The certificate pair an edge serves with `tls: true`, checked. */
export interface CheckedTlsPair {
  certFile: string;
  keyFile: string;
  /**
   * SHA-256 (hex) over both files' bytes, length-prefixed: changes whenever either file's
   * content does, so a reload can tell whether the pair must be reloaded. Not the X.509
   * fingerprint of the certificate.
   */
  fingerprint: string;
  /** The certificate's own SHA-256 fingerprint as TLS clients show it (`AA:BB:...`), for logs. */
  certFingerprint256: string;
  /**
   * The checked content (PEM is ASCII): what was validated is what edges are given (the
   * supervisor installs these bytes, never a second read that a renewal could have changed).
   */
  pem: { cert: string; key: string };
}

/** What {@link checkTlsFiles} found: the pair, or none yet (first start generates one). */
export interface TlsCheck {
  files: CheckedTlsPair | undefined;
  /** `<file>: <key>: <message>` lines, e.g. an expired certificate. */
  warnings: string[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Checks `<configDir>/certs/cert.pem` and `key.pem`, the files an edge loads when `tls` is true:
 * every certificate in cert.pem parses (leaf first, then its chain), key.pem is an unencrypted
 * private key (the gateway has no passphrase setting), and the key belongs to the leaf. A
 * certificate outside its validity dates is a warning (clients decide), not an error. Both
 * files missing is a warning: `run` generates a self-signed pair. Throws ConfigError, each
 * issue naming the file (key `(file)`), when only one exists, one cannot be read, or the
 * checks fail. `now` is for tests.
 */
export async function checkTlsFiles(configDir: string, now = new Date()): Promise<TlsCheck> {
  const certFile = join(configDir, 'certs', 'cert.pem');
  const keyFile = join(configDir, 'certs', 'key.pem');
  const [cert, key] = await Promise.all([readPem(certFile), readPem(keyFile)]);
  if (cert.state === 'missing' && key.state === 'missing') {
    const dir = join(configDir, 'certs');
    const message =
      'cert.pem and key.pem not found: a self-signed pair will be generated at first start';
    return { files: undefined, warnings: [`${dir}: (file): ${message}`] };
  }
  const issues = [...readIssues(cert, certFile, keyFile), ...readIssues(key, keyFile, certFile)];
  if (cert.state !== 'read' || key.state !== 'read') throw new ConfigError(issues);
  const leaf = parseChain(cert.bytes.toString('utf8'), certFile, issues);
  const privateKey = parseKey(key.bytes.toString('utf8'), keyFile, issues);
  if (leaf !== undefined && privateKey !== undefined && !leaf.checkPrivateKey(privateKey)) {
    issues.push(fileIssue(keyFile, `does not match the certificate in ${certFile}`));
  }
  if (issues.length === 0 && !tlsServerAccepts(certFile, keyFile)) {
    issues.push(
      fileIssue(
        keyFile,
        'the TLS server cannot use this pair (key type or curve not supported): use an RSA, ECDSA P-256/P-384 or Ed25519 key',
      ),
    );
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    files: {
      certFile,
      keyFile,
      fingerprint: fingerprint(cert.bytes, key.bytes),
      certFingerprint256: leaf!.fingerprint256,
      pem: { cert: cert.bytes.toString('latin1'), key: key.bytes.toString('latin1') },
    },
    warnings: leaf === undefined ? [] : validityWarnings(leaf, certFile, now),
  };
}

type Read =
  | { state: 'read'; bytes: Buffer }
  | { state: 'missing' }
  | { state: 'unreadable'; code: string };

async function readPem(file: string): Promise<Read> {
  try {
    return { state: 'read', bytes: await readFile(file) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return code === 'ENOENT' ? { state: 'missing' } : { state: 'unreadable', code };
  }
}

function readIssues(read: Read, file: string, other: string): ConfigIssue[] {
  if (read.state === 'unreadable') return [fileIssue(file, `cannot read (${read.code})`)];
  if (read.state === 'missing') {
    // Generating only the missing half would pair a new key with an old certificate, or the
    // reverse: never overwrite or guess, let the operator decide.
    return [fileIssue(file, `not found while ${other} exists: give both files, or neither`)];
  }
  return [];
}

/** The leaf certificate, or undefined after pushing an issue. */
function parseChain(
  text: string,
  file: string,
  issues: ConfigIssue[],
): X509Certificate | undefined {
  // Other blocks are skipped, as OpenSSL does when it loads the chain file.
  const certs = [...text.matchAll(PEM_BLOCK)].filter((b) => b[1] === 'CERTIFICATE');
  if (certs.length === 0) {
    issues.push(fileIssue(file, 'expected a PEM certificate (-----BEGIN CERTIFICATE-----)'));
    return undefined;
  }
  const parsed: X509Certificate[] = [];
  for (const [i, block] of certs.entries()) {
    try {
      parsed.push(new X509Certificate(block[0]));
    } catch {
      issues.push(fileIssue(file, `certificate ${i + 1} of ${certs.length} does not parse`));
      return undefined;
    }
  }
  return parsed[0];
}

function parseKey(text: string, file: string, issues: ConfigIssue[]): KeyObject | undefined {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    issues.push(fileIssue(file, 'expected a PEM private key (-----BEGIN PRIVATE KEY-----)'));
    return undefined;
  }
  // PKCS#8 and legacy (Proc-Type) encryption; OpenSSL's own error for them says nothing useful.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(text)) {
    const message =
      'the private key is encrypted and the gateway has no passphrase setting: store it unencrypted, readable by the gateway only';
    issues.push(fileIssue(file, message));
    return undefined;
  }
  try {
    return createPrivateKey(text);
  } catch {
    issues.push(fileIssue(file, 'the private key does not parse'));
    return undefined;
  }
}

function validityWarnings(cert: X509Certificate, file: string, now: Date): string[] {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  // A warning, not an error: the gateway serves it all the same and each client decides.
  if (now < from) {
    return [`${file}: (file): not valid before ${from.toISOString()}: clients will refuse it`];
  }
  if (now > to) return [`${file}: (file): expired on ${to.toISOString()}: clients will refuse it`];
  return [];
}

function fingerprint(cert: Buffer, key: Buffer): string {
  const hash = createHash('sha256');
  for (const bytes of [cert, key]) {
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(bytes.length));
    hash.update(length).update(bytes);
  }
  return hash.digest('hex');
}

function fileIssue(file: string, message: string): ConfigIssue {
  return { file, key: '(file)', message };
}

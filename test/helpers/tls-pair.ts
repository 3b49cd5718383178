import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** A certificate and its private key, PEM. */
export interface PemPair {
  cert: string;
  key: string;
}

/**
 * A new self-signed P-256 pair made by the `openssl` CLI in `dir` (files `<name>.crt` and
 * `<name>.key`); the key is encrypted when `passphrase` is given.
 */
export async function makeSelfSignedPair(
  dir: string,
  name: string,
  options: {
    days?: number;
    passphrase?: string;
    /** openssl's `-newkey` and `-pkeyopt` arguments; ECDSA P-256 by default. */
    keyType?: string[];
  } = {},
): Promise<PemPair> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  const keyArgs = options.passphrase ? ['-passout', `pass:${options.passphrase}`] : ['-nodes'];
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    ...(options.keyType ?? ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
    ...keyArgs,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    String(options.days ?? 2),
    '-subj',
    `/CN=${name}.test`,
  ]);
  return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
}

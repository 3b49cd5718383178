import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileExclusive } from './atomic-write.js';
import { ConfigFileError } from './config-file-error.js';
import type { Config } from './config-schema.js';
import { configSchema } from './config-schema.js';
import { ROUTES_EXAMPLE_YML } from './routes-example.js';

const execFileAsync = promisify(execFile);
const PRIVATE_FILE = 0o600;
const PRIVATE_DIR = 0o700;

/**
 * First start: when `<dir>/config.json` does not exist, creates `dir` (0700) and writes a
 * config.json (0600) with a random secret and token_admin, every default spelled out, and one
 * user `admin` with a random password stored only as `opts.hash(password)`; writes a commented
 * routes.yml with no active route when there is none. Returns the admin password, to be shown
 * once. Nothing is downloaded.
 */
export async function ensureConfigDir(
  dir: string,
  opts: { hash: (password: string) => Promise<string> },
): Promise<{ created: boolean; adminPassword?: string }> {
  const configFile = join(dir, 'config.json');
  if (await exists(configFile)) return { created: false };
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  const adminPassword = randomBytes(18).toString('base64url');
  const config = initialConfig(await opts.hash(adminPassword));
  const text = `${JSON.stringify(config, null, 2)}\n`;
  // Another process may have created it meanwhile: theirs wins, and their password is the one.
  if (!(await writeFileExclusive(configFile, text, { mode: PRIVATE_FILE })))
    return { created: false };
  await writeFileExclusive(join(dir, 'routes.yml'), ROUTES_EXAMPLE_YML, { mode: PRIVATE_FILE });
  return { created: true, adminPassword };
}

/**
 * For `tls: true`: when neither `<dir>/certs/cert.pem` nor `key.pem` exists, generates a
 * self-signed P-256 certificate for localhost with the `openssl` CLI (key 0600, dir 0700).
 * When only one of them exists, throws TLS_CERT_INCOMPLETE rather than overwrite it.
 */
export async function ensureSelfSignedCert(
  dir: string,
): Promise<{ created: boolean; certFile: string; keyFile: string }> {
  const certDir = join(dir, 'certs');
  const certFile = join(certDir, 'cert.pem');
  const keyFile = join(certDir, 'key.pem');
  const [hasCert, hasKey] = await Promise.all([exists(certFile), exists(keyFile)]);
  if (hasCert && hasKey) return { created: false, certFile, keyFile };
  if (hasCert || hasKey) {
    const [present, missing] = hasCert ? [certFile, keyFile] : [keyFile, certFile];
    throw new ConfigFileError('TLS_CERT_INCOMPLETE', `${missing} is missing (${present} exists)`);
  }
  await mkdir(certDir, { recursive: true, mode: PRIVATE_DIR });
  const suffix = `${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const tmpKey = join(certDir, `.key.pem.${suffix}`);
  const tmpCert = join(certDir, `.cert.pem.${suffix}`);
  try {
    // openssl writes into the existing file, so the key is never readable by others.
    await (await open(tmpKey, 'wx', PRIVATE_FILE)).close();
    await runOpenssl(tmpKey, tmpCert);
    await chmod(tmpKey, PRIVATE_FILE);
    await chmod(tmpCert, 0o644);
    await rename(tmpKey, keyFile);
    await rename(tmpCert, certFile);
  } finally {
    await Promise.all([rm(tmpKey, { force: true }), rm(tmpCert, { force: true })]);
  }
  return { created: true, certFile, keyFile };
}

function initialConfig(adminPasswordHash: string): Config {
  return configSchema.parse({
    secret: randomBytes(72).toString('base64url'),
    token_admin: randomBytes(32).toString('hex'),
    worker: 2,
    timezone: 'UTC',
    users: [{ username: 'admin', password: adminPasswordHash, roles: ['admin'] }],
  });
}

async function runOpenssl(keyFile: string, certFile: string): Promise<void> {
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '825',
    '-subj',
    '/CN=proxyauth',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ];
  try {
    await execFileAsync('openssl', args, { timeout: 60_000 });
  } catch (err) {
    throw new ConfigFileError(
      'OPENSSL_FAILED',
      `openssl could not create a certificate: ${String(err)}`,
      { cause: err },
    );
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

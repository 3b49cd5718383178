import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Files made by {@link makeCertAuthority} in its directory, absolute paths. */
export interface TestPki {
  /** The CA certificate (PEM) that signed the server and client certificates. */
  caFile: string;
  /** The server's certificate and key, for CN and SAN `localhost` / `127.0.0.1`. */
  server: { cert: string; key: string };
  /** A client certificate (CN `gateway-client`) signed by the CA: PEM pair and PKCS#12. */
  clientCertFile: string;
  clientKeyFile: string;
  clientP12File: string;
  clientP12Password: string;
  /** Another client certificate of the same CA (CN `second-client`), PKCS#12, same password. */
  secondP12File: string;
  /** A key that belongs to no certificate here: pairs with clientCertFile as a mismatch. */
  strayKeyFile: string;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args);
}

/** A new P-256 key at `file`. */
async function newKey(file: string): Promise<void> {
  await openssl([
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    file,
  ]);
}

/** Signs a new certificate for `key` with the CA (`ext`: an openssl extension config). */
async function issue(dir: string, name: string, cn: string, ext: string): Promise<string> {
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const cert = join(dir, `${name}.crt`);
  await writeFile(extFile, ext);
  await openssl([
    'req',
    '-new',
    '-key',
    join(dir, `${name}.key`),
    '-subj',
    `/CN=${cn}`,
    '-out',
    csr,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    extFile,
    '-out',
    cert,
  ]);
  return cert;
}

/**
 * A small PKI made with the `openssl` CLI in `dir`: a CA, a server certificate for
 * `localhost`/127.0.0.1 and a client certificate (also as PKCS#12 with a password), all P-256.
 */
export async function makeCertAuthority(dir: string): Promise<TestPki> {
  await newKey(join(dir, 'ca.key'));
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    join(dir, 'ca.key'),
    '-subj',
    '/CN=ProxyAuth Test CA',
    '-days',
    '2',
    '-out',
    join(dir, 'ca.crt'),
  ]);
  await newKey(join(dir, 'server.key'));
  const serverCert = await issue(
    dir,
    'server',
    'localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  await newKey(join(dir, 'client.key'));
  const clientCert = await issue(dir, 'client', 'gateway-client', 'extendedKeyUsage=clientAuth\n');
  const password = 'p12-secret-Pa55';
  const p12 = join(dir, 'client.p12');
  await openssl([
    'pkcs12',
    '-export',
    '-in',
    clientCert,
    '-inkey',
    join(dir, 'client.key'),
    '-passout',
    `pass:${password}`,
    '-out',
    p12,
  ]);
  await newKey(join(dir, 'second.key'));
  const secondCert = await issue(dir, 'second', 'second-client', 'extendedKeyUsage=clientAuth\n');
  const secondP12 = join(dir, 'second.p12');
  await openssl([
    'pkcs12',
    '-export',
    '-in',
    secondCert,
    '-inkey',
    join(dir, 'second.key'),
    '-passout',
    `pass:${password}`,
    '-out',
    secondP12,
  ]);
  await newKey(join(dir, 'stray.key'));
  return {
    caFile: join(dir, 'ca.crt'),
    server: {
      cert: await readFile(serverCert, 'utf8'),
      key: await readFile(join(dir, 'server.key'), 'utf8'),
    },
    clientCertFile: clientCert,
    clientKeyFile: join(dir, 'client.key'),
    clientP12File: p12,
    clientP12Password: password,
    secondP12File: secondP12,
    strayKeyFile: join(dir, 'stray.key'),
  };
}

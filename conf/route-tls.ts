import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { ConfigIssue } from './config-error.js';
import { ConfigError } from './config-error.js';
import type { RouteConfig } from './routes-schema.js';

/*
 * The files routes.yml's TLS settings name (`cert`, `ca`), read and checked by the supervisor's
 * load (so `check-config` reports them), then handed to the edges as bytes inside the config
 * snapshot: what was validated is what edges use, and a file replaced between the two reads
 * cannot slip in. Paths are absolute (resolve-cert-files.ts: relative to routes.yml's dir).
 */

/** A file larger than this is no certificate bundle: refused rather than read into memory. */
export const MAX_ROUTE_FILE_BYTES = 1024 * 1024;

/** File bytes by absolute path, base64 (they travel over IPC as JSON). */
export type RouteFiles = Readonly<Record<string, string>>;

/** The TLS files of `route`, each with the key that names it. */
function namedFiles(route: RouteConfig): [key: string, file: string][] {
  const out: [string, string][] = [];
  if (route.cert?.type === 'p12') out.push(['cert.file', route.cert.file]);
  if (route.cert?.type === 'pem')
    out.push(['cert.file', route.cert.file], ['cert.key', route.cert.key]);
  if (route.ca !== undefined) out.push(['ca', route.ca]);
  return out;
}

/**
 * Node's secure-context options for `route`'s upstream TLS: `ca` replaces the default roots,
 * `cert` is the client certificate (PKCS#12 `pfx` + `passphrase`, or PEM `cert` + `key`).
 * Undefined when the route sets neither. `bytes` returns a file's content (throws if absent).
 */
export function secureContextOptions(
  route: RouteConfig,
  bytes: (file: string) => Buffer,
): SecureContextOptions | undefined {
  if (route.cert === undefined && route.ca === undefined) return undefined;
  const options: SecureContextOptions = {};
  if (route.ca !== undefined) options.ca = bytes(route.ca);
  if (route.cert?.type === 'p12') {
    options.pfx = bytes(route.cert.file);
    options.passphrase = route.cert.password;
  }
  if (route.cert?.type === 'pem') {
    options.cert = bytes(route.cert.file);
    options.key = bytes(route.cert.key);
  }
  return options;
}

/**
 * Reads every file the routes' `cert` and `ca` name and checks each route's settings with
 * `tls.createSecureContext`, as the edges will use them. Throws ConfigError, each issue naming
 * `routesFile`, the route's key (`routes[2].cert`, `routes[2].ca`...) and its prefix, when a
 * file is missing, unreadable, larger than 1 MiB, a PKCS#12 file does not open with its
 * password, a PEM key does not match its certificate (or is encrypted: PEM keys take no
 * password), or a CA file holds no certificate.
 */
export async function readRouteFiles(
  routes: readonly RouteConfig[],
  routesFile: string,
): Promise<RouteFiles> {
  const issues: ConfigIssue[] = [];
  const files: Record<string, string> = {};
  const read = new Map<string, Promise<Buffer | string>>();
  const load = (file: string) => {
    let p = read.get(file);
    if (p === undefined) {
      p = readBounded(file);
      read.set(file, p);
    }
    return p;
  };
  const loaded = new Map<string, Buffer>();
  for (const [i, route] of routes.entries()) {
    for (const [key, file] of namedFiles(route)) {
      const got = await load(file);
      if (typeof got === 'string') issues.push(issue(routesFile, i, route, key, `${file}: ${got}`));
      else loaded.set(file, got);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  for (const [i, route] of routes.entries()) {
    const bytes = (file: string) => loaded.get(file)!;
    const problem = checkRoute(route, bytes);
    if (problem !== undefined) issues.push(issue(routesFile, i, route, problem[0], problem[1]));
  }
  if (issues.length > 0) throw new ConfigError(issues);
  for (const [file, bytes] of loaded) files[file] = bytes.toString('base64');
  return files;
}

/** The key and message of what is wrong with `route`'s TLS files, or undefined. */
function checkRoute(
  route: RouteConfig,
  bytes: (file: string) => Buffer,
): [key: string, message: string] | undefined {
  if (route.ca !== undefined) {
    // createSecureContext ignores what is not a PEM certificate: check that one is there.
    const text = bytes(route.ca).toString('latin1');
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    const parsed = (blocks ?? []).filter((b) => {
      try {
        new X509Certificate(b);
        return true;
      } catch {
        return false;
      }
    });
    if (parsed.length === 0 || parsed.length !== blocks?.length) {
      return ['ca', `${route.ca}: expected PEM CA certificates (-----BEGIN CERTIFICATE-----)`];
    }
  }
  const cert = route.cert;
  if (cert === undefined) return undefined;
  if (cert.type === 'pem' && /ENCRYPTED/.test(bytes(cert.key).toString('latin1'))) {
    return [
      'cert.key',
      `${cert.key}: the private key is encrypted, and PEM keys take no password: store it unencrypted, or use a PKCS#12 file with its password`,
    ];
  }
  try {
    createSecureContext(secureContextOptions(route, bytes));
    return undefined;
  } catch (err) {
    const reason = opensslReason(err);
    if (cert.type === 'p12') {
      return [
        'cert',
        `${cert.file}: cannot be opened: wrong password, or not a PKCS#12 file (${reason})`,
      ];
    }
    return [
      'cert',
      `${cert.file} and ${cert.key}: not a usable certificate and matching private key (${reason})`,
    ];
  }
}

/** OpenSSL's reason (`key values mismatch`, `mac verify failure`), without Node's prefixes. */
function opensslReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '').trim() || 'rejected by OpenSSL';
}

async function readBounded(file: string): Promise<Buffer | string> {
  try {
    const info = await stat(file);
    if (!info.isFile()) return 'not a regular file';
    if (info.size > MAX_ROUTE_FILE_BYTES) return 'larger than 1 MiB: not a certificate file';
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return code === 'ENOENT' ? 'not found' : `cannot read (${code})`;
  }
}

function issue(
  file: string,
  index: number,
  route: RouteConfig,
  key: string,
  message: string,
): ConfigIssue {
  return { file, key: `routes[${index}].${key}`, message: `route "${route.prefix}": ${message}` };
}

/**
 * Load-time warnings of the routes' upstream settings, `<file>: <key>: <message>`: a route
 * that skips certificate verification, and a proxy_config that proxy: false leaves unused.
 */
export function routeTlsWarnings(routes: readonly RouteConfig[], file: string): string[] {
  const out: string[] = [];
  routes.forEach((r, i) => {
    if (!r.tls_verify) {
      out.push(
        `${file}: routes[${i}].tls_verify: false: route "${r.prefix}" does not verify its https upstream's certificate, so anyone on the network path can impersonate the upstream and read its traffic`,
      );
    }
    if (!r.proxy && r.proxy_config !== undefined) {
      out.push(
        `${file}: routes[${i}].proxy_config: has no effect: proxy is false, route "${r.prefix}" goes straight to its target`,
      );
    }
  });
  return out;
}

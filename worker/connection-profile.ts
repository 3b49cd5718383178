import { createHash } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { type RouteFiles, secureContextOptions } from '../conf/route-tls.js';
import type { RouteConfig } from '../conf/routes-schema.js';
import type { ConnectionProfile } from './upstream-pools.js';
import { parseForwardProxy } from './upstream-proxy.js';

/**
 * The connection profile of `route` (forward proxy, `ca`, `tls_verify`, client `cert`), or
 * undefined when it connects straight with Node's defaults (the common case: no per-route
 * pool key, no cost). `files` holds the bytes the supervisor checked (conf/route-tls.ts); a
 * file missing from it is a bug of the snapshot and throws, so the edge refuses the config.
 */
export function routeProfile(
  route: RouteConfig,
  files: RouteFiles | undefined,
): ConnectionProfile | undefined {
  const proxyUrl = route.proxy ? route.proxy_config : undefined;
  const options = secureContextOptions(route, (file) => {
    const b64 = files?.[file];
    if (b64 === undefined) throw new Error(`${file} is missing from the config snapshot`);
    return Buffer.from(b64, 'base64');
  });
  if (proxyUrl === undefined && options === undefined && route.tls_verify) return undefined;
  // The key covers what the connections depend on: the proxy URL (credentials included) and
  // the TLS inputs, file contents by digest. Equal keys across a reload keep the warm pool.
  const hash = createHash('sha256');
  for (const part of [
    proxyUrl ?? '',
    String(route.tls_verify),
    route.cert?.type === 'p12' ? route.cert.password : '',
  ]) {
    hash.update(`${part.length}:${part}`);
  }
  for (const value of [options?.ca, options?.pfx, options?.cert, options?.key]) {
    const bytes = value as Buffer | undefined;
    hash.update(bytes === undefined ? '-' : createHash('sha256').update(bytes).digest('hex'));
  }
  return {
    key: hash.digest('hex').slice(0, 32),
    proxy: proxyUrl === undefined ? undefined : parseForwardProxy(proxyUrl),
    tls: {
      secureContext: options === undefined ? undefined : createSecureContext(options),
      rejectUnauthorized: route.tls_verify,
    },
  };
}

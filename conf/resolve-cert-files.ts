import { isAbsolute, join } from 'node:path';
import type { RouteConfig } from './routes-schema.js';

/**
 * Routes with their `cert` and `ca` file paths made absolute: a relative path is relative to `baseDir`
 * (the directory of routes.yml), so the result does not depend on the process's cwd.
 */
export function resolveCertFiles(routes: RouteConfig[], baseDir: string): RouteConfig[] {
  return routes.map((route) => {
    if (route.cert === undefined && route.ca === undefined) return route;
    const resolve = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
    const cert =
      route.cert === undefined
        ? undefined
        : route.cert.type === 'pem'
          ? { ...route.cert, file: resolve(route.cert.file), key: resolve(route.cert.key) }
          : { ...route.cert, file: resolve(route.cert.file) };
    const ca = route.ca === undefined ? undefined : resolve(route.ca);
    return { ...route, cert, ca };
  });
}

import type { HeadEdit, RouteFeature } from '../pipeline.js';

/**
 * The head of every upstream answer of a `cache: false` route: no cache may store it
 * (RFC 9111 section 5.2.2.5 `no-store`), with the original ProxyAuth's companions for HTTP/1.0
 * caches (`Pragma: no-cache`, RFC 9111 section 5.4; `Expires: 0`, an invalid date that section
 * 5.3 says means "already expired"). The upstream's own values of these three are replaced;
 * every other header, `Content-Type` included, is left as the upstream sent it (the original
 * overwrote it with text/html).
 */
export const noStore: HeadEdit = (_status, headers) => {
  headers['cache-control'] = 'no-store';
  headers.pragma = 'no-cache';
  headers.expires = '0';
};

/**
 * routes.yml `cache` (default true, as the original): `false` marks the route's proxied
 * answers uncacheable. A route with `cache: true` gets nothing: its answers keep the upstream's
 * headers and cost nothing more. The gateway's own answers are `no-store` on every route.
 */
export const cacheControl: RouteFeature = {
  name: 'cache-control',
  compile(build) {
    if (!build.route.cache) build.editResponseHeads(noStore);
  },
};

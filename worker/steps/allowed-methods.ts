import { GatewayError } from '../../shared/errors.js';
import type { RouteFeature } from '../pipeline.js';

/**
 * `allow_methods`: other methods get 405 with `Allow` (RFC 9110 section 15.5.6). GET brings
 * HEAD along, as RFC 9110 section 9.3.2 expects of a server and as nginx's `limit_except` does:
 * monitors and `curl -I` use it.
 */
export const allowedMethods: RouteFeature = {
  name: 'allowed-methods',
  compile(build) {
    const listed = build.route.allow_methods;
    if (listed === undefined || listed.length === 0) return;
    const methods = new Set(listed);
    if (methods.has('GET')) methods.add('HEAD');
    // One shared refusal per route: its Allow header never changes.
    const refusal = new GatewayError('METHOD_NOT_ALLOWED', {
      headers: [['allow', [...methods].join(', ')]],
    });
    build.step((ctx) => {
      if (!methods.has(ctx.ex.method)) throw refusal;
    });
  },
};

import { addressKey } from '../client-address.js';
import type { RouteFeature } from '../pipeline.js';
import { compilePolicy } from '../rate-limiter.js';

/**
 * `ratelimit_proxy`, or the route's own `ratelimit` block (routes.yml), on a proxied route.
 * The budget is the user's when the request carries a valid token (the original limits "per
 * user rather than per token": every token and every address of a user share it), else the
 * client address's. It runs after the credential and user-list steps: a request they refuse
 * never reaches the upstream and does not spend the budget. Off (requests_per_second 0, or
 * no block), it adds no step.
 */
export const rateLimit: RouteFeature = {
  name: 'rate-limit',
  compile(build) {
    const own = build.route.ratelimit;
    const policy =
      own === undefined
        ? compilePolicy('proxy', build.config.ratelimit_proxy)
        : compilePolicy('route', own, build.route.prefix);
    if (policy === undefined) return;
    const prefix = build.config.client_ipv6_prefix;
    build.step((ctx) => {
      const user = ctx.user;
      return user === undefined
        ? ctx.services.limiter.admit(policy, 'i', addressKey(ctx.clientIp, prefix), ctx.ex)
        : ctx.services.limiter.admit(policy, 'u', user.name, ctx.ex);
    });
  },
};

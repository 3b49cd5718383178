import type { RouteFeature } from '../pipeline.js';

/**
 * `stats: true`: every request that passed the credential step and the user list counts
 * against its token (a Map increment on the edge; token-use-counter.ts flushes to the store).
 * Off, it adds no step.
 */
export const tokenUses: RouteFeature = {
  name: 'token-uses',
  compile(build) {
    if (!build.config.stats || !build.route.secure) return;
    build.step((ctx) => {
      if (ctx.session !== undefined) ctx.services.uses.count(ctx.session);
    });
  },
};

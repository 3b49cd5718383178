import { refusal } from '../../shared/errors.js';
import type { RouteFeature } from '../pipeline.js';

/**
 * A route's `username` list: an authenticated user not on it gets 403 (logging in again would
 * not help, so not 401). Runs after the credential step, which sets `ctx.user` on secure routes.
 */
export const userList: RouteFeature = {
  name: 'user-list',
  compile(build) {
    const names = build.route.username;
    if (!build.route.secure || names === undefined || names.length === 0) return;
    const allowed = new Set(names);
    build.step((ctx) => {
      if (ctx.user === undefined || !allowed.has(ctx.user.name)) throw refusal('USER_NOT_ALLOWED');
    });
  },
};

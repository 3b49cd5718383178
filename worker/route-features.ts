import type { RouteFeature } from './pipeline.js';
import { allowedMethods } from './steps/allowed-methods.js';
import { cacheControl } from './steps/cache-control.js';
import { credential } from './steps/credential.js';
import { csrf } from './steps/csrf.js';
import { csrfPlaceholders } from './steps/csrf-placeholders.js';
import { bodyFilters, methodFilters, requestFilters } from './steps/filters.js';
import { rateLimit } from './steps/rate-limit.js';
import { tokenUses } from './steps/token-uses.js';
import { userList } from './steps/user-list.js';

/**
 * The features of proxied routes, in pipeline order (ARCHITECTURE.md: cheap checks first, then
 * the credential, then what needs the user). A new per-request behaviour is one more entry.
 */
export const ROUTE_FEATURES: readonly RouteFeature[] = [
  allowedMethods,
  methodFilters,
  credential,
  userList,
  rateLimit,
  requestFilters,
  csrf,
  bodyFilters,
  tokenUses,
  csrfPlaceholders,
  cacheControl,
];

import { normalizePrefix } from './route-table.js';

/** How one route of routes.yml relates to the explained path. */
export interface RouteVerdict {
  readonly prefix: string;
  readonly verdict: 'matched' | 'not matched' | 'not considered';
  readonly why: string;
}

/** Whether canonical `path` is `prefix` or below it, whole segments only. */
function covers(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Why each route did or did not take `path`, in routes.yml order. `winner` is the prefix the
 * edge's route table chose (route-table.ts: the choice is never made here); this only puts the
 * rules that made it into words: whole segments, case-sensitive, longest prefix wins.
 */
export function describeRoutes(
  prefixes: readonly string[],
  path: string,
  winner: string | undefined,
): RouteVerdict[] {
  const winnerForm = winner === undefined ? undefined : normalizePrefix(winner);
  return prefixes.map((prefix) => {
    const p = normalizePrefix(prefix) ?? prefix;
    if (prefix === winner) {
      return {
        prefix,
        verdict: 'matched',
        why:
          p === '/'
            ? 'the root route takes what no longer prefix does'
            : 'the longest prefix that covers the path in whole segments',
      };
    }
    return { prefix, verdict: 'not matched', why: whyNot(p, path, winnerForm) };
  });
}

function whyNot(p: string, path: string, winner: string | null | undefined): string {
  if (covers(p, path)) {
    return `covers the path too, but ${winner ?? '?'} is longer (the longest prefix wins)`;
  }
  if (path.startsWith(p)) {
    return `${p} is not a whole segment of the path (a prefix takes ${p} and ${p}/..., not ${p}x)`;
  }
  if (covers(p.toLowerCase(), path.toLowerCase())) {
    return 'differs from the path in letter case (matching is case-sensitive)';
  }
  return 'the path is not under this prefix';
}

/** Every route, when the request never reached the route table (refused first, or the gateway's). */
export function notConsidered(prefixes: readonly string[], why: string): RouteVerdict[] {
  return prefixes.map((prefix) => ({ prefix, verdict: 'not considered', why }));
}

/*
 * How a path reads to backends that are lenient about it: Express, ASP.NET and IIS match paths
 * without regard to letter case by default, and Windows servers drop trailing dots and spaces
 * from path segments (`/admin.` is `/admin`). The gateway routes on the exact canonical path,
 * so a request whose lenient reading reaches another route than its exact one (a public `/app`
 * and a restricted `/app/admin`: `/app/ADMIN/x`) could be served by such a backend as the
 * restricted path. worker/dispatch.ts refuses those requests; conf/ refuses prefixes that only
 * differ in those ways.
 */

/** Letters that may have a case, or a segment ending in a dot or a space. */
const MAY_FOLD = /[A-Z\u0080-\uffff]|[. ](?:\/|$)/;

/** Whether foldPath could change `path` (a cheap test that lets most paths skip folding). */
export function mayFold(path: string): boolean {
  return MAY_FOLD.test(path);
}

/** `path` lower-cased, without trailing dots and spaces in its segments. */
export function foldPath(path: string): string {
  return path.toLowerCase().replace(/[. ]+(?=\/|$)/g, '');
}

/*
 * Where a login may send the browser back to (`rd`), never an open redirect (OWASP
 * Unvalidated Redirects and Forwards Cheat Sheet: an allow list, not a deny list). Accepted:
 * - a path of this site: starts with one `/` followed by anything but `/` or `\` (browsers
 *   read `//host` and `/\host` as another host);
 * - an absolute `http://` or `https://` URL, spelled with both slashes (`https:evil` is
 *   `https://evil/` to the URL parser), without userinfo (`https://good@evil` goes to evil),
 *   whose host and port are an entry of `forward_auth.redirect_hosts`.
 * Anything with a byte outside printable ASCII (CR/LF would split the Location header; a blank
 * or non-ASCII letter is read differently by browsers and servers) or a backslash is refused.
 * An absolute target is returned as the URL parser serialises it, so the Location sent is
 * exactly what was checked.
 */

/** Compiled `redirect_hosts`: `host` (default port of the scheme) or `host:port` entries. */
export type RedirectHosts = ReadonlySet<string>;

const UNSAFE = /[^\x21-\x7e]|\\/;
const ABSOLUTE = /^https?:\/\/[^/]/i;

/** The redirect target `rd` stands for, or undefined when it is not allowed. */
export function allowedRedirect(rd: string, hosts: RedirectHosts): string | undefined {
  if (rd === '' || UNSAFE.test(rd)) return undefined;
  if (rd.startsWith('/')) return rd.charCodeAt(1) === 0x2f ? undefined : rd;
  if (!ABSOLUTE.test(rd)) return undefined;
  let url: URL;
  try {
    url = new URL(rd);
  } catch {
    return undefined;
  }
  if (url.username !== '' || url.password !== '') return undefined;
  // url.host drops the scheme's default port: an entry may name it or leave it out.
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  return hosts.has(url.host) || hosts.has(`${url.hostname}:${port}`) ? url.href : undefined;
}

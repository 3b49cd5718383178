import { z } from 'zod';

/** `host` or `host:port`, a DNS name or IPv4 (or `[IPv6]`), no userinfo, path or wildcard. */
const HOST_ENTRY =
  /^(?:\[[0-9a-f:.]{2,45}\]|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)(?::([0-9]{1,5}))?$/;

/** Whether `text` is a `redirect_hosts` entry: lower-case host, optional port 1 - 65535. */
export function isRedirectHost(text: string): boolean {
  const m = HOST_ENTRY.exec(text);
  if (m === null) return false;
  return m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65_535);
}

/** A path starting with one `/`, or an http(s) URL; no query, fragment, userinfo or blank. */
export function isLoginUrl(text: string): boolean {
  if (/[^\x21-\x7e]|[\\?#]/.test(text)) return false;
  if (text.startsWith('/')) return !text.startsWith('//');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    /^https?:\/\//i.test(text) &&
    url.username === '' &&
    url.password === '' &&
    url.hostname !== ''
  );
}

/**
 * Ours: config.json's `forward_auth` block (README "Forward-auth"): where a browser refused by
 * forward-auth on a session-cookie route is sent to log in (`login_url`, default `/auth` on the
 * site's own host), and which hosts a login may send it back to (`redirect_hosts`: the `rd`
 * parameter of `POST /auth` is a path of the gateway's own site, or an http(s) URL on one of
 * these hosts; nothing else, so that the login is never an open redirect).
 */
export const forwardAuthSchema = z.strictObject({
  login_url: z
    .string()
    .refine(isLoginUrl, 'expected a path starting with "/" or an http(s) URL, without query')
    .default('/auth'),
  redirect_hosts: z
    .array(
      z
        .string()
        .refine(isRedirectHost, 'expected a lower-case host name or IP, with an optional :port'),
    )
    .default([]),
});

export type ForwardAuthConfig = z.output<typeof forwardAuthSchema>;

/*
 * The gateway's session cookie (config `session_cookie: true`): its name, how it is read from
 * a request's `Cookie` headers and removed from them before the request goes upstream, and the
 * `Set-Cookie` values that set and expire it (RFC 6265; OWASP Session Management Cheat Sheet:
 * `Secure`, `HttpOnly`, `SameSite=Strict`, host-only, `Path=/`).
 */

/** The cookie's name, the original's. */
export const SESSION_COOKIE = 'session_token';

const PREFIX = `${SESSION_COOKIE}=`;

/**
 * The values of every `session_token` pair in `cookieHeaders` (RFC 6265 section 4.2.1:
 * `name=value` pairs separated by `;`), in order; a value in double quotes is unquoted. The
 * name is matched exactly (cookie names are case-sensitive).
 */
export function sessionCookieValues(cookieHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (const header of cookieHeaders) {
    if (!header.includes(PREFIX)) continue;
    for (const pair of header.split(';')) {
      const trimmed = pair.trim();
      if (!trimmed.startsWith(PREFIX)) continue;
      let value = trimmed.slice(PREFIX.length).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        value = value.slice(1, -1);
      }
      out.push(value);
    }
  }
  return out;
}

/**
 * A `Cookie` header value without its `session_token` pairs (the gateway's credential never
 * reaches a backend), or undefined when nothing is left. Other pairs keep their order and bytes.
 */
export function withoutSessionCookie(header: string): string | undefined {
  if (!header.includes(PREFIX)) return header;
  const kept: string[] = [];
  for (const pair of header.split(';')) {
    const trimmed = pair.trim();
    if (trimmed.length === 0 || trimmed.startsWith(PREFIX)) continue;
    kept.push(trimmed);
  }
  return kept.length === 0 ? undefined : kept.join('; ');
}

const ATTRIBUTES = 'Path=/; Secure; HttpOnly; SameSite=Strict';

/** `Set-Cookie` for a new session: `maxAgeSeconds` (at least 1) is its life in the browser. */
export function sessionCookie(token: string, maxAgeSeconds: number): string {
  return `${PREFIX}${token}; ${ATTRIBUTES}; Max-Age=${Math.max(1, Math.floor(maxAgeSeconds))}`;
}

/** `Set-Cookie` that removes the session cookie (RFC 6265 section 5.3: Max-Age 0 expires it). */
export function expiredSessionCookie(): string {
  return `${PREFIX}; ${ATTRIBUTES}; Max-Age=0`;
}

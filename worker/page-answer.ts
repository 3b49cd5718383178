/*
 * HTML answers of session-cookie mode (login page, failed and successful browser logins) and
 * how a browser's form post is told from an API call. Every page is `Cache-Control: no-store`
 * (uws-io.ts sendBody), `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`, and
 * may not be framed (CSP `frame-ancestors 'none'`, and `X-Frame-Options: DENY` for browsers
 * without CSP 2): a login page in a frame is the setting of a clickjacking attack.
 */

import type { Config } from '../conf/config-schema.js';
import { BUILTIN_STYLE_SOURCE, signedInPage, signedOutPage } from './builtin-pages.js';
import { bodyKind } from './credentials.js';
import { type Exchange, type HeaderPair, header, sendBody } from './uws-io.js';

/**
 * Whether the request is a browser's form post: an `application/x-www-form-urlencoded` body
 * and an `Accept` header that names `text/html` (what browsers send on navigation). Anything
 * else (JSON, curl's `*\/*`) is an API client and gets JSON.
 */
export function isBrowserForm(ex: Exchange): boolean {
  return bodyKind(header(ex, 'content-type')) === 'form' && acceptsHtml(ex);
}

/** Whether an `Accept` header of the request names `text/html` (a browser's navigation). */
export function acceptsHtml(ex: Exchange): boolean {
  const h = ex.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'accept' && /(?:^|[\s,])text\/html(?:$|[\s,;])/i.test(h[i + 1]!)) return true;
  }
  return false;
}

/** The headers of a page: its CSP and the rest of the set above. */
export type PageHeaders = readonly HeaderPair[];

/**
 * The headers of the gateway's built-in pages: nothing may load but their inline style (by
 * hash), forms may only post to this origin, and to `login_redirect_url`'s origin: CSP checks
 * `form-action` on the redirect that answers the login post too (CSP3 section 6.3.1).
 */
export function builtinPageHeaders(config: Config): PageHeaders {
  return withCsp(
    `default-src 'none'; style-src ${BUILTIN_STYLE_SOURCE}; ${formAction(config)}; ` +
      "frame-ancestors 'none'; base-uri 'none'",
  );
}

/**
 * The headers of the operator's page (a `login_page` file, or the page of
 * `logout_redirect_url`): its own styles, scripts and images are the operator's and are not
 * restricted; framing and form targets are.
 */
export function operatorPageHeaders(config: Config): PageHeaders {
  return withCsp(`${formAction(config)}; frame-ancestors 'none'`);
}

function formAction(config: Config): string {
  const target = config.login_redirect_url;
  const origin = target !== undefined && !target.startsWith('/') ? new URL(target).origin : '';
  // The hosts a login may redirect to (`rd`, login-redirect.ts): CSP checks the redirect too.
  const sources = [origin, ...config.forward_auth.redirect_hosts].filter((s) => s !== '');
  return sources.length === 0 ? "form-action 'self'" : `form-action 'self' ${sources.join(' ')}`;
}

function withCsp(csp: string): PageHeaders {
  return [
    ['content-security-policy', csp],
    ['x-content-type-options', 'nosniff'],
    ['referrer-policy', 'same-origin'],
    ['x-frame-options', 'DENY'],
  ];
}

/** Sends an HTML page with its headers and `extra` (a cookie, Retry-After...). */
export function sendPage(
  ex: Exchange,
  status: number,
  html: string,
  headers: PageHeaders,
  extra?: readonly HeaderPair[],
): void {
  sendBody(
    ex,
    status,
    'text/html; charset=utf-8',
    html,
    extra === undefined ? headers : [...headers, ...extra],
  );
}

/**
 * A browser's successful form login when `login_redirect_url` is not set: the built-in
 * "signed in" page (200) with the session `cookie`, instead of the JSON that API clients get.
 */
export function sendSignedInPage(
  ex: Exchange,
  config: Config,
  username: string,
  cookie: HeaderPair,
): void {
  sendPage(ex, 200, signedInPage(username), builtinPageHeaders(config), [cookie]);
}

/**
 * A browser's logout (session-cookie mode) when `logout_redirect_url` is not set: the built-in
 * "signed out" page (200) with the expired cookie, instead of the JSON that API clients get.
 */
export function sendSignedOutPage(ex: Exchange, config: Config, cookie: HeaderPair): void {
  sendPage(ex, 200, signedOutPage(), builtinPageHeaders(config), [cookie]);
}

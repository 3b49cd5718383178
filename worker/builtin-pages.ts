/*
 * The gateway's own pages in session-cookie mode, used when the operator configured none
 * (README "Browser sessions"): the login page and the "signed in" page. Self-contained (no
 * script, font, image or external style: they work on a gateway cut off from everything and
 * without JavaScript), accessible (a language, labelled fields with autocomplete tokens, the
 * error announced to screen readers), and served under a CSP that allows only their one inline
 * style, by hash (page-answer.ts).
 */

import { createHash } from 'node:crypto';
import { ERROR_BLOCK_BEGIN, ERROR_BLOCK_END, escapeHtml } from '../shared/error-block.js';

const STYLE = `
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1b1f24; }
main { max-width: 22rem; margin: 12vh auto; padding: 2rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input { box-sizing: border-box; width: 100%; margin-top: .25rem; padding: .5rem; font: inherit; border: 1px solid #8a9099; border-radius: 4px; }
input:focus, button:focus, a:focus { outline: 3px solid #1a5fb4; outline-offset: 2px; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font: inherit; font-weight: 600; color: #fff; background: #1a5fb4; border: 0; border-radius: 4px; cursor: pointer; }
.error { margin: 0 0 1rem; padding: .6rem .8rem; color: #7d1010; background: #fde8e8; border-left: 4px solid #c01c28; }
.hint { font-weight: 400; color: #4d535b; }
`;

/** The CSP source of {@link STYLE} (CSP3 hash source: base64 SHA-256 of the element's text). */
export const BUILTIN_STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

function document(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/**
 * The built-in login page: a form posting `username`, `password` and, when `totp` is true
 * (`login_via_otp`), an optional `totp_code`, urlencoded, to /auth. Its error block (shared/
 * error-block.ts) is commented out until a failed login renders it.
 */
export function builtinLoginPage(options: { readonly totp: boolean }): string {
  const code = options.totp
    ? `
<label for="totp_code">One-time code <span class="hint">(if your account uses one)</span></label>
<input id="totp_code" name="totp_code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]*" maxlength="10">`
    : '';
  return document(
    'Sign in',
    `<h1>Sign in</h1>
${ERROR_BLOCK_BEGIN}
<!--
<p class="error" id="login-error" role="alert">{{ error }}</p>
-->
${ERROR_BLOCK_END}
<form method="post">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>${code}
<button type="submit">Sign in</button>
</form>`,
  );
}

/**
 * The page of a successful browser login when `login_redirect_url` is not set: who is signed
 * in, a link to the site's root and one to log out. The token is not on it (it is in the
 * HttpOnly cookie only).
 */
export function signedInPage(username: string): string {
  return document(
    'Signed in',
    `<h1>Signed in</h1>
<p>You are signed in as <strong>${escapeHtml(username)}</strong>.</p>
<p><a href="/">Continue</a></p>
<p><a href="/logout">Sign out</a></p>`,
  );
}

/** The page of a browser's logout when `logout_redirect_url` is not set. */
export function signedOutPage(): string {
  return document(
    'Signed out',
    `<h1>Signed out</h1>
<p>You are signed out.</p>
<p><a href="/auth">Sign in again</a></p>`,
  );
}

import t from 'tap';
import { refusedKeys } from './helpers/config-refusals.js';

/*
 * Config values the gateway writes into answer heads verbatim (worker/uws-io.ts Head): a CR or
 * LF in one would split the head. Regression: `login_redirect_url: "/app\r\nx-injected: yes"`
 * passed the schema (a path only had to start with one `/`) and the login's 303 carried an
 * `x-injected` header.
 */

/** A value as a TAP-safe name (JSON.stringify leaves U+2028, which ends a TAP line). */
const shown = (value: string): string =>
  JSON.stringify(value).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);

const SPLITTING = [
  '/app\r\nx-injected: yes',
  '/app\nx-injected: yes',
  '/app\rx',
  '/app\0',
  '/app\x7f',
  '/a pp',
  '/app\t',
  'https://a.test/app\r\nx-injected: yes',
];

for (const key of ['login_redirect_url', 'logout_redirect_url']) {
  t.test(`${key}: no CR, LF, control char or blank`, async (t) => {
    for (const value of SPLITTING) t.same(refusedKeys({ [key]: value }), [key], shown(value));
    t.same(refusedKeys({ [key]: '/app/page?x=1&y=%0D%0A' }), [], 'percent-encoded bytes are fine');
    t.same(refusedKeys({ [key]: 'https://a.test/bye' }), []);
    // Another host through a path: `//` and `/\` (browsers read `\` as `/`); non-ASCII must be
    // percent-encoded (RFC 3986), as `forward_auth.login_url` requires.
    for (const value of [
      '//evil.test',
      '/\\evil.test',
      '/\\/evil.test',
      '/caf\u00e9',
      '/\u2028x',
    ]) {
      t.same(refusedKeys({ [key]: value }), [key], shown(value));
    }
    t.same(refusedKeys({ [key]: '/a\\b' }), [], 'a backslash further in stays on this host');
    t.same(refusedKeys({ [key]: '/caf%C3%A9' }), []);
  });
}

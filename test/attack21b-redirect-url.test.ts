import t from 'tap';
import { refusedKeys } from './helpers/config-refusals.js';

/*
 * login_redirect_url / logout_redirect_url in their URL form (conf/config-schema.ts
 * redirectUrl): written into the Location head verbatim. Regression: 0edc694 said "printable
 * ASCII only in either form", but the URL form was only checked by isUrlWithScheme, which
 * refuses whitespace and C0 controls: U+0085 (a C1 control), a zero-width space, `é` in a path
 * or an IDN host passed and went out as raw UTF-8 (Head.add drops only C0 and DEL). And
 * `https:evil.test` / `https:\\evil.test` passed: the URL parser reads a host, a browser on an
 * https page reads the first as a path of the current site.
 */

const shown = (value: string): string =>
  JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);

const REFUSED = [
  'https://a.test/\u0085x',
  'https://a.test/\u200bx',
  'https://a.test/caf\u00e9',
  'https://\u00e4.test/',
  'https://a.test/\u2028',
  'https:a.test/bye',
  'https:\\\\a.test/bye',
  'http:/\\a.test/bye',
];

for (const key of ['login_redirect_url', 'logout_redirect_url']) {
  t.test(`${key}: a URL is printable ASCII, spelled with //`, async (t) => {
    for (const value of REFUSED) t.same(refusedKeys({ [key]: value }), [key], shown(value));
    for (const value of [
      'https://a.test/bye',
      'HTTP://a.test:8080/caf%C3%A9?x=1#y',
      'https://xn--4ca.test/',
    ]) {
      t.same(refusedKeys({ [key]: value }), [], shown(value));
    }
  });
}

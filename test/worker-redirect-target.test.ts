import t from 'tap';
import { allowedRedirect } from '../worker/redirect-target.js';

const HOSTS = new Set(['app.test', 'admin.test:8443', '127.0.0.1:8080']);

t.test('paths of the site are allowed as they are', async (t) => {
  for (const rd of ['/', '/app/page?a=1&b=2', '/a%2Fb', '/app#frag', '/@user']) {
    t.equal(allowedRedirect(rd, HOSTS), rd, rd);
  }
});

t.test('absolute URLs on listed hosts, as the URL parser writes them', async (t) => {
  t.equal(allowedRedirect('https://app.test/x?y=1', HOSTS), 'https://app.test/x?y=1');
  t.equal(allowedRedirect('HTTP://APP.test/x', HOSTS), 'http://app.test/x');
  t.equal(allowedRedirect('https://app.test:443/x', HOSTS), 'https://app.test/x', 'default port');
  t.equal(allowedRedirect('https://admin.test:8443/', HOSTS), 'https://admin.test:8443/');
  t.equal(allowedRedirect('http://127.0.0.1:8080/p', HOSTS), 'http://127.0.0.1:8080/p');
});

t.test('open redirects are refused, in every spelling', async (t) => {
  for (const rd of [
    '',
    '//evil.test',
    '//evil.test/app',
    '///evil.test',
    '/\\evil.test',
    '\\\\evil.test',
    '\\/evil.test',
    'https:evil.test',
    'https:/evil.test',
    'https:app.test',
    'https://evil.test/',
    'https://app.test.evil.test/',
    'https://evil.test#app.test',
    'https://app.test@evil.test/',
    'https://app.test:@evil.test/',
    'https://user:pw@app.test/',
    'https://app.test:8443/',
    'https://admin.test/',
    'ftp://app.test/',
    'javascript:alert(1)',
    'data:text/html,x',
    'app.test/x',
    '/app\r\nSet-Cookie: a=1',
    '/app\nx',
    '/app x',
    '/caf\u00e9',
    ' /app',
    '\t//evil.test',
    'https://app.test\\@evil.test/',
  ]) {
    t.equal(allowedRedirect(rd, HOSTS), undefined, JSON.stringify(rd));
  }
});

t.test('without listed hosts, only paths', async (t) => {
  t.equal(allowedRedirect('/x', new Set()), '/x');
  t.equal(allowedRedirect('https://app.test/', new Set()), undefined);
});

// config.json `login_page` (read and checked at load, like check-config does) and the warnings
// of session-cookie settings that would not do what the operator expects.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { loadConfigDir } from '../conf/load.js';
import { MAX_LOGIN_PAGE_BYTES } from '../conf/login-page.js';
import { parseConfig } from '../conf/parse.js';
import { sessionWarnings } from '../conf/session-warnings.js';
import { ERROR_BLOCK_BEGIN, ERROR_BLOCK_END } from '../shared/error-block.js';

const PAGE = `<!doctype html><p>Log in</p>${ERROR_BLOCK_BEGIN}<!--<p>{{ error }}</p>-->${ERROR_BLOCK_END}`;
const BASE = {
  secret: 's'.repeat(64),
  users: [{ username: 'admin', password: 'p' }],
  session_cookie: true,
  csrf_token: false,
};

function configWith(extra: Record<string, unknown>): string {
  return JSON.stringify({ ...BASE, ...extra });
}

async function loadError(dir: string): Promise<ConfigError> {
  try {
    await loadConfigDir(dir);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('loaded');
}

t.test('login_page is read relative to the config dir, or from an absolute path', async (t) => {
  const dir = t.testdir({
    relative: {
      'config.json': configWith({ login_page: 'pages/login.html' }),
      'routes.yml': 'routes: []\n',
      pages: { 'login.html': PAGE },
    },
    absolute: { 'routes.yml': 'routes: []\n' },
    unset: { 'config.json': configWith({}), 'routes.yml': 'routes: []\n' },
    empty: { 'config.json': configWith({ login_page: '' }), 'routes.yml': 'routes: []\n' },
  });
  await writeFile(
    join(dir, 'absolute', 'config.json'),
    configWith({ login_page: join(dir, 'relative', 'pages', 'login.html') }),
  );
  t.equal((await loadConfigDir(join(dir, 'relative'))).loginPage, PAGE);
  t.equal((await loadConfigDir(join(dir, 'absolute'))).loginPage, PAGE);
  t.equal((await loadConfigDir(join(dir, 'unset'))).loginPage, undefined);
  t.equal(
    (await loadConfigDir(join(dir, 'empty'))).loginPage,
    undefined,
    '"" is unset, like the other keys',
  );
});

t.test('a login_page that cannot serve is a config error naming the file and key', async (t) => {
  const big = `${PAGE}${' '.repeat(MAX_LOGIN_PAGE_BYTES)}`;
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'missing',
      { 'config.json': configWith({ login_page: 'nope.html' }) },
      /nope\.html: not found/,
    ],
    [
      'a directory',
      { 'config.json': configWith({ login_page: 'pages' }), pages: {} },
      /pages: is not a regular file/,
    ],
    [
      'too large',
      { 'config.json': configWith({ login_page: 'big.html' }), 'big.html': big },
      /big\.html: is larger than 1048576 bytes/,
    ],
    [
      'not UTF-8',
      {
        'config.json': configWith({ login_page: 'latin1.html' }),
        'latin1.html': Buffer.concat([Buffer.from(PAGE), Buffer.from([0xe9, 0x20])]),
      },
      /latin1\.html: is not UTF-8 text/,
    ],
    [
      'no block',
      { 'config.json': configWith({ login_page: 'plain.html' }), 'plain.html': '<p>hi</p>' },
      /plain\.html: has no error block/,
    ],
    [
      'a block left open',
      {
        'config.json': configWith({ login_page: 'open.html' }),
        'open.html': `<p>${ERROR_BLOCK_BEGIN}<!-- {{ error }} --></p>`,
      },
      /open\.html: has a <!-- BEGIN_BLOCK_ERROR --> without its <!-- END_BLOCK_ERROR -->/,
    ],
  ];
  for (const [name, files, message] of cases) {
    const dir = t.testdir({ 'routes.yml': 'routes: []\n', ...files });
    const err = await loadError(dir);
    t.equal(err.issues.length, 1, name);
    t.equal(err.issues[0]?.file, join(dir, 'config.json'), `${name}: the file`);
    t.equal(err.issues[0]?.key, 'login_page', `${name}: the key`);
    t.match(err.issues[0]?.message, message, name);
  }
  const control = t.testdir({
    'config.json': configWith({ login_page: 'a\nb.html' }),
    'routes.yml': 'routes: []\n',
  });
  t.equal((await loadError(control)).issues[0]?.key, 'login_page', 'control characters');
});

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };

function warningsOf(extra: Record<string, unknown>, routes: unknown[] = []): string[] {
  const { config, routes: r } = parseConfig({ ...BASE, ...extra }, { routes }, FILES);
  return sessionWarnings(config, r, FILES.config);
}

t.test('session_cookie without TLS warns, naming the way out', async (t) => {
  const [warning, ...rest] = warningsOf({});
  t.same(rest, []);
  t.match(warning, /^\/etc\/pa\/config\.json: session_cookie: the gateway serves plain HTTP/);
  t.match(warning, /SESSION_NEEDS_HTTPS/);
  t.match(warning, /trusted_proxies/);
  t.same(warningsOf({ tls: true }), [], 'with tls on nothing to say');
  t.same(warningsOf({ session_cookie: false, csrf_token: true }), [], 'nor in bearer mode');
});

t.test('login_page without session_cookie has no effect', async (t) => {
  t.same(warningsOf({ session_cookie: false, csrf_token: true, login_page: 'x.html' }), [
    '/etc/pa/config.json: login_page: has no effect: the login page belongs to session-cookie mode (session_cookie is false)',
  ]);
});

t.test('a logout_redirect_url on a secure route cannot be the login page', async (t) => {
  const routes = [
    { prefix: '/', target: 'http://127.0.0.1:8000', secure: false },
    { prefix: '/app', target: 'http://127.0.0.1:8000' },
    { prefix: '/app/public', target: 'http://127.0.0.1:8000', secure: false },
  ];
  const on = (url: string, extra: Record<string, unknown> = {}) =>
    warningsOf({ tls: true, logout_redirect_url: url, ...extra }, routes);
  const [warning, ...rest] = on('/app/login?next=1');
  t.same(rest, []);
  t.match(warning, /logout_redirect_url: \/app\/login\?next=1 is served by the secure route \/app/);
  t.same(on('/app/public/login'), [], 'the longest prefix decides: a public route');
  t.same(on('/login'), [], "'/' is public");
  t.same(on('/application'), [], 'prefixes match whole segments');
  t.same(on('https://sso.test/login'), [], 'another site: not a route of ours');
  t.same(on('/app/login', { login_page: 'x.html' }), [], 'login_page wins: the route is unused');
  const secureRoot = [{ prefix: '/', target: 'http://127.0.0.1:8000' }];
  const root = (url: string) =>
    warningsOf({ tls: true, logout_redirect_url: url }, secureRoot).length;
  t.equal(root('/auth'), 0, '/auth is the gateway: its built-in page');
  t.equal(root('/auth/'), 0);
  t.equal(root('/adm/x'), 0);
  t.equal(root('/auth/x'), 1, 'a path below /auth is routed');
});

t.test(
  'loadConfigDir reports the session warnings (check-config and run print them)',
  async (t) => {
    const dir = t.testdir({ 'config.json': configWith({}), 'routes.yml': 'routes: []\n' });
    const { warnings } = await loadConfigDir(dir);
    t.ok(
      warnings.some((w) => w.includes('session_cookie: the gateway serves plain HTTP')),
      warnings.join('\n'),
    );
  },
);

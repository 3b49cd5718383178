import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { parseConfig } from '../conf/parse.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };
const BASE = { secret: 's'.repeat(64), users: [{ username: 'a', password: 'p' }] };

function parse(forward_auth: unknown) {
  return parseConfig({ ...BASE, forward_auth }, { routes: [] }, FILES).config.forward_auth;
}

function issueKeys(forward_auth: unknown): string[] {
  try {
    parse(forward_auth);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.key);
    throw err;
  }
  return [];
}

t.test('defaults: the login page of the site itself, no other host', async (t) => {
  t.same(parseConfig(BASE, { routes: [] }, FILES).config.forward_auth, {
    login_url: '/auth',
    redirect_hosts: [],
  });
  t.same(
    parse({ login_url: 'https://sso.test/auth', redirect_hosts: ['app.test', 'x.test:8443'] }),
    {
      login_url: 'https://sso.test/auth',
      redirect_hosts: ['app.test', 'x.test:8443'],
    },
  );
});

t.test('bad values name the key', async (t) => {
  for (const bad of [
    '//evil.test',
    'auth',
    'https://sso.test/auth?x=1',
    'https://u:p@sso.test/',
    'ftp://a/',
    '/a b',
    '/a\\b',
  ]) {
    t.same(issueKeys({ login_url: bad }), ['forward_auth.login_url'], bad);
  }
  for (const bad of [
    '*.app.test',
    'App.test',
    'https://app.test',
    'app.test/x',
    'u@app.test',
    'app.test:0',
    'app.test:70000',
    '',
  ]) {
    t.same(issueKeys({ redirect_hosts: [bad] }), ['forward_auth.redirect_hosts[0]'], bad);
  }
  const { warnings } = parseConfig({ ...BASE, forward_auth: { other: 1 } }, { routes: [] }, FILES);
  t.match(warnings.join('\n'), /forward_auth.*other/, 'an unknown key is warned about');
});

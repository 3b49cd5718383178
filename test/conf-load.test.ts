import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { loadConfigDir } from '../conf/load.js';

const CONFIG = JSON.stringify({
  secret: 's'.repeat(64),
  users: [{ username: 'admin', password: 'p' }],
});
const ROUTES =
  'routes:\n  - prefix: /api\n    target: http://127.0.0.1:8000/api\n    username: [admin]\n';

async function loadError(dir: string): Promise<ConfigError> {
  try {
    await loadConfigDir(dir);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('loaded');
}

t.test('loads and validates both files, keeps the raw values', async (t) => {
  const dir = t.testdir({ 'config.json': CONFIG, 'routes.yml': ROUTES });
  const loaded = await loadConfigDir(dir);
  t.equal(loaded.config.users[0]?.username, 'admin');
  t.equal(loaded.routes[0]?.prefix, '/api');
  t.same(loaded.warnings, []);
  t.same(loaded.files, { config: join(dir, 'config.json'), routes: join(dir, 'routes.yml') });
  t.same(loaded.raw.config, JSON.parse(CONFIG));
  t.same(loaded.raw.routes, {
    routes: [{ prefix: '/api', target: 'http://127.0.0.1:8000/api', username: ['admin'] }],
  });
});

t.test('the raw values survive a JSON round trip (IPC) to the same result', async (t) => {
  const dir = t.testdir({
    'config.json': CONFIG,
    // YAML timestamps would become Date objects with the default schema; CORE keeps strings.
    'routes.yml': `${ROUTES}    cache: true\n  - prefix: /2024-01-01\n    target: http://a.test\n`,
  });
  const loaded = await loadConfigDir(dir);
  const { parseConfig } = await import('../conf/parse.js');
  const again = parseConfig(
    JSON.parse(JSON.stringify(loaded.raw.config)),
    JSON.parse(JSON.stringify(loaded.raw.routes)),
    loaded.files,
  );
  t.same(again.routes, loaded.routes);
  t.same(again.config, loaded.config);
});

t.test('a missing routes.yml is an empty route list with a warning', async (t) => {
  const dir = t.testdir({ 'config.json': CONFIG });
  const loaded = await loadConfigDir(dir);
  t.same(loaded.routes, []);
  t.equal(loaded.warnings.length, 1);
  t.match(loaded.warnings[0], /routes\.yml: \(file\): not found/);
});

t.test('an empty routes.yml is an empty route list', async (t) => {
  const dir = t.testdir({ 'config.json': CONFIG, 'routes.yml': '# nothing yet\n' });
  t.same((await loadConfigDir(dir)).routes, []);
});

t.test('a missing config.json is a ConfigError', async (t) => {
  const dir = t.testdir({ 'routes.yml': ROUTES });
  const error = await loadError(dir);
  t.same(
    error.issues.map((i) => [i.file, i.key]),
    [[join(dir, 'config.json'), '(file)']],
  );
});

t.test('JSON syntax errors carry file and line', async (t) => {
  const dir = t.testdir({
    'config.json': '{\n  "secret": "x",\n  "port": 8080,\n}\n',
    'routes.yml': ROUTES,
  });
  const [issue, ...rest] = (await loadError(dir)).issues;
  t.same(rest, []);
  t.equal(issue?.file, join(dir, 'config.json'));
  t.equal(issue?.key, '(syntax)');
  t.equal(issue?.line, 4);
  t.equal(issue?.column, 1);
  t.match(issue?.message, /^line 4, column 1: /);
});

t.test('YAML syntax errors carry file and line; both files reported', async (t) => {
  const dir = t.testdir({
    'config.json': '{"secret": }',
    'routes.yml': 'routes:\n  - prefix: /a\n    target: [unclosed\n',
  });
  const issues = (await loadError(dir)).issues;
  t.same(
    issues.map((i) => [i.file, i.key, i.line]),
    [
      [join(dir, 'config.json'), '(syntax)', 1],
      [join(dir, 'routes.yml'), '(syntax)', 4],
    ],
  );
});

t.test('YAML duplicate keys are a syntax error, not a silent override', async (t) => {
  const dir = t.testdir({
    'config.json': CONFIG,
    'routes.yml':
      'routes:\n  - prefix: /a\n    target: http://a.test\n    secure: true\n    secure: false\n',
  });
  const [issue] = (await loadError(dir)).issues;
  t.equal(issue?.key, '(syntax)');
  t.equal(issue?.line, 5);
});

t.test('validation errors from both files', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({ secret: 'short' }),
    'routes.yml':
      'routes:\n  - prefix: /a\n    target: http://a.test\n    filters:\n      allow:\n        - field: path\n          pattern: "(unclosed"\n',
  });
  t.same(
    (await loadError(dir)).issues.map((i) => i.key),
    ['secret', 'routes[0].filters.allow[0].pattern'],
  );
});

t.test('a UTF-8 BOM in config.json is tolerated', async (t) => {
  const dir = t.testdir({ 'config.json': `\uFEFF${CONFIG}`, 'routes.yml': ROUTES });
  t.equal((await loadConfigDir(dir)).config.secret, 's'.repeat(64));
});

// Loki credentials and tenant: the schema's rules (both keys or neither, https unless loopback),
// then the password file as the load reads it. No message may hold the password.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../conf/config-error.js';
import { configSchema, type LogConfig } from '../conf/config-schema.js';
import { MAX_PASSWORD_FILE_BYTES, readLokiHeaders } from '../conf/loki-auth.js';

const SECRET = 'loki-auth-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';
const PASSWORD = 'pa55-w0rd-only-in-the-file';

function issues(log: Record<string, unknown>): string[] {
  const result = configSchema.safeParse({ secret: SECRET, log });
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const AUTH = { type: 'loki', user: 'grafana', password_file: 'loki.pass' };

t.test('user and password_file go together', async (t) => {
  t.match(issues({ type: 'loki', host: 'https://loki.test', user: 'u' }), [
    'log.password_file: is required with user',
  ]);
  t.match(issues({ type: 'loki', host: 'https://loki.test', password_file: 'p' }), [
    'log.user: is required with password_file',
  ]);
  t.same(issues({ ...AUTH, host: 'https://loki.test' }), []);
});

t.test('credentials need https, unless Loki is on a loopback IP', async (t) => {
  for (const host of [
    'loki.test:3100',
    'http://loki.test:3100',
    'http://localhost:3100',
    'http://10.0.0.5',
  ]) {
    const found = issues({ ...AUTH, host });
    t.equal(found.length, 1, host);
    t.match(
      found[0],
      /^log\.host: would send the password of log\.user in clear: use an https:\/\/ URL/,
    );
  }
  for (const host of [
    'https://loki.test',
    '127.0.0.1:3100',
    'http://127.0.0.9:3100',
    'http://[::1]:3100',
  ]) {
    t.same(issues({ ...AUTH, host }), [], host);
  }
  t.same(
    issues({ type: 'loki', host: 'http://loki.test', tenant: 'team-a' }),
    [],
    'a tenant is no secret',
  );
});

t.test('credentials in the URL stay refused, pointing at the keys', async (t) => {
  const found = issues({ type: 'loki', host: 'https://u:p@loki.test' });
  t.match(found, [/^log\.host: .*credentials \(those go in log\.user and log\.password_file\)/]);
  t.notMatch(found.join(), /u:p@/);
});

t.test('user and tenant values', async (t) => {
  t.match(issues({ ...AUTH, host: 'https://l.test', user: 'a:b' }), [/^log\.user: .*no ":"/]);
  t.match(issues({ ...AUTH, host: 'https://l.test', user: 'a\nb' }), [/^log\.user: /]);
  for (const tenant of ['', 'a b', 'a|b', '.', '..', 'x'.repeat(151)]) {
    t.equal(
      issues({ type: 'loki', host: 'https://l.test', tenant }).length,
      1,
      JSON.stringify(tenant),
    );
  }
  for (const tenant of ['team-a', 'Org_1.prod', "a!*'()"]) {
    t.same(issues({ type: 'loki', host: 'https://l.test', tenant }), [], tenant);
  }
});

async function dir(t: Test): Promise<string> {
  const root = t.testdir({});
  await mkdir(root, { recursive: true });
  return root;
}

function logConfig(extra: Partial<LogConfig>): LogConfig {
  return configSchema.parse({
    secret: SECRET,
    log: { type: 'loki', host: 'https://l.test', ...extra },
  }).log;
}

t.test(
  'headers: Basic of user:password (UTF-8), tenant; one trailing newline dropped',
  async (t) => {
    const root = await dir(t);
    await writeFile(join(root, 'loki.pass'), `${PASSWORD}\n`, { mode: 0o600 });
    const configFile = join(root, 'config.json');
    const { headers, warnings } = await readLokiHeaders(
      logConfig({ user: 'grafänа', password_file: 'loki.pass', tenant: 'team-a' }),
      configFile,
    );
    t.same(headers, {
      authorization: `Basic ${Buffer.from(`grafänа:${PASSWORD}`, 'utf8').toString('base64')}`,
      'x-scope-orgid': 'team-a',
    });
    t.same(warnings, []);
    const tenantOnly = await readLokiHeaders(logConfig({ tenant: 'b' }), configFile);
    t.same(tenantOnly.headers, { 'x-scope-orgid': 'b' });
    const none = await readLokiHeaders(logConfig({}), configFile);
    t.same(none.headers, {});
    await writeFile(join(root, 'crlf.pass'), `${PASSWORD}\r\n`, { mode: 0o600 });
    const crlf = await readLokiHeaders(
      logConfig({ user: 'u', password_file: join(root, 'crlf.pass') }),
      '/elsewhere/config.json',
    );
    t.equal(
      crlf.headers.authorization,
      `Basic ${Buffer.from(`u:${PASSWORD}`).toString('base64')}`,
      'an absolute path; CRLF dropped too',
    );
  },
);

t.test('a file others may read is a warning naming it, never its content', async (t) => {
  const root = await dir(t);
  const file = join(root, 'loki.pass');
  await writeFile(file, PASSWORD);
  await chmod(file, 0o644);
  const { warnings } = await readLokiHeaders(
    logConfig({ user: 'u', password_file: 'loki.pass' }),
    join(root, 'config.json'),
  );
  t.same(warnings, [
    `${join(root, 'config.json')}: log.password_file: ${file} is open to group or others (mode 0644): chmod 600 it`,
  ]);
});

t.test('a bad password file is a ConfigError naming the key, without the password', async (t) => {
  const root = await dir(t);
  const configFile = join(root, 'config.json');
  const cases: [string, string | Buffer | undefined, RegExp][] = [
    ['missing.pass', undefined, /not found$/],
    ['empty.pass', '\n', /is empty$/],
    ['two-lines.pass', `${PASSWORD}\nsecond line`, /holds a control character/],
    ['binary.pass', Buffer.from([0xff, 0xfe, 0x41]), /is not UTF-8 text$/],
    ['big.pass', 'x'.repeat(MAX_PASSWORD_FILE_BYTES + 1), /is larger than 4096 bytes$/],
  ];
  for (const [name, content, why] of cases) {
    if (content !== undefined) await writeFile(join(root, name), content, { mode: 0o600 });
    const err = await readLokiHeaders(
      logConfig({ user: 'u', password_file: name }),
      configFile,
    ).catch((e: unknown) => e);
    t.ok(err instanceof ConfigError, name);
    const issue = (err as ConfigError).issues[0]!;
    t.equal(issue.file, configFile);
    t.equal(issue.key, 'log.password_file');
    t.match(issue.message, why, name);
    t.notMatch(
      (err as ConfigError).format(),
      PASSWORD,
      `${name}: the password is not in the message`,
    );
  }
  await mkdir(join(root, 'a-dir'));
  const notFile = await readLokiHeaders(
    logConfig({ user: 'u', password_file: 'a-dir' }),
    configFile,
  ).catch((e: unknown) => e);
  t.match((notFile as ConfigError).issues[0]?.message, /is not a regular file$/);
});

t.test('keys given to another log type: warnings, nothing read', async (t) => {
  const log = configSchema.parse({
    secret: SECRET,
    log: { type: 'local', user: 'u', password_file: 'nowhere.pass', tenant: 't' },
  }).log;
  const { headers, warnings } = await readLokiHeaders(log, '/c/config.json');
  t.same(headers, {});
  t.same(warnings, [
    '/c/config.json: log.user: has no effect: log.type is "local", not "loki"',
    '/c/config.json: log.password_file: has no effect: log.type is "local", not "loki"',
    '/c/config.json: log.tenant: has no effect: log.type is "local", not "loki"',
  ]);
});

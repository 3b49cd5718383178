// A data dir the store cannot live in stops the start with one clear line (path and cause),
// exit 1, and no edge is ever forked (no crash loop).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runCli } from './helpers/cli.js';

const SECRET = 'data-dir-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef';

function configDir(t: Test): string {
  return t.testdir({
    'config.json': JSON.stringify({
      secret: SECRET,
      token_admin: 'd'.repeat(64),
      port: 0,
      users: [],
    }),
    'routes.yml': 'routes: []\n',
  });
}

t.test('a corrupt store file', async (t) => {
  const config = configDir(t);
  const data = t.testdir({});
  writeFileSync(join(data, 'proxyauth.mdb'), Buffer.alloc(64 * 1024, 0xab));
  const res = await runCli(['run', '--config-dir', config, '--data-dir', data]);
  t.equal(res.code, 1, res.stderr);
  t.match(res.stderr, join(data, 'proxyauth.mdb'), 'names the file');
  t.match(res.stderr, /corrupt|not an LMDB/i, 'says why');
  t.notMatch(res.stdout + res.stderr, /edge listening/, 'no edge was started');
});

t.test('an empty store file (a crash cut it) is refused, not replaced in silence', async (t) => {
  const config = configDir(t);
  const data = t.testdir({ 'proxyauth.mdb': '' });
  const res = await runCli(['run', '--config-dir', config, '--data-dir', data]);
  t.equal(res.code, 1, res.stderr);
  t.match(res.stderr, join(data, 'proxyauth.mdb'));
  t.match(res.stderr, /the file is empty \(0 bytes\)/);
  t.notMatch(res.stdout + res.stderr, /edge listening/, 'no edge was started');
});

t.test('a data dir that is a file', async (t) => {
  const config = configDir(t);
  const parent = t.testdir({ 'not-a-dir': 'x' });
  const data = join(parent, 'not-a-dir');
  const res = await runCli(['run', '--config-dir', config, '--data-dir', data]);
  t.equal(res.code, 1, res.stderr);
  t.match(
    res.stderr,
    `data dir ${data}: cannot be created (EEXIST: it is a file, not a directory)`,
  );
  t.notMatch(res.stdout + res.stderr, /edge listening/);
});

t.test('a data dir under a file cannot be created', async (t) => {
  const config = configDir(t);
  const parent = t.testdir({ file: 'x' });
  const data = join(parent, 'file', 'data');
  const res = await runCli(['run', '--config-dir', config, '--data-dir', data]);
  t.equal(res.code, 1, res.stderr);
  t.match(
    res.stderr,
    `data dir ${data}: cannot be created (ENOTDIR: a part of the path is a file)`,
  );
});

t.test('proxyauth stats without a store', async (t) => {
  const data = t.testdir({});
  const res = await runCli(['stats', '--data-dir', data]);
  t.equal(res.code, 1);
  t.match(res.stderr, join(data, 'proxyauth.mdb'));
  t.equal(res.stdout, '');
});

// `proxyauth explain` on the real CLI: the report's parts, --json's shape, the step that refused
// with the filter condition that failed, --body, the rate-limit settings, the upstream URL, and
// every bad invocation with its exit status. The verdicts themselves are compared with a live
// gateway in test/integration-explain.test.ts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openStore } from '../shared/store.js';
import { runCli } from './helpers/cli.js';
import { writeConfig } from './helpers/gateway.js';

const dir = await mkdtemp(join(tmpdir(), 'proxyauth-explain-'));
await writeConfig(dir, 0, {
  users: [
    { username: 'alice', password: 'alice-password', roles: ['ops', 'dev'] },
    { username: 'bob', password: 'bob-password' },
  ],
  config: {
    session_cookie: true,
    ratelimit_proxy: { requests_per_second: 20, burst: 5, block_delay: 0 },
  },
  routes: `routes:
  - prefix: /api
    target: http://127.0.0.1:9/base?tenant=t1
    username: [alice]
    allow_methods: [GET, POST]
  - prefix: /api/admin
    target: http://127.0.0.1:9/adm
    filters:
      allow:
        - { field: method, pattern: "^GET$" }
        - { field: header, name: "^x-key$", pattern: "^[0-9a-f]{4}$" }
  - prefix: /upload
    target: http://127.0.0.1:9/up
    ratelimit: { requests_per_second: 2, burst: 0, block_delay: 500 }
    filters:
      default_allow: true
      deny:
        - { field: body_raw, pattern: "DROP TABLE" }
`,
});
// The store a first start creates (empty key ring: config.json's secret is the active key).
await openStore(join(dir, 'data'), { readOnly: false }).close();
t.teardown(() => rm(dir, { recursive: true, force: true }));

const dirs = ['--config-dir', dir, '--data-dir', join(dir, 'data')];

/** A run can take tens of seconds on a machine other test runs share: not a hang. */
const SLOW_MS = 120_000;

function explain(args: string[], input?: string) {
  return runCli(['explain', ...dirs, ...args], input === undefined ? {} : { input }, SLOW_MS);
}

t.test('the report: routes, checks, rate limit, upstream URL and headers', async (t) => {
  const r = await explain(['--user', 'alice', 'GET', '/api/items/?page=2']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^canonical {3}\/api\/items\/$/m);
  t.match(r.stdout, /matched +\/api +the longest prefix/);
  t.match(r.stdout, /not matched +\/api\/admin +the path is not under this prefix/);
  t.match(r.stdout, /1\. allowed-methods +passed/);
  t.match(r.stdout, /2\. credential +passed/);
  t.match(r.stdout, /3\. user-list +passed/);
  t.match(r.stdout, /4\. rate-limit +passed/);
  t.match(r.stdout, 'rate limit  proxy: 20 req/s, burst 5, block_delay 0 ms; budget u:alice');
  t.match(r.stdout, 'upstream    GET http://127.0.0.1:9/base/items/?tenant=t1&page=2');
  t.match(r.stdout, /^ {2}x-user: alice$/m);
  t.match(r.stdout, /^ {2}x-user-roles: ops,dev$/m);
  t.match(r.stdout, 'forwarded upstream');
  t.match(
    r.stdout,
    /credential {2}minted for --user: user alice, token id [A-Za-z0-9_-]{22}, not revoked/,
  );
});

t.test('--json: a stable shape, null where a part does not apply', async (t) => {
  const r = await explain(['--json', 'GET', 'http://gw.example:8080/nowhere?x=1']);
  t.equal(r.code, 0, r.stderr);
  const e = JSON.parse(r.stdout) as Record<string, unknown>;
  t.same(Object.keys(e), [
    'request',
    'credential',
    'canonicalPath',
    'endpoint',
    'routes',
    'route',
    'foldCheck',
    'steps',
    'rateLimit',
    'upstream',
    'answer',
    'notes',
  ]);
  t.match(e.request, { method: 'GET', target: '/nowhere?x=1', host: 'gw.example:8080' });
  t.same(e.credential, { kind: 'none', user: null, tokenId: null, token: null, revoked: null });
  t.equal(e.route, null);
  t.equal(e.upstream, null);
  t.match(e.answer, { outcome: 'answered', status: 404, code: 'NO_ROUTE', closes: false });
  t.match((e.notes as string[])[0], /as they are on disk now/, 'says which config it explains');
});

t.test(
  'a filter refusal names the first condition that failed; the client body does not',
  async (t) => {
    // The method condition runs before the credential, the header one after the rate limit.
    const withUser = await explain(['--user', 'bob', '-H', 'x-key: nothex', 'GET', '/api/admin/x']);
    t.match(
      withUser.stdout,
      /request-filters +refused: FILTER_DENIED \[filters\.allow\[1\] \(header\) did not match/,
    );
    t.notMatch(withUser.stdout, /body: .*filters\.allow/, 'the refusal body does not name it');
    const post = await explain(['--user', 'bob', 'POST', '/api/admin/x']);
    t.match(
      post.stdout,
      /method-filters +refused: FILTER_DENIED \[filters\.allow\[0\] \(method\) did not match/,
    );
  },
);

t.test('--body: body filters read it (a file, or - for stdin)', async (t) => {
  const file = join(dir, 'body.txt');
  await writeFile(file, 'x; DROP TABLE users');
  const denied = await explain(['--user', 'bob', '--body', file, 'POST', '/upload/a']);
  t.equal(denied.code, 0, denied.stderr);
  t.match(
    denied.stdout,
    /body-filters +refused: FILTER_DENIED \[filters\.deny\[0\] \(body_raw\) matched\]/,
  );
  t.match(denied.stdout, 'body 19 bytes');
  t.match(denied.stdout, 'rate limit  route: 2 req/s, burst 0, block_delay 500 ms; budget u:bob');
  const passed = await explain(['--user', 'bob', '--body', '-', 'POST', '/upload/a'], 'hello');
  t.match(passed.stdout, /body-filters +passed after waiting/);
  t.match(passed.stdout, 'upstream    POST http://127.0.0.1:9/up/a');
});

t.test('CSRF on a cookie request; --token is shown by its id only', async (t) => {
  const r = await explain(['--user', 'alice', '--cookie', 'POST', '/api/x']);
  t.match(r.stdout, /csrf +refused: CSRF_INVALID/);
  t.match(r.stdout, /the edge logged \(warn\): CSRF check refused a request: no token/);
  t.match(r.stdout, 'answer      403 CSRF_INVALID');
  const bad = await explain(['--token', '-', 'GET', '/api/x'], 'not-a-token-of-ours');
  t.match(bad.stdout, 'credential  --token: not a valid token here (malformed)');
  t.match(bad.stdout, 'answer      401 TOKEN_INVALID');
  t.notMatch(bad.stdout, 'not-a-token-of-ours');
});

t.test('bad invocations: usage errors exit 2, unusable inputs exit 1', async (t) => {
  const usage: [string[], RegExp][] = [
    [['GET'], /explain needs a METHOD and a URL/],
    [['-H', 'no-colon', 'GET', '/x'], /expected 'Name: value'/],
    [['--user', 'alice', '--token', 'x', 'GET', '/x'], /--user or --token, not both/],
    [['--ip', '10.0.0.0/8', 'GET', '/x'], /is not an IP address/],
  ];
  for (const [args, message] of usage) {
    const r = await explain(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, message);
    t.match(r.stderr, /Usage: proxyauth explain/);
  }
  const unknown = await explain(['--user', 'mallory', 'GET', '/x']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, 'proxyauth: EXPLAIN_UNKNOWN_USER:');
  const body = await explain(['--body', join(dir, 'missing'), 'POST', '/x']);
  t.equal(body.code, 1);
  t.match(body.stderr, 'proxyauth: EXPLAIN_BODY_UNREADABLE: --body');
  const noStore = await runCli([
    'explain',
    '--config-dir',
    dir,
    '--data-dir',
    join(dir, 'none'),
    'GET',
    '/x',
  ]);
  t.equal(noStore.code, 1);
  t.match(noStore.stderr, /proxyauth: STORE_\w+:/);
});

t.test('a bad config is reported as check-config reports it, naming file and key', async (t) => {
  const bad = await mkdtemp(join(tmpdir(), 'proxyauth-explain-bad-'));
  t.teardown(() => rm(bad, { recursive: true, force: true }));
  await writeFile(join(bad, 'config.json'), JSON.stringify({ secret: 'short' }));
  const r = await runCli([
    'explain',
    '--config-dir',
    bad,
    '--data-dir',
    join(dir, 'data'),
    'GET',
    '/x',
  ]);
  t.equal(r.code, 1);
  const check = await runCli(['check-config', '--config-dir', bad]);
  t.equal(r.stderr, check.stderr, 'the same message as check-config');
  t.match(r.stderr, /config\.json: secret:/);
});

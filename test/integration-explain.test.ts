// `proxyauth explain` cannot disagree with the edges: the same requests go to a live gateway
// and through `explain` on the same config and data dirs, and the verdicts (status, error code,
// refusal body, and for forwarded requests the upstream path) must be equal, one by one.
import { request } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { loadConfigDir } from '../conf/load.js';
import type { ExplainSpec } from '../shared/explain-spec.js';
import { openStore } from '../shared/store.js';
import { type Explanation, explain } from '../worker/explain.js';
import { runCli } from './helpers/cli.js';
import { login, loginWithId, type RunningGateway, startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const reached: string[] = [];
const upstream = await startUpstream((req) => {
  reached.push(`${req.method} ${req.url}`);
  return false;
});
const gw: RunningGateway = await startGateway({
  users: [
    { username: 'alice', password: 'alice-password', roles: ['ops'] },
    { username: 'bob', password: 'bob-password' },
    { username: 'carol', password: 'carol-password' },
  ],
  config: { session_cookie: true },
  routes: `routes:
  - prefix: /api
    target: ${upstream.origin}/v1?tenant=t1
    username: [alice, carol]
    allow_methods: [GET, POST, DELETE]
    ratelimit: { requests_per_second: 1000, burst: 1000 }
  - prefix: /api/admin
    target: ${upstream.origin}/admin
    username: [alice]
    filters:
      allow:
        - { field: header, name: "^x-key$", pattern: "^[0-9a-f]{4}$" }
      deny:
        - { field: query, name: "^debug$", pattern: ".*" }
  - prefix: /upload
    target: ${upstream.origin}/up
    filters:
      default_allow: true
      deny:
        - { field: body_json, key: role, pattern: "^admin$" }
      max_body_bytes: 1024
  - prefix: /form
    target: ${upstream.origin}/form
  - prefix: /public
    target: ${upstream.origin}/pub
    secure: false
  - prefix: /keep
    target: ${upstream.origin}/k
    preserve_prefix: true
  - prefix: /exact
    target: ${upstream.origin}/only
    secure_path: true
`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const tokens = new Map<string, string>();
for (const user of ['alice', 'bob'])
  tokens.set(user, await login(gw.url, user, `${user}-password`));
// carol's token is revoked through the admin API: revocation is compared too.
const carol = await loginWithId(gw.url, 'carol', 'carol-password');
const revoked = await fetch(`${gw.url}/adm/revoke`, {
  method: 'POST',
  headers: { 'x-auth-token': 'a'.repeat(64), 'content-type': 'application/json' },
  body: JSON.stringify({ token_id: carol.tokenId }),
});
// No assertion before the subtests exist: tap would end the root test at the next await.
if (revoked.status !== 200) throw new Error(`revoke failed: ${revoked.status}`);

interface Case {
  name: string;
  method: string;
  path: string;
  headers?: [string, string][];
  body?: string;
  /** Sends the user's token (a login on the gateway; explain mints its own with --user). */
  user?: string;
  /** As the session cookie instead of a Bearer header. */
  cookie?: boolean;
  /** The raw token to send to both (explain --token). */
  token?: string;
  /** What both must say: a status and code, or forwarded to this upstream path. */
  expect: { status: number; code: string } | { forwarded: string };
}

const cases: Case[] = [
  {
    name: 'allowed',
    method: 'GET',
    path: '/api/items?page=2',
    user: 'alice',
    expect: { forwarded: '/v1/items?tenant=t1&page=2' },
  },
  {
    name: 'user not in list',
    method: 'GET',
    path: '/api/items',
    user: 'bob',
    expect: { status: 403, code: 'USER_NOT_ALLOWED' },
  },
  {
    name: 'no token',
    method: 'GET',
    path: '/api/items',
    expect: { status: 401, code: 'TOKEN_MISSING' },
  },
  {
    name: 'bad token',
    method: 'GET',
    path: '/api/items',
    headers: [['authorization', 'Bearer garbage']],
    expect: { status: 401, code: 'TOKEN_INVALID' },
  },
  {
    name: 'revoked token',
    method: 'GET',
    path: '/api/items',
    token: carol.token,
    expect: { status: 401, code: 'TOKEN_REVOKED' },
  },
  {
    name: 'method not allowed',
    method: 'PUT',
    path: '/api/items',
    user: 'alice',
    expect: { status: 405, code: 'METHOD_NOT_ALLOWED' },
  },
  {
    name: 'two credentials',
    method: 'GET',
    path: '/api/items',
    headers: [
      ['authorization', 'Bearer a'],
      ['authorization', 'Bearer b'],
    ],
    expect: { status: 400, code: 'CREDENTIALS_AMBIGUOUS' },
  },
  {
    name: 'header filter passes',
    method: 'GET',
    path: '/api/admin/x',
    user: 'alice',
    headers: [['x-key', '12ab']],
    expect: { forwarded: '/admin/x' },
  },
  {
    name: 'header filter: allow fails',
    method: 'GET',
    path: '/api/admin/x',
    user: 'alice',
    expect: { status: 403, code: 'FILTER_DENIED' },
  },
  {
    name: 'query filter: deny matches',
    method: 'GET',
    path: '/api/admin/x?debug=1',
    user: 'alice',
    headers: [['x-key', '12ab']],
    expect: { status: 403, code: 'FILTER_DENIED' },
  },
  {
    name: 'body filter: deny matches',
    method: 'POST',
    path: '/upload/doc',
    user: 'alice',
    headers: [['content-type', 'application/json']],
    body: '{"role":"admin"}',
    expect: { status: 403, code: 'FILTER_DENIED' },
  },
  {
    name: 'body filter passes',
    method: 'POST',
    path: '/upload/doc',
    user: 'alice',
    headers: [['content-type', 'application/json']],
    body: '{"role":"user"}',
    expect: { forwarded: '/up/doc' },
  },
  {
    name: 'CSRF on a cookie request',
    method: 'POST',
    path: '/form/save',
    user: 'alice',
    cookie: true,
    expect: { status: 403, code: 'CSRF_INVALID' },
  },
  {
    name: 'CSRF: foreign origin',
    method: 'POST',
    path: '/form/save',
    user: 'alice',
    cookie: true,
    headers: [['origin', 'https://evil.example']],
    expect: { status: 403, code: 'CSRF_ORIGIN_MISMATCH' },
  },
  {
    name: 'CSRF exempt: bearer',
    method: 'POST',
    path: '/form/save',
    user: 'alice',
    expect: { forwarded: '/form/save' },
  },
  { name: 'public route', method: 'GET', path: '/public/x', expect: { forwarded: '/pub/x' } },
  { name: 'no route', method: 'GET', path: '/nothing', expect: { status: 404, code: 'NO_ROUTE' } },
  {
    name: 'fold check',
    method: 'GET',
    path: '/api/ADMIN/x',
    user: 'alice',
    expect: { status: 400, code: 'BAD_PATH' },
  },
  {
    name: 'path above the root',
    method: 'GET',
    path: '/a/../../x',
    expect: { status: 400, code: 'BAD_PATH' },
  },
  {
    name: 'unknown admin path',
    method: 'GET',
    path: '/adm/nothing',
    expect: { status: 404, code: 'NOT_FOUND' },
  },
  {
    name: 'endpoint, other method',
    method: 'PUT',
    path: '/auth',
    expect: { status: 405, code: 'METHOD_NOT_ALLOWED' },
  },
  {
    name: 'TRACE',
    method: 'TRACE',
    path: '/api/items',
    expect: { status: 501, code: 'METHOD_NOT_SUPPORTED' },
  },
  {
    name: 'preserve_prefix',
    method: 'GET',
    path: '/keep/a/b',
    user: 'alice',
    expect: { forwarded: '/k/keep/a/b' },
  },
  {
    name: 'secure_path',
    method: 'GET',
    path: '/exact/any/thing?q=1',
    user: 'alice',
    expect: { forwarded: '/only?q=1' },
  },
];

interface Live {
  status: number;
  body: string;
  /** The answer's header lines as sent, names lower-cased, in order. */
  headers: [string, string][];
}

function live(c: Case): Promise<Live> {
  // Repeated names become several header lines (node:http sends an array value that way).
  const headers: Record<string, string | string[]> = {};
  const add = (name: string, value: string) => {
    const prior = headers[name];
    headers[name] = prior === undefined ? value : [prior, value].flat();
  };
  for (const [k, v] of c.headers ?? []) add(k, v);
  const token = c.token ?? (c.user === undefined ? undefined : tokens.get(c.user));
  if (token !== undefined) {
    if (c.cookie) add('cookie', `session_token=${token}`);
    else add('authorization', `Bearer ${token}`);
  }
  if (c.body !== undefined) add('content-length', String(Buffer.byteLength(c.body)));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gw.port,
        method: c.method,
        path: c.path,
        headers,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        const lines: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          lines.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
        }
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: lines }));
      },
    );
    req.on('error', reject);
    req.end(c.body);
  });
}

/*
 * explain() in this process: the same function the CLI's worker calls (test/cli-explain.test.ts
 * runs the command itself), on the gateway's config dir and its store opened read-only beside
 * it. One process for all cases: a CLI run per case costs seconds on a loaded machine.
 */
const loaded = await loadConfigDir(gw.configDir);
const store = openStore(join(gw.configDir, 'data'), { readOnly: true, create: false });
t.teardown(() => store.close());

function explained(c: Case): Promise<Explanation> {
  const headers: [string, string][] = [['host', `127.0.0.1:${gw.port}`], ...(c.headers ?? [])];
  const spec: ExplainSpec = {
    configDir: gw.configDir,
    dataDir: join(gw.configDir, 'data'),
    method: c.method,
    target: c.path,
    headers,
    body: c.body === undefined ? undefined : Buffer.from(c.body).toString('base64'),
    credential:
      c.token !== undefined
        ? { kind: 'token', token: c.token }
        : c.user !== undefined
          ? { kind: 'user', user: c.user }
          : undefined,
    viaCookie: c.cookie === true,
    ip: '127.0.0.1',
    json: true,
  };
  return explain({ spec, loaded, store, nowSeconds: Math.floor(Date.now() / 1000) });
}

for (const c of cases) {
  t.test(c.name, async (t) => {
    const before = reached.length;
    // explain sends nothing upstream: it may run while the live request is in flight.
    const [got, e] = await Promise.all([live(c), explained(c)]);
    const seen = reached.slice(before);
    if ('forwarded' in c.expect) {
      t.equal(got.status, 200, `live: forwarded (${got.body})`);
      t.same(seen, [`${c.method} ${c.expect.forwarded}`], 'the upstream saw the expected path');
      t.equal(e.answer.outcome, 'forwarded', 'explain: forwarded');
      t.equal(
        e.upstream?.url,
        `${upstream.origin}${c.expect.forwarded}`,
        'explain predicted that URL',
      );
      // Every header explain says the upstream gets, it got (credentials' values are not shown).
      const echoed = (JSON.parse(got.body) as { headers: Record<string, string> }).headers;
      for (const [name, value] of e.upstream?.headers ?? []) {
        if (value.endsWith('not shown)')) t.ok(echoed[name], `${name} sent`);
        else t.equal(echoed[name], value, `upstream header ${name}`);
      }
      return;
    }
    t.same(seen, [], 'live: the upstream was not called');
    const body = JSON.parse(got.body) as { error: string };
    t.same({ status: got.status, code: body.error }, c.expect, 'live verdict');
    t.same({ status: e.answer.status, code: e.answer.code }, c.expect, 'explain verdict');
    t.equal(e.answer.body, got.body, 'explain shows the body the edge sent, byte for byte');
    // And its head: every header the edge wrote itself (uWS adds date and content-length).
    const own = got.headers.filter(([name]) => name !== 'date' && name !== 'content-length');
    t.same(
      e.answer.headers.map(([name, value]) => [name.toLowerCase(), value]),
      own,
      'explain shows the headers the edge sent',
    );
  });
}

t.test('the revoked token is named by its id, never printed', async (t) => {
  const result = await runCli(
    [
      'explain',
      '--config-dir',
      gw.configDir,
      '--data-dir',
      join(gw.configDir, 'data'),
      '--token',
      '-',
      'GET',
      '/api/items',
    ],
    { input: carol.token },
  );
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, `token id ${carol.tokenId}, REVOKED`);
  t.notMatch(result.stdout + result.stderr, carol.token, 'the token itself is not printed');
});

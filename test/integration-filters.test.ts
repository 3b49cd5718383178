// routes.yml `filters` on the real CLI: every rule of README "Filters", against a real upstream
// that counts what reaches it (a refused request must never get there).
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { runCli } from './helpers/cli.js';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

const reached: string[] = [];
const upstream = await startUpstream((req) => {
  reached.push(`${req.method} ${req.url}`);
  return false;
});
const gw: RunningGateway = await startGateway({
  users: [{ username: 'alice', password: 'alice-password' }],
  routes: `routes:
  - prefix: /doc
    target: ${upstream.origin}/doc
    secure: false
    filters:
      allow:
        - field: method
          pattern: ^GET$
        - field: path
          pattern: ^/doc(?:/.*)?$
  - prefix: /key
    target: ${upstream.origin}/key
    secure: false
    filters:
      allow:
        - field: header
          name: ^X-API-Key$
          pattern: ^[0-9a-f]{32}$
  - prefix: /q
    target: ${upstream.origin}/q
    secure: false
    filters:
      allow:
        - field: query
          name: ^v$
          pattern: ^\\d+(?:\\.\\d+){0,2}$
      deny:
        - field: query
          name: ^mode$
          pattern: ^admin$
        - field: header
          name: ^x-debug$
          pattern: (?i)^on$
  - prefix: /json
    target: ${upstream.origin}/json
    username: [alice]
    filters:
      allow:
        - field: method
          pattern: ^POST$
        - field: body_json
          key: status
          pattern: ^active$
      deny:
        - field: body_raw
          pattern: (?i)drop\\s+table
        - field: body_json
          key: level
          pattern: ^5$
        - field: body_json
          key: flag
          pattern: ^true$
      max_body_bytes: 2048
  - prefix: /redos
    target: ${upstream.origin}/redos
    secure: false
    filters:
      default_allow: true
      deny:
        - field: body_raw
          pattern: ^(a+)+$
  - prefix: /closed
    target: ${upstream.origin}/closed
    secure: false
    filters:
      default_allow: false
  - prefix: /open
    target: ${upstream.origin}/open
    secure: false
    filters:
      default_allow: true
      deny:
        - field: path
          pattern: ^/open/private(?:/|$)
  - prefix: /tenant
    target: ${upstream.origin}/tenant
    filters:
      allow:
        - field: header
          name: ^x-tenant$
          pattern: ^[a-z]{1,16}$
  - prefix: /role
    target: ${upstream.origin}/role
    secure: false
    filters:
      default_allow: true
      deny:
        - field: body_json
          key: role
          pattern: ^admin$
`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const KEY = '0123456789abcdef0123456789abcdef';
/** Raw requests say `Connection: close`: the exchange ends with the answer, however slow. */
const RAW = { waitMs: 10_000 };

/** Sends a request and checks the answer; a refusal must not reach the upstream. */
async function expect(
  t: Test,
  path: string,
  status: number,
  init: RequestInit = {},
  code = 'FILTER_DENIED',
): Promise<Response> {
  const before = reached.length;
  const res = await fetch(`${gw.url}${path}`, init);
  const label = `${init.method ?? 'GET'} ${path}`;
  t.equal(res.status, status, `${label}: ${status}`);
  if (status >= 400) {
    const body = (await res.json()) as { error: string };
    t.equal(body.error, code, `${label}: ${code}`);
    t.equal(reached.length, before, `${label}: the upstream was not called`);
  } else {
    t.equal(reached.length, before + 1, `${label}: the upstream was called`);
  }
  return res;
}

t.test('method and path: every allow condition must match', async (t) => {
  await expect(t, '/doc/index.html', 200);
  await expect(t, '/doc', 200);
  await expect(t, '/doc/index.html', 403, { method: 'POST', body: 'x' });
  await expect(t, '/doc/index.html', 403, { method: 'DELETE' });
  // The path is the whole canonical path: /doc/%2e%2e/x never reaches here, /doc/a//b is /doc/a/b.
  await expect(t, '/doc/a//b', 200);
});

t.test('header: names case-insensitive, every line of a picked header must match', async (t) => {
  await expect(t, '/key/x', 403);
  await expect(t, '/key/x', 200, { headers: { 'X-API-Key': KEY } });
  await expect(t, '/key/x', 200, { headers: { 'x-api-key': KEY } });
  await expect(t, '/key/x', 403, { headers: { 'x-api-key': KEY.toUpperCase() } });
  await expect(t, '/key/x', 403, { headers: { 'x-api-key': `${KEY}0` } });
  // Two lines, one good one bad: a backend might read either, so allow refuses.
  const raw = await rawExchange(
    gw.port,
    [
      `GET /key/x HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nX-API-Key: nope\r\nConnection: close\r\n\r\n`,
    ],
    RAW,
  );
  t.equal(raw.responses[0]?.status, 403, 'repeated header with one bad value: 403');
  const both = await rawExchange(
    gw.port,
    [
      `GET /key/x HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nx-api-key: ${KEY}\r\nConnection: close\r\n\r\n`,
    ],
    RAW,
  );
  t.equal(both.responses[0]?.status, 200, 'repeated header, every value good: 200');
});

t.test('header deny: any matching line refuses; (?i) on the value', async (t) => {
  await expect(t, '/q?v=1', 200, { headers: { 'x-debug': 'off' } });
  await expect(t, '/q?v=1', 403, { headers: { 'x-debug': 'ON' } });
  const raw = await rawExchange(
    gw.port,
    ['GET /q?v=1 HTTP/1.1\r\nHost: x\r\nX-Debug: off\r\nX-Debug: on\r\nConnection: close\r\n\r\n'],
    RAW,
  );
  t.equal(raw.responses[0]?.status, 403, 'a second line that matches deny refuses');
});

t.test('query: decoded, repeated parameters, missing ones', async (t) => {
  await expect(t, '/q?v=1.2.3', 200);
  await expect(t, '/q?v=%31.2', 200);
  await expect(t, '/q?%76=1', 200);
  await expect(t, '/q', 403);
  await expect(t, '/q?w=1', 403);
  await expect(t, '/q?v=1.2.3.4', 403);
  await expect(t, '/q?v=1&v=x', 403);
  await expect(t, '/q?v=1&v=2', 200);
  await expect(t, '/q?v=1&mode=admin', 403);
  await expect(t, '/q?v=1&mode=ad%6Din', 403);
  await expect(t, '/q?v=1&mode=Admin', 200);
  // `+` is a space: "ad min" is not "admin".
  await expect(t, '/q?v=1&mode=ad+min', 200);
  // An escape that does not decode: what a backend would read is a guess.
  await expect(t, '/q?v=1&mode=%E0%A4', 403);
  // Parameter names are case-sensitive: V=1 is not v.
  await expect(t, '/q?V=1', 403);
});

t.test('default_allow decides when allow is empty; deny still refuses', async (t) => {
  await expect(t, '/closed/x', 403);
  await expect(t, '/closed/x', 403, { method: 'POST', body: '{}' });
  await expect(t, '/open/x', 200);
  await expect(t, '/open/private', 403);
  await expect(t, '/open/private/x', 403);
  await expect(t, '/open/privateer', 200);
});

t.test('body_json / body_raw: buffered, checked, forwarded unchanged', async (t) => {
  const token = await login(gw.url);
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const post = (body: string | Buffer, headers: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { ...auth, ...headers },
    body,
  });
  const good = JSON.stringify({ status: 'active', level: 50, note: 'é' });
  const res = await expect(t, '/json', 200, post(good));
  const echo = (await res.json()) as Echo;
  t.equal(echo.bodyBytes, Buffer.byteLength(good), 'the whole body reached the upstream');
  t.equal(echo.sha256, createHash('sha256').update(good).digest('hex'), 'unchanged');
  t.equal(echo.headers['content-length'], String(Buffer.byteLength(good)));
  await expect(t, '/json', 403, post(JSON.stringify({ status: 'inactive' })));
  await expect(t, '/json', 403, post(JSON.stringify({ other: 'active' })), 'FILTER_DENIED');
  await expect(t, '/json', 403, post(JSON.stringify({ status: ['active'] })));
  await expect(t, '/json', 403, post(JSON.stringify(['active'])));
  await expect(t, '/json', 403, post('{"status":"inactive","status":"active"}'));
  await expect(t, '/json', 403, post('{"status":"active",'));
  await expect(t, '/json', 403, post(`\ufeff${good}`));
  await expect(t, '/json', 403, post(Buffer.from([0x7b, 0xff, 0x7d])));
  // Numbers as JavaScript writes them, booleans as true/false.
  await expect(t, '/json', 403, post('{"status":"active","level":5}'));
  await expect(t, '/json', 403, post('{"status":"active","level":5.0}'));
  await expect(t, '/json', 403, post('{"status":"active","level":"5"}'));
  await expect(t, '/json', 200, post('{"status":"active","level":50}'));
  await expect(t, '/json', 403, post('{"status":"active","flag":true}'));
  await expect(t, '/json', 200, post('{"status":"active","flag":"yes"}'));
  // Nested keys are not top-level ones.
  await expect(t, '/json', 200, post('{"status":"active","inner":{"level":5}}'));
  await expect(t, '/json', 403, post(JSON.stringify({ status: 'active', q: 'x; Drop  TABLE y' })));
  await expect(
    t,
    '/json',
    413,
    post(JSON.stringify({ status: 'active', pad: 'x'.repeat(3000) })),
    'BODY_TOO_LARGE',
  );
  await expect(t, '/json', 403, post(gzipSync(good), { 'content-encoding': 'gzip' }));
  // No body at all: every JSON key is missing, so allow's body_json fails.
  await expect(t, '/json', 403, { method: 'POST', headers: auth });
});

t.test('a chunked body is buffered and forwarded with its length', async (t) => {
  const token = await login(gw.url);
  const body = '{"status":"active"}';
  const before = reached.length;
  const raw = await rawExchange(
    gw.port,
    [
      'POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n' +
        'Content-Type: application/json\r\n' +
        `Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
      `5\r\n${body.slice(0, 5)}\r\n`,
      `${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\n\r\n`,
    ],
    { gapMs: 50, waitMs: 10_000 },
  );
  const res = raw.responses[0];
  t.equal(res?.status, 200);
  const echo = JSON.parse(res?.body.toString() ?? '{}') as Echo;
  t.equal(echo.bodyBytes, body.length);
  t.equal(echo.headers['content-length'], String(body.length));
  t.equal(reached.length, before + 1);
});

t.test('head conditions run before the credential, body ones after it', async (t) => {
  // GET fails the method condition: refused before any token is asked for.
  await expect(t, '/json', 403);
  // A POST without a token is refused by the credential before its body is read.
  await expect(t, '/json', 401, { method: 'POST', body: '{"status":"active"}' }, 'TOKEN_MISSING');
});

t.test('a catastrophic pattern on a 64 KiB body runs in linear time', async (t) => {
  const started = performance.now();
  await expect(t, '/redos', 200, { method: 'POST', body: `${'a'.repeat(64 * 1024)}!` });
  const ms = performance.now() - started;
  t.ok(ms < 3000, `answered in ${ms.toFixed(0)} ms`);
  await expect(t, '/redos', 403, { method: 'POST', body: 'a'.repeat(64 * 1024) });
});

t.test('a route with only head conditions keeps streaming bodies of any size', async (t) => {
  const size = 3 * 1024 * 1024;
  const res = await expect(t, '/key/upload', 200, {
    method: 'POST',
    headers: { 'x-api-key': KEY },
    body: Buffer.alloc(size, 7),
  });
  t.equal(((await res.json()) as Echo).bodyBytes, size, 'more than the 1 MiB body bound');
});

t.test('check-config refuses what cannot run in linear time, naming file and key', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({ secret: 's'.repeat(64), users: [] }),
    'routes.yml': `routes:
  - prefix: /api
    target: http://127.0.0.1:8000/api
    filters:
      allow:
        - field: path
          pattern: ^/api(?=/)
      deny:
        - field: header
          name: ^x-a$
          pattern: (?:[0-9a-f]{16}){2}
        - field: query
          name: (a)\\1
          pattern: x
`,
  });
  const res = await runCli(['check-config', '--config-dir', dir]);
  t.equal(res.code, 1);
  const found = res.stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(': ').slice(0, 2));
  const routes = join(dir, 'routes.yml');
  t.same(found, [
    [routes, 'routes[0].filters.allow[0].pattern'],
    [routes, 'routes[0].filters.deny[0].pattern'],
    [routes, 'routes[0].filters.deny[1].name'],
  ]);
  t.match(res.stderr, /lookaheads are not supported/);
  t.match(res.stderr, /linear time/);
  t.match(res.stderr, /backreferences are not supported/);
});

t.test('path, header and query conditions run after the credential: 401 first', async (t) => {
  // An anonymous client cannot make the gateway evaluate them (README "Filters", order).
  await expect(t, '/tenant/x', 401, { headers: { 'x-tenant': 'NOT-OK' } }, 'TOKEN_MISSING');
  const token = await login(gw.url);
  const auth = { authorization: `Bearer ${token}` };
  await expect(t, '/tenant/x', 403, { headers: { ...auth, 'x-tenant': 'NOT-OK' } });
  await expect(t, '/tenant/x', 200, { headers: { ...auth, 'x-tenant': 'acme' } });
});

t.test('a path deny also fires on the lenient reading of the path', async (t) => {
  await expect(t, '/open/PRIVATE/x', 403);
  await expect(t, '/open/private./x', 403);
  await expect(t, '/open/public/x', 200);
});

t.test('body_json: a JSON media type, keys compared without letter case, depth', async (t) => {
  const post = (body: string, type?: string): RequestInit => ({
    method: 'POST',
    body,
    headers: type === undefined ? {} : { 'content-type': type },
  });
  // Valid JSON that a form parser would read as role=admin.
  const formish = '{"x":"&role=admin&"}';
  await expect(t, '/role/x', 403, post(formish, 'application/x-www-form-urlencoded'));
  await expect(t, '/role/x', 403, post('{"role":"user"}', 'text/plain'));
  await expect(t, '/role/x', 200, post(formish, 'application/json'));
  await expect(t, '/role/x', 200, post('{"role":"user"}', 'application/json; charset=utf-8'));
  await expect(t, '/role/x', 200, post('{"role":"user"}', 'application/vnd.api+json'));
  await expect(t, '/role/x', 403, post('{"role":"admin"}', 'application/json'));
  // Keys one letter case apart are one key to some backends (Go's encoding/json).
  await expect(t, '/role/x', 403, post('{"role":"user","ROLE":"admin"}', 'application/json'));
  await expect(t, '/role/x', 403, post('{"Role":"admin","role":"user"}', 'application/json'));
  // Nesting deeper than the parser's stack: refused as a filter refusal, not a 500.
  const deep = `{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
  await expect(t, '/role/x', 403, post(deep, 'application/json'));
});

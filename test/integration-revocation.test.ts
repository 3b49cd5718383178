// Revocation, stats and the admin API on the real CLI: 2 edges, a real upstream, the store in
// the data dir, restarts of the same node.
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import {
  type GatewayOptions,
  type RunningGateway,
  startGateway,
  waitFor,
} from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const ADMIN = 'a'.repeat(64);
const upstream = await startUpstream();
const dir = await mkdtemp(join(tmpdir(), 'proxyauth-revocation-'));
const options: GatewayOptions = {
  dir,
  users: [
    { username: 'alice', password: 'alice-password' },
    { username: 'bob', password: 'bob-password' },
  ],
  routes: `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`,
  config: { stats: true, token_expiry_seconds: 600 },
};
let gw: RunningGateway = await startGateway(options);
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on a fresh connection (each one a new accept, so both edges answer). */
function fresh(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gw.port,
        path,
        method: init.method ?? 'GET',
        agent: false,
        headers: init.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

function errorOf(a: Answer): string | undefined {
  try {
    return (JSON.parse(a.body) as { error?: string }).error;
  } catch {
    return undefined;
  }
}

async function login(username = 'alice'): Promise<{ token: string; token_id: string }> {
  const res = await fresh('/auth', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: `${username}-password` }),
  });
  if (res.status !== 200) throw new Error(`login ${res.status} ${res.body}`);
  return JSON.parse(res.body) as { token: string; token_id: string };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function admin(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { 'x-auth-token': ADMIN },
): Promise<Answer> {
  return fresh(path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** `n` GETs on fresh connections at once; their statuses and error codes. */
async function burst(n: number, token: string): Promise<{ status: number; error?: string }[]> {
  const answers = await Promise.all(
    Array.from({ length: n }, () => fresh('/api/x', { headers: bearer(token) })),
  );
  return answers.map((a) => ({ status: a.status, error: errorOf(a) }));
}

/** Pids of the edges that answered requests of `token` (from the access log). */
function edgesThatServed(user: string, since: number): Set<unknown> {
  const pids = new Set<unknown>();
  for (const line of gw.output().slice(since).split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.user === user && entry.status === 200 && entry.route === '/api') pids.add(entry.pid);
  }
  return pids;
}

t.test('a revoked token is refused on every edge at once, and after a restart', async (t) => {
  const { token, token_id } = await login();
  const mark = gw.output().length;
  // Cache the token on both edges first: fresh connections until both served it.
  t.ok(
    await waitFor(async () => {
      await burst(10, token);
      return edgesThatServed('alice', mark).size >= 2;
    }, 10_000),
    'both edges served (and cached) the token',
  );
  const revoked = await admin('POST', '/adm/revoke', { token_id });
  t.equal(revoked.status, 200, revoked.body);
  const answer = JSON.parse(revoked.body) as Record<string, unknown>;
  t.equal(answer.revoked, 'token');
  t.equal(answer.known_here, true);
  const started = Date.now();
  const after = await burst(50, token);
  const elapsed = Date.now() - started;
  t.same(
    after.filter((a) => a.status !== 401 || a.error !== 'TOKEN_REVOKED'),
    [],
    `50 requests on fresh connections right after the answer: all 401 TOKEN_REVOKED (${elapsed} ms)`,
  );

  await gw.stop();
  gw = await startGateway(options);
  const again = await burst(10, token);
  t.same(
    again.filter((a) => a.error !== 'TOKEN_REVOKED'),
    [],
    'still revoked after a restart',
  );
  const other = await login();
  t.equal((await fresh('/api/x', { headers: bearer(other.token) })).status, 200, 'others pass');
});

t.test('a revocation with exp holds until exp, then the token works again', async (t) => {
  const { token, token_id } = await login();
  const exp = Math.floor(Date.now() / 1000) + 2;
  const res = await admin('POST', '/adm/revoke', { token_id, exp });
  t.equal(res.status, 200, res.body);
  t.equal((JSON.parse(res.body) as { until: number }).until, exp);
  t.same(await burst(4, token), Array(4).fill({ status: 401, error: 'TOKEN_REVOKED' }));
  t.ok(
    await waitFor(async () => (await burst(4, token)).every((a) => a.status === 200), 5_000, 200),
    'accepted on every edge once exp passed',
  );
  t.ok(Date.now() / 1000 >= exp, 'not before exp');
});

t.test("revoking a user refuses all of the user's tokens; a new login works", async (t) => {
  const tokens = [await login('bob'), await login('bob'), await login('bob')];
  for (const { token } of tokens) t.equal((await burst(2, token))[0]?.status, 200);
  const res = await admin('POST', '/adm/revoke', { username: 'bob' });
  t.equal(res.status, 200, res.body);
  t.match(JSON.parse(res.body), { revoked: 'user', username: 'bob', known_here: true });
  for (const { token } of tokens) {
    t.same(await burst(4, token), Array(4).fill({ status: 401, error: 'TOKEN_REVOKED' }));
  }
  const fresh = await login('bob');
  t.same(await burst(4, fresh.token), Array(4).fill({ status: 200, error: undefined }));
  const alice = await login('alice');
  t.equal((await burst(1, alice.token))[0]?.status, 200, 'other users are untouched');
});

t.test('stats: requests over both edges are counted exactly', async (t) => {
  const { token, token_id } = await login();
  const results = await Promise.all(Array.from({ length: 3 }, () => burst(10, token)));
  t.equal(results.flat().filter((a) => a.status === 200).length, 30);
  let count = -1;
  await waitFor(
    async () => {
      const res = await admin('GET', '/adm/stats?user=alice&limit=1000');
      const users = JSON.parse(res.body) as {
        user: string;
        tokens: { token_id: string; count: number }[];
      }[];
      count = users.flatMap((u) => u.tokens).find((x) => x.token_id === token_id)?.count ?? -1;
      return count === 30;
    },
    5_000,
    200,
  );
  t.equal(count, 30, 'count 30 after the flush');
  const res = await admin('GET', '/adm/stats?user=alice&limit=1000');
  const [entry] = JSON.parse(res.body) as {
    user: string;
    tokens: { token_id: string; delivery_at: string; expire_at: string }[];
  }[];
  t.equal(entry?.user, 'alice');
  const mine = entry?.tokens.find((x) => x.token_id === token_id);
  t.match(mine?.delivery_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.match(mine?.expire_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const page = await admin('GET', '/adm/stats?limit=1');
  t.equal((JSON.parse(page.body) as unknown[]).length, 1, 'limit bounds the answer');
  t.match(page.headers.link, /^<\/adm\/stats\?limit=1&after=[^>]+>; rel="next"$/);
  t.equal((await admin('GET', '/adm/stats?limit=1001')).status, 400, 'limit above the maximum');
});

t.test('listing and lifting revocations', async (t) => {
  const a = await login();
  const b = await login();
  for (const { token_id } of [a, b]) {
    t.equal((await admin('POST', '/adm/revoke', { token_id })).status, 200);
  }
  const seen: string[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const query: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
    const res = await admin('GET', `/adm/revocations?limit=1${query}`);
    t.equal(res.status, 200, res.body);
    const page = JSON.parse(res.body) as {
      revocations: { kind: string; token_id?: string; username?: string }[];
      next: string | null;
    };
    t.ok(page.revocations.length <= 1);
    for (const r of page.revocations) seen.push(r.token_id ?? `user:${r.username}`);
    after = page.next;
    pages++;
  } while (after !== null && pages < 100);
  t.ok(seen.includes(a.token_id) && seen.includes(b.token_id), 'both listed');
  t.ok(seen.includes('user:bob'), 'the user revocation too');
  t.equal(new Set(seen).size, seen.length, 'each once');

  const lifted = await admin('DELETE', `/adm/revocations?token_id=${a.token_id}`);
  t.equal(lifted.status, 200, lifted.body);
  t.same(
    await burst(4, a.token),
    Array(4).fill({ status: 200, error: undefined }),
    'a works again',
  );
  t.equal((await burst(1, b.token))[0]?.error, 'TOKEN_REVOKED', 'b still refused');
  const again = await admin('DELETE', `/adm/revocations?token_id=${a.token_id}`);
  t.equal(again.status, 404);
  t.equal(errorOf(again), 'REVOCATION_NOT_FOUND');
});

t.test('a token id this node never issued is revoked for token_expiry_seconds', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const res = await admin('POST', '/adm/revoke', { token_id: 'AAAAAAAAAAAAAAAAAAAAAA' });
  t.equal(res.status, 200, res.body);
  const body = JSON.parse(res.body) as { known_here: boolean; until: number };
  t.equal(body.known_here, false);
  t.ok(body.until >= now + 600 && body.until <= now + 602, 'until = now + token_expiry_seconds');
});

t.test('logout revokes the bearer token', async (t) => {
  const { token } = await login();
  const out = await fresh('/logout', { headers: bearer(token) });
  t.equal(out.status, 200, out.body);
  t.equal((JSON.parse(out.body) as { logged_out: boolean }).logged_out, true);
  t.same(await burst(4, token), Array(4).fill({ status: 401, error: 'TOKEN_REVOKED' }));
  const post = await login();
  t.equal((await fresh('/logout', { method: 'POST', headers: bearer(post.token) })).status, 200);
  t.equal((await burst(1, post.token))[0]?.error, 'TOKEN_REVOKED');
  const none = await fresh('/logout');
  t.equal(none.status, 401);
  t.equal(errorOf(none), 'TOKEN_MISSING');
});

t.test('the admin API refuses bad calls with clear errors', async (t) => {
  const { token_id } = await login();
  const cases: [string, () => Promise<Answer>, number, string][] = [
    ['no token', () => admin('POST', '/adm/revoke', { token_id }, {}), 401, 'ADMIN_TOKEN_MISSING'],
    [
      'empty token',
      () => admin('POST', '/adm/revoke', { token_id }, { 'x-auth-token': '' }),
      401,
      'ADMIN_TOKEN_MISSING',
    ],
    [
      'wrong token',
      () => admin('POST', '/adm/revoke', { token_id }, { 'x-auth-token': 'b'.repeat(64) }),
      401,
      'ADMIN_TOKEN_INVALID',
    ],
    [
      'a prefix of the token',
      () => admin('POST', '/adm/revoke', { token_id }, { 'x-auth-token': 'a'.repeat(63) }),
      401,
      'ADMIN_TOKEN_INVALID',
    ],
    [
      'the bearer form',
      () => admin('POST', '/adm/revoke', { token_id }, { authorization: `Bearer ${ADMIN}` }),
      401,
      'ADMIN_TOKEN_MISSING',
    ],
    ['malformed JSON', () => admin('POST', '/adm/revoke', '{"token_id": '), 400, 'BAD_BODY'],
    ['not an object', () => admin('POST', '/adm/revoke', '[1]'), 400, 'BAD_BODY'],
    [
      'exp not a number',
      () => admin('POST', '/adm/revoke', { token_id, exp: 'soon' }),
      400,
      'BAD_BODY',
    ],
    [
      'exp a fraction',
      () => admin('POST', '/adm/revoke', { token_id, exp: 1e10 + 0.5 }),
      400,
      'BAD_BODY',
    ],
    [
      'exp in the past',
      () => admin('POST', '/adm/revoke', { token_id, exp: 1000 }),
      400,
      'BAD_BODY',
    ],
    [
      'both token_id and username',
      () => admin('POST', '/adm/revoke', { token_id, username: 'alice' }),
      400,
      'BAD_BODY',
    ],
    ['neither', () => admin('POST', '/adm/revoke', {}), 400, 'BAD_BODY'],
    ['an unknown field', () => admin('POST', '/adm/revoke', { token_id, why: 1 }), 400, 'BAD_BODY'],
    ['a bad token_id', () => admin('POST', '/adm/revoke', { token_id: 'x' }), 400, 'BAD_BODY'],
    [
      'a username that is not a string',
      () => admin('POST', '/adm/revoke', { username: 5 }),
      400,
      'BAD_BODY',
    ],
    [
      'a 1 MB body',
      () => admin('POST', '/adm/revoke', JSON.stringify({ token_id, pad: 'x'.repeat(1 << 20) })),
      413,
      'BODY_TOO_LARGE',
    ],
    [
      'not JSON',
      () =>
        fresh('/adm/revoke', {
          method: 'POST',
          headers: { 'x-auth-token': ADMIN, 'content-type': 'text/plain' },
          body: token_id,
        }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['the wrong method', () => admin('GET', '/adm/revoke'), 405, 'METHOD_NOT_ALLOWED'],
    ['an unknown admin path', () => admin('GET', '/adm/nothing'), 404, 'NOT_FOUND'],
    ['an unknown query parameter', () => admin('GET', '/adm/revocations?x=1'), 400, 'BAD_REQUEST'],
    ['a bad cursor', () => admin('GET', '/adm/revocations?after=%%%'), 400, 'BAD_REQUEST'],
    ['lift without a name', () => admin('DELETE', '/adm/revocations'), 400, 'BAD_REQUEST'],
  ];
  for (const [name, call, status, error] of cases) {
    const res = await call();
    t.equal(res.status, status, `${name}: ${status}`);
    t.equal(errorOf(res), error, `${name}: ${error}`);
  }
  t.equal((await burst(1, (await login()).token))[0]?.status, 200, 'nothing was revoked');
  t.match((await fresh('/adm/revoke')).headers.allow, 'POST', '405 names the allowed method');
  const head = await admin('HEAD', '/adm/revocations');
  t.equal(head.status, 200, 'HEAD on a listing');
  t.equal(head.body, '');
  t.ok(Number(head.headers['content-length']) > 0, 'with the length a GET would get');
  const logout = await fresh('/logout', { method: 'HEAD', headers: bearer((await login()).token) });
  t.equal(logout.status, 405, 'a HEAD never logs out');
  t.equal(logout.headers.allow, 'GET, POST');
});

t.test(
  'a later revocation never shortens an earlier one; lifting one that ended is a 404',
  async (t) => {
    const { token, token_id } = await login();
    const full = JSON.parse((await admin('POST', '/adm/revoke', { token_id })).body) as {
      until: number;
    };
    const now = Math.floor(Date.now() / 1000);
    const shorter = await admin('POST', '/adm/revoke', { token_id, exp: now + 2 });
    t.equal(shorter.status, 200);
    t.equal(
      (JSON.parse(shorter.body) as { until: number }).until,
      full.until,
      'the later until stays',
    );
    await new Promise((r) => setTimeout(r, 3_000));
    t.same(await burst(4, token), Array(4).fill({ status: 401, error: 'TOKEN_REVOKED' }));

    const other = await login();
    const soon = Math.floor(Date.now() / 1000) + 2;
    t.equal(
      (await admin('POST', '/adm/revoke', { token_id: other.token_id, exp: soon })).status,
      200,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    const lift = await admin('DELETE', `/adm/revocations?token_id=${other.token_id}`);
    t.equal(lift.status, 404, 'it had ended');
    t.equal(errorOf(lift), 'REVOCATION_NOT_FOUND');
  },
);

t.test('revoking a user twice in one second catches a login made in between', async (t) => {
  const first = JSON.parse((await admin('POST', '/adm/revoke', { username: 'bob' })).body) as {
    not_before: number;
  };
  const between = await login('bob');
  const second = JSON.parse((await admin('POST', '/adm/revoke', { username: 'bob' })).body) as {
    not_before: number;
  };
  t.ok(second.not_before > first.not_before, 'not_before moves forward');
  t.same(await burst(4, between.token), Array(4).fill({ status: 401, error: 'TOKEN_REVOKED' }));
  const after = await login('bob');
  t.same(await burst(4, after.token), Array(4).fill({ status: 200, error: undefined }));
});

t.test('usernames follow one rule everywhere: 400, never a store error', async (t) => {
  for (const username of ['a'.repeat(256), 'x\u0000y', '\ud800', 'tab\there']) {
    const name = username;
    const revoke = await admin('POST', '/adm/revoke', { username: name });
    t.equal(revoke.status, 400, `revoke ${JSON.stringify(name).slice(0, 20)}`);
    t.equal(errorOf(revoke), 'BAD_BODY');
    // A query string carries UTF-8: a lone surrogate cannot be written there.
    if (name === '\ud800') continue;
    const lift = await admin('DELETE', `/adm/revocations?username=${encodeURIComponent(name)}`);
    t.equal(lift.status, 400, 'lift');
    const stats = await admin('GET', `/adm/stats?user=${encodeURIComponent(name)}`);
    t.equal(stats.status, 400, 'stats');
  }
  const ok = await admin('POST', '/adm/revoke', { username: 'é'.repeat(127) });
  t.equal(ok.status, 200, '254 bytes of UTF-8 is a name');
  t.equal(
    (await admin('DELETE', `/adm/revocations?username=${encodeURIComponent('é'.repeat(127))}`))
      .status,
    200,
  );
  t.notMatch(gw.output(), /store write failed/, 'no false store outage in the log');
});

t.test('proxyauth stats reads the running node from its data dir', async (t) => {
  const { token, token_id } = await login('bob');
  t.same(await burst(3, token), Array(3).fill({ status: 200, error: undefined }));
  const dataDir = join(dir, 'data');
  let json: { user: string; tokens: { token_id: string; count: number }[] }[] = [];
  await waitFor(
    async () => {
      const res = await runCli(['stats', '--data-dir', dataDir, '--user', 'bob', '--json']);
      json = JSON.parse(res.stdout);
      return json[0]?.tokens.find((x) => x.token_id === token_id)?.count === 3;
    },
    5_000,
    200,
  );
  t.equal(json.length, 1, 'only bob');
  t.equal(json[0]?.tokens.find((x) => x.token_id === token_id)?.count, 3, '--json: 3 uses');
  const table = await runCli(['stats', '--data-dir', dataDir]);
  t.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  t.equal(lines.shift(), 'uses are counted while "stats" is true in config.json');
  t.match(lines[0], /^USER +TOKEN ID +USES +ISSUED \(UTC\) +EXPIRES \(UTC\) +REVOKED$/);
  t.match(
    lines.find((l) => l.includes(token_id)),
    new RegExp(`^bob +${token_id} +3 +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ +\\d{4}-`),
  );
  t.ok(
    lines.some((l) => l.startsWith('alice ')),
    'every user',
  );
  t.match(
    lines.find((l) => l.includes(token_id)),
    / -$/,
    'not revoked',
  );
  t.equal((await admin('POST', '/adm/revoke', { token_id })).status, 200);
  const after = await runCli(['stats', '--data-dir', dataDir, '--user', 'bob']);
  t.match(
    after.stdout.split('\n').find((l) => l.includes(token_id)),
    / yes$/,
    'revoked: yes',
  );
  const asJson = JSON.parse(
    (await runCli(['stats', '--data-dir', dataDir, '--user', 'bob', '--json'])).stdout,
  ) as { tokens: { token_id: string; revoked: boolean }[] }[];
  t.equal(asJson[0]?.tokens.find((x) => x.token_id === token_id)?.revoked, true);
  const nobody = await runCli(['stats', '--data-dir', dataDir, '--user', 'nobody']);
  t.equal(nobody.stdout, 'no unexpired tokens\n');
});

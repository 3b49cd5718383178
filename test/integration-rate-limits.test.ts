// Rate limits on the real CLI with 2 edges: one budget per client however its connections are
// spread over the edges, the original's 429 with Retry-After and the IETF RateLimit headers,
// block_delay, limits off at 0, per-user keys, per-route blocks, the client address rules, and
// a reload that changes a limit.

import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Client } from 'undici';
import {
  logged,
  login,
  type RunningGateway,
  startGateway,
  startGatewaysOver,
  waitFor,
} from './helpers/gateway.js';
import { routesYaml } from './helpers/routes-yaml.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

const hits = new Map<string, number>();
const upstream = await startUpstream((req) => {
  const route = (req.url ?? '').split('/')[1] ?? '';
  hits.set(route, (hits.get(route) ?? 0) + 1);
  return false;
});

const routes = (extra = '') =>
  routesYaml(upstream.origin, [
    { prefix: '/exact', secure: false, ratelimit: '{ requests_per_second: 50, burst: 10 }' },
    { prefix: '/shape', secure: false, ratelimit: '{ requests_per_second: 1, burst: 0 }' },
    {
      prefix: '/block',
      secure: false,
      ratelimit: '{ requests_per_second: 20, burst: 0, block_delay: 1500 }',
    },
    { prefix: '/free', secure: false, ratelimit: '{ requests_per_second: 0 }' },
    { prefix: '/users' },
    { prefix: '/open', secure: false },
    { prefix: '/bodies', secure: false, ratelimit: '{ requests_per_second: 1000, burst: 1000 }' },
  ]) + extra;

const users = [
  { username: 'alice', password: 'alice-password' },
  { username: 'bob', password: 'bob-password' },
];
const config = (trusted: string[]) => ({
  ratelimit_proxy: { requests_per_second: 1, burst: 1 },
  trusted_proxies: trusted,
});
const [gw, behind] = await startGatewaysOver(t, upstream, [
  { users, config: config([]), routes: routes() },
  { users, config: config(['127.0.0.1']), routes: routes() },
]);

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function get(g: RunningGateway, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${g.url}${path}`, { headers });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {}
  return { status: res.status, headers: res.headers, body } satisfies Answer;
}

/** `n` requests in a row; their statuses. */
async function burst(g: RunningGateway, path: string, n: number, headers = {}) {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(g, path, headers)).status);
  return out;
}

const count = (list: number[], status: number) => list.filter((s) => s === status).length;

/** The pid of the edge that served `path` (access log). */
async function edgeOf(g: RunningGateway, path: string): Promise<unknown> {
  const find = () => logged(g.output(), { type: 'access', path })[0];
  await waitFor(() => find() !== undefined, 5_000);
  return find()?.pid;
}

/** `n` keep-alive connections that reach both edges (probed on the unlimited route). */
async function connectionsOnBothEdges(g: RunningGateway, n: number): Promise<Client[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const clients = Array.from({ length: n }, () => new Client(g.url, { pipelining: 1 }));
    const pids = new Set<unknown>();
    for (const [i, client] of clients.entries()) {
      const path = `/free/probe-${attempt}-${i}`;
      const res = await client.request({ path, method: 'GET' });
      await res.body.dump();
      pids.add(await edgeOf(g, path));
    }
    if (pids.size === 2) return clients;
    await Promise.all(clients.map((c) => c.close()));
  }
  throw new Error('the kernel kept every connection on one edge');
}

t.test('exact across edges: 8 connections, 2 edges, 50 rps + 10 burst over 5 s', async (t) => {
  const clients = await connectionsOnBothEdges(gw, 8);
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const before = hits.get('exact') ?? 0;
  const statuses = new Map<number, number>();
  const started = performance.now();
  const deadline = started + 5_000;
  let seq = 0;
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < deadline) {
        const res = await client.request({ path: `/exact/${seq++}`, method: 'GET' });
        await res.body.dump();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const accepted = statuses.get(200) ?? 0;
  const allowed = 50 * seconds + 10;
  t.ok(accepted <= allowed * 1.05, `${accepted} accepted, at most ${allowed.toFixed(0)} + 5%`);
  t.ok(accepted >= allowed * 0.9, `${accepted} accepted, at least 90% of ${allowed.toFixed(0)}`);
  t.ok((statuses.get(429) ?? 0) > accepted, 'the rest were refused');
  t.same([...statuses.keys()].sort(), [200, 429], 'nothing but 200 and 429');
  t.equal((hits.get('exact') ?? 0) - before, accepted, 'refused requests never reached upstream');
  const pids = new Set(
    logged(gw.output(), { type: 'access', status: 200 })
      .filter((l) => String(l.path).startsWith('/exact/'))
      .map((l) => l.pid),
  );
  t.equal(pids.size, 2, 'both edges accepted requests');
});

t.test('a request body survives the wait for tokens (first request of a client)', async (t) => {
  const body = randomBytes(3 * 1024 * 1024);
  const sha256 = createHash('sha256').update(body).digest('hex');
  // Each request comes from a new client (trusted X-Forwarded-For): each waits for an ask.
  for (const [i, chunked] of [
    [1, false],
    [2, true],
  ] as const) {
    const res = await fetch(`${behind.url}/bodies/${i}`, {
      method: 'POST',
      headers: { 'x-forwarded-for': `192.0.2.${i}`, 'content-type': 'application/octet-stream' },
      body: chunked
        ? new ReadableStream({
            start(c) {
              for (let o = 0; o < body.length; o += 65_536) c.enqueue(body.subarray(o, o + 65_536));
              c.close();
            },
          })
        : body,
      ...(chunked ? { duplex: 'half' } : {}),
    } as RequestInit);
    t.equal(res.status, 200);
    const echo = (await res.json()) as Echo;
    t.equal(echo.bodyBytes, body.length, `${chunked ? 'chunked' : 'Content-Length'}: every byte`);
    t.equal(echo.sha256, sha256, 'unchanged');
  }
});

t.test("429: the original's body, Retry-After, RateLimit-Policy and RateLimit", async (t) => {
  const ok = await get(gw, '/shape/a');
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('ratelimit-policy'), null, 'the policy is announced with refusals');
  t.match(ok.headers.get('ratelimit'), /^"route";r=0;t=1$/, 'nothing left, full in a second');
  const before = hits.get('shape') ?? 0;
  const refused = await get(gw, '/shape/b');
  t.equal(refused.status, 429);
  t.same(refused.body, {
    code: 429,
    error: 'TooManyRequests',
    message: 'Too Many Requests',
    after: 1,
  });
  t.equal(refused.headers.get('retry-after'), '1');
  t.equal(refused.headers.get('ratelimit-policy'), '"route";q=1;w=1');
  t.equal(refused.headers.get('ratelimit'), '"route";r=0;t=1');
  t.equal(refused.headers.get('content-type'), 'application/json');
  t.equal(hits.get('shape') ?? 0, before, 'the upstream was not called');
  const line = logged(gw.output(), { type: 'access', path: '/shape/b' });
  await waitFor(() => logged(gw.output(), { type: 'access', path: '/shape/b' }).length > 0, 5_000);
  t.equal(
    logged(gw.output(), { type: 'access', path: '/shape/b' })[0]?.code ?? line[0]?.code,
    'RATE_LIMITED',
    'the access log names the refusal',
  );
  await new Promise((r) => setTimeout(r, 1_100));
  t.equal((await get(gw, '/shape/c')).status, 200, 'a second later, a token again');
});

t.test('block_delay: refused for that long, every request, then accepted', async (t) => {
  const first = await burst(gw, '/block/x', 5);
  t.same(first.slice(0, 1), [200]);
  t.ok(count(first, 429) >= 1, 'going over the rate is refused');
  const refusedAt = performance.now();
  // 20 rps refills a token every 50 ms: without the block these would pass.
  for (const wait of [200, 400]) {
    await new Promise((r) => setTimeout(r, wait));
    const res = await get(gw, '/block/y');
    t.equal(res.status, 429, `still refused ${Math.round(performance.now() - refusedAt)} ms in`);
    t.ok(Number(res.headers.get('retry-after')) >= 1);
  }
  await new Promise((r) => setTimeout(r, Math.max(0, 1_600 - (performance.now() - refusedAt))));
  t.equal((await get(gw, '/block/z')).status, 200, 'accepted once the block is over');
});

t.test('limits on, off and at 0 start without a warning about them', async (t) => {
  const warnings = logged(gw.output(), { level: 'warn' }).map((l) => String(l.message));
  t.same(
    warnings.filter((m) => /ratelimit|rate limit/i.test(m)),
    [],
  );
});

t.test('a route with requests_per_second 0 is not limited and says nothing', async (t) => {
  const statuses = await burst(gw, '/free/n', 40);
  t.equal(count(statuses, 200), 40);
  const res = await get(gw, '/free/h');
  t.equal(res.headers.get('ratelimit'), null);
  t.equal(res.headers.get('ratelimit-policy'), null);
});

t.test('per user: two users from one address have their own budgets', async (t) => {
  const [alice, bob] = await Promise.all([
    login(gw.url, 'alice', 'alice-password'),
    login(gw.url, 'bob', 'bob-password'),
  ]);
  const asAlice = { authorization: `Bearer ${alice}` };
  const asBob = { authorization: `Bearer ${bob}` };
  const a = await burst(gw, '/users/1', 4, asAlice);
  t.same(a.slice(0, 2), [200, 200], 'ratelimit_proxy: 1 rps + 1 burst');
  t.ok(count(a, 429) >= 1);
  const b = await burst(gw, '/users/2', 2, asBob);
  t.same(b, [200, 200], "bob is not limited by alice's budget");
  const res = await get(gw, '/users/3', asAlice);
  t.match(res.headers.get('ratelimit'), /^"proxy";r=/, 'the route uses ratelimit_proxy');
  // A second token of alice shares her budget ("per user rather than per token").
  const again = await login(gw.url, 'alice', 'alice-password');
  t.equal((await get(gw, '/users/4', { authorization: `Bearer ${again}` })).status, 429);
});

t.test('an untrusted peer: a spoofed X-Forwarded-For is not a new client', async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    statuses.push((await get(gw, '/open/s', { 'x-forwarded-for': `198.51.100.${i}` })).status);
  }
  t.same(statuses.slice(0, 2), [200, 200]);
  t.ok(count(statuses, 429) >= 1, 'one budget for 127.0.0.1, whatever the header says');
  await waitFor(() => logged(gw.output(), { type: 'access', path: '/open/s' }).length >= 4, 5_000);
  const ips = logged(gw.output(), { type: 'access', path: '/open/s' }).map((l) => l.ip);
  t.same([...new Set(ips)], ['127.0.0.1'], 'and the log shows the peer');
});

t.test('a trusted peer: X-Forwarded-For names the client, each with its budget', async (t) => {
  for (let i = 0; i < 3; i++) {
    const xff = { 'x-forwarded-for': `203.0.113.${i}` };
    const statuses = await burst(behind, `/open/c${i}`, 3, xff);
    t.same(statuses.slice(0, 2), [200, 200], `client ${i} has its own 1 rps + 1 burst`);
    t.equal(statuses[2], 429);
  }
  // IPv6 clients are keyed by their /64: two hosts of one /64 share a budget.
  const v6 = await burst(behind, '/open/v6', 2, { 'x-forwarded-for': '2001:db8:1:2::1' });
  t.same(v6, [200, 200]);
  const same64 = await get(behind, '/open/v6', { 'x-forwarded-for': '2001:db8:1:2::ffff' });
  t.equal(same64.status, 429, 'same /64, same budget');
  const other64 = await get(behind, '/open/v6', { 'x-forwarded-for': '2001:db8:1:3::1' });
  t.equal(other64.status, 200, 'another /64, another budget');
});

t.test('a reload that changes a limit applies it without a restart', async (t) => {
  const g = await startGateway({
    users,
    config: { ratelimit_proxy: { requests_per_second: 1, burst: 0 } },
    routes: routes(),
  });
  t.teardown(() => g.stop());
  t.same(await burst(g, '/open/r', 2), [200, 429], '1 rps, no burst');
  const pid = g.proc.pid;
  const raw = JSON.parse(
    await import('node:fs/promises').then((fs) =>
      fs.readFile(join(g.configDir, 'config.json'), 'utf8'),
    ),
  ) as Record<string, unknown>;
  raw.ratelimit_proxy = { requests_per_second: 1000, burst: 100 };
  await writeFile(join(g.configDir, 'config.json'), JSON.stringify(raw, null, 2));
  const applied = await waitFor(
    async () => {
      const left = /^"proxy";r=(\d+)/.exec(
        (await get(g, '/open/r')).headers.get('ratelimit') ?? '',
      );
      return left !== null && Number(left[1]) > 1;
    },
    10_000,
    100,
  );
  t.ok(applied, 'the new policy is announced');
  t.equal(count(await burst(g, '/open/r', 50), 200), 50, 'and enforced');
  t.equal(g.proc.pid, pid, 'same process');
  raw.ratelimit_proxy = { requests_per_second: 0 };
  await writeFile(join(g.configDir, 'config.json'), JSON.stringify(raw, null, 2));
  t.ok(
    await waitFor(
      async () => (await get(g, '/open/r')).headers.get('ratelimit') === null,
      10_000,
      100,
    ),
    'turned off by a reload',
  );
});

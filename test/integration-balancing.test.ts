import { writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from './helpers/free-port.js';
import { logged, type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

/*
 * Load balancing, failover and health on the real CLI. One edge (num_instances: 1): backend
 * state is per edge, and the counts below are exact only with one.
 */

interface Tagged {
  name: string;
  origin: string;
  /** Requests other than health checks, as `METHOD url`. */
  hits: string[];
  checks: number;
  health: number;
  close: () => Promise<void>;
}

async function tagged(name: string): Promise<Tagged> {
  const state = { hits: [] as string[], checks: 0, health: 200 };
  const up = await startUpstream((req, res) => {
    if (req.url === '/healthz') {
      state.checks++;
      res.writeHead(state.health);
      res.end();
      return true;
    }
    state.hits.push(`${req.method} ${req.url}`);
    if (req.url?.includes('/status/')) return false;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
      res.end(JSON.stringify({ name, url: req.url }));
    });
    return true;
  });
  return {
    name,
    origin: up.origin,
    get hits() {
      return state.hits;
    },
    get checks() {
      return state.checks;
    },
    get health() {
      return state.health;
    },
    set health(s: number) {
      state.health = s;
    },
    close: up.close,
  } as Tagged;
}

/** Accepts, and resets the connection as soon as a request's first bytes arrive. */
async function resetter(): Promise<{ port: number; requests: () => number; close: () => void }> {
  let requests = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('data', () => {
      requests++;
      socket.resetAndDestroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests: () => requests,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const a = await tagged('a');
const b = await tagged('b');
const c = await tagged('c');
const hc1 = await tagged('hc1');
const hc2 = await tagged('hc2');
const reset = await resetter();
const refused1 = await freePort();
const refused2 = await freePort();
const refused3 = await freePort();
const refused4 = await freePort();
const dead = (port: number) => `http://127.0.0.1:${port}`;

function routes(extra = ''): string {
  return `routes:
  - prefix: /w
    target: ${a.origin}/base?t=1
    secure: false
    backends:
      - { url: "${b.origin}/other", weight: 3 }
      - { url: "${c.origin}/never", weight: 0 }
  - prefix: /status
    target: ${a.origin}
    secure: false
    backends: ["${b.origin}"]
  - prefix: /refused
    target: ${dead(refused1)}/x
    secure: false
    backends: ["${c.origin}/c"]
  - prefix: /reset-post
    target: http://127.0.0.1:${reset.port}
    secure: false
    backends: ["${c.origin}/post"]
  - prefix: /reset-get
    target: http://127.0.0.1:${reset.port}
    secure: false
    backends: ["${c.origin}/get"]
  - prefix: /backup-idle
    target: ${a.origin}/primary
    secure: false
    backends: [{ url: "${c.origin}/backup-idle", weight: -1 }]
  - prefix: /backup-used
    target: ${dead(refused2)}
    secure: false
    backends: [{ url: "${c.origin}/backup-used", weight: -1 }]
  - prefix: /alldown
    target: ${dead(refused3)}
    secure: false
    backends: ["${dead(refused4)}"]
  - prefix: /hc
    target: ${hc1.origin}/hc
    secure: false
    backends: ["${hc2.origin}/hc"]
    health_check: { path: /healthz, interval: 200, timeout: 150 }
${extra}`;
}

const gw: RunningGateway = await startGateway({
  config: { num_instances: 1, client_timeout: 2000 },
  routes: routes(),
});
t.teardown(async () => {
  await gw.stop();
  await Promise.all([a, b, c, hc1, hc2].map((u) => u.close()));
  reset.close();
});

const get = (path: string, init?: RequestInit) => fetch(`${gw.url}${path}`, init);

async function names(path: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await get(path);
    out.push(res.status === 200 ? String(res.headers.get('x-backend')) : String(res.status));
    await res.arrayBuffer();
  }
  return out;
}

const count = (list: string[], x: string) => list.filter((v) => v === x).length;

t.test(
  'weights 1 (target) and 3: exact proportions, each backend its own path and query',
  async (t) => {
    const before = { a: a.hits.length, b: b.hits.length };
    const got = await names('/w/item?q=2', 400);
    t.equal(count(got, 'a'), 100, 'target: weight 1');
    t.equal(count(got, 'b'), 300, 'b: weight 3');
    t.equal(c.hits.filter((h) => h.includes('/never')).length, 0, 'weight 0: never used');
    t.equal(a.hits.at(-1), 'GET /base/item?t=1&q=2', "the target's path and query");
    t.equal(b.hits.at(-1), 'GET /other/item?q=2', "b's own path");
    t.equal(a.hits.length - before.a + b.hits.length - before.b, 400, 'one upstream request each');
  },
);

t.test('an HTTP status, any status, is the answer: it passes through, no failover', async (t) => {
  const before = a.hits.length + b.hits.length;
  for (const status of [404, 500, 502, 503]) {
    for (let i = 0; i < 2; i++) {
      const res = await get(`/status/status/${status}`);
      t.equal(res.status, status);
      t.equal(res.headers.get('x-upstream'), 'yes', 'the backend answered');
      await res.arrayBuffer();
    }
  }
  t.equal(a.hits.length + b.hits.length - before, 8, 'each request reached one backend once');
  t.equal(logged(gw.output(), { message: 'upstream failover', route: '/status' }).length, 0);
});

t.test('connection refused: failover, then the backend is skipped (logged once)', async (t) => {
  const got = await names('/refused/y', 20);
  t.same(new Set(got), new Set(['c']), 'every request answered by the live backend');
  t.equal(c.hits.filter((h) => h === 'GET /c/y').length, 20);
  const failovers = logged(gw.output(), { message: 'upstream failover', route: '/refused' });
  t.equal(failovers.length, 3, 'one line per failover, none once the backend is known down');
  t.equal(failovers[0]?.code, 'ECONNREFUSED');
  t.equal(
    logged(gw.output(), { message: 'backend down: skipped for a cool-down', route: '/refused' })
      .length,
    1,
  );
});

t.test('a reset after a POST body was sent: 502, never replayed elsewhere', async (t) => {
  const before = reset.requests();
  const results: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await get('/reset-post/p', { method: 'POST', body: `payload-${i}` });
    results.push(res.status);
    await res.arrayBuffer();
  }
  const posted = c.hits.filter((h) => h === 'POST /post/p').length;
  t.equal(count(results.map(String), '200'), posted, 'each 200 is one POST the backend got once');
  t.equal(count(results.map(String), '502'), 6 - posted, 'the others are 502');
  t.ok(posted > 0 && posted < 6, 'both backends were used');
  t.equal(reset.requests() - before, 6 - posted, 'the resetting backend got each of the rest once');
});

t.test('a reset of an idempotent GET: failover to the next backend', async (t) => {
  const got = await names('/reset-get/g', 8);
  t.same(new Set(got), new Set(['c']), 'all answered by the live backend');
  t.ok(logged(gw.output(), { message: 'upstream failover', route: '/reset-get' }).length >= 1);
});

t.test('weight -1: a backup, used only while every weighted backend is down', async (t) => {
  const idle = await names('/backup-idle/z', 20);
  t.same(new Set(idle), new Set(['a']));
  t.equal(c.hits.filter((h) => h.startsWith('GET /backup-idle')).length, 0, 'backup idle');
  const used = await names('/backup-used/z', 10);
  t.same(new Set(used), new Set(['c']), 'the only weighted backend refuses: the backup answers');
});

t.test('all down: 502 while trying, then 503 NO_HEALTHY_UPSTREAM with Retry-After', async (t) => {
  const first = await get('/alldown/x');
  t.equal(first.status, 502);
  t.equal(((await first.json()) as { error: string }).error, 'UPSTREAM_UNREACHABLE');
  await get('/alldown/x').then((r) => r.arrayBuffer());
  await get('/alldown/x').then((r) => r.arrayBuffer());
  const res = await get('/alldown/x');
  t.equal(res.status, 503);
  const retry = Number(res.headers.get('retry-after'));
  t.ok(retry >= 1 && retry <= 30, `Retry-After: ${retry}`);
  const body = (await res.json()) as { error: string; after: number };
  t.equal(body.error, 'NO_HEALTHY_UPSTREAM');
  t.equal(body.after, retry);
});

t.test('active health checks take a backend out and bring it back', async (t) => {
  t.ok(await waitFor(() => hc1.checks > 0 && hc2.checks > 0, 2_000), 'checks run');
  hc1.health = 500;
  const outSince = hc1.checks;
  t.ok(await waitFor(() => hc1.checks > outSince + 1, 2_000));
  t.same(new Set(await names('/hc/x', 10)), new Set(['hc2']), 'failing check: skipped');
  hc2.health = 503;
  const bothSince = hc2.checks;
  t.ok(await waitFor(() => hc2.checks > bothSince + 1, 2_000));
  const res = await get('/hc/x');
  t.equal(res.status, 503, 'both failing: 503');
  t.equal(((await res.json()) as { error: string }).error, 'NO_HEALTHY_UPSTREAM');
  t.equal(res.headers.get('retry-after'), '1', 'the next check is due within a second');
  hc1.health = 200;
  hc2.health = 200;
  const backSince = hc1.checks;
  t.ok(await waitFor(() => hc1.checks > backSince + 1 && hc2.checks > backSince + 1, 2_000));
  t.same(new Set(await names('/hc/x', 10)), new Set(['hc1', 'hc2']), 'both back');
});

t.test('a reload replaces the checks, it does not add to them', async (t) => {
  // Reload three times (a route added each time): one timer per backend must remain.
  for (let i = 0; i < 3; i++) {
    await writeFile(
      join(gw.configDir, 'routes.yml'),
      routes(`  - prefix: /added${i}\n    target: ${a.origin}\n    secure: false\n`),
    );
    t.ok(
      await waitFor(async () => (await get(`/added${i}/x`).then((r) => r.status)) === 200, 15_000),
      `reload ${i} applied`,
    );
  }
  const start = hc1.checks;
  await new Promise((r) => setTimeout(r, 3_000));
  const rate = hc1.checks - start;
  // One edge, interval 200 ms: about 15 in 3 s; one leaked timer would make 30, three 60.
  t.ok(rate >= 8 && rate <= 24, `${rate} checks in 3 s`);
  t.same(new Set(await names('/hc/x', 4)), new Set(['hc1', 'hc2']));
});

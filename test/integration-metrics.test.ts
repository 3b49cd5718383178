import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/free-port.js';
import {
  freshGet,
  logged,
  loginWithId,
  revokeTokenId,
  startGateway,
  waitFor,
  writeConfig,
} from './helpers/gateway.js';
import { edgePids, hasExited } from './helpers/process-tree.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
t.teardown(() => upstream.close());
const routes = (extra = '') =>
  `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n${extra}`;
const SETTLE_MS = 30_000;

/** One scrape: every sample line as name{labels} -> value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The sum of the samples of `name` whose labels include every `labels` pair. */
function sum(samples: Map<string, number>, name: string, labels: Record<string, string> = {}) {
  let total = 0;
  for (const [key, value] of samples) {
    const brace = key.indexOf('{');
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

/** Every value a label takes among the samples of `name`. */
function labelValues(samples: Map<string, number>, name: string, label: string): Set<string> {
  const values = new Set<string>();
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const key of samples.keys()) {
    if (!key.startsWith(`${name}{`)) continue;
    const m = re.exec(key);
    if (m) values.add(m[1]!);
  }
  return values;
}

t.test('one scrape adds up both edges; labels stay bounded; health answers', async (t) => {
  const metricsPort = await freePort();
  const gw = await startGateway({
    routes: routes(),
    config: { metrics: { listen: `127.0.0.1:${metricsPort}` } },
  });
  t.teardown(() => gw.stop());
  t.equal(logged(gw.output(), { message: 'metrics listening' }).length, 1);
  const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
  t.equal(health.status, 200);
  const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { ready: true, generation: 1, edges: { wanted: 2, serving: 2 } });

  const { token, tokenId } = await loginWithId(gw.url);
  const bad = await fetch(`${gw.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'wrong' }),
  });
  await bad.arrayBuffer();
  t.equal(bad.status, 401);
  // Fresh connections, so the kernel spreads them over both edges; every path is distinct,
  // and none may become a label value.
  const N = 40;
  for (let i = 0; i < N; i++) t.equal(await freshGet(gw.port, `/api/item/${i}?q=${i}`, token), 200);
  for (let i = 0; i < 5; i++) t.equal(await freshGet(gw.port, `/nowhere/${i}`, token), 404);
  const odd = await fetch(`${gw.url}/api/x`, {
    method: 'PROPFIND',
    headers: { authorization: `Bearer ${token}` },
  });
  await odd.arrayBuffer();

  let samples = new Map<string, number>();
  const settled = await waitFor(
    async () => {
      samples = await scrape(metricsPort);
      return (
        sum(samples, 'proxyauth_requests_total', { route: '/api', method: 'GET' }) === N &&
        sum(samples, 'proxyauth_requests_total', { route: 'none' }) === 5 &&
        labelValues(samples, 'proxyauth_event_loop_lag_seconds', 'edge').size === 2
      );
    },
    SETTLE_MS,
    200,
  );
  t.ok(settled, 'the counts of both edges reached the scrape');
  t.equal(
    sum(samples, 'proxyauth_requests_total', { route: '/api', method: 'GET', status_class: '2xx' }),
    N,
  );
  t.equal(sum(samples, 'proxyauth_requests_total', { route: 'none', status_class: '4xx' }), 5);
  t.equal(sum(samples, 'proxyauth_requests_total', { method: 'other' }), 1, 'PROPFIND is other');
  t.equal(sum(samples, 'proxyauth_logins_total', { result: 'success' }), 1);
  t.equal(sum(samples, 'proxyauth_logins_total', { result: 'invalid_credentials' }), 1);
  t.equal(sum(samples, 'proxyauth_request_duration_seconds_count', { route: '/api' }), N + 1);
  t.equal(
    sum(samples, 'proxyauth_request_duration_seconds_bucket', { route: '/api', le: '+Inf' }),
    N + 1,
  );
  t.equal(sum(samples, 'proxyauth_upstream_duration_seconds_count', { route: '/api' }), N + 1);
  t.ok(sum(samples, 'proxyauth_upstream_duration_seconds_sum', { route: '/api' }) > 0);
  t.equal(
    sum(samples, 'proxyauth_token_cache_hits_total') +
      sum(samples, 'proxyauth_token_cache_misses_total'),
    N + 1,
    'one cache lookup per request that reached a route (a path no route takes never does)',
  );
  t.ok(sum(samples, 'proxyauth_token_cache_misses_total') <= 2, 'one miss per edge at most');
  t.equal(sum(samples, 'proxyauth_config_generation'), 1);
  t.equal(sum(samples, 'proxyauth_edges_serving'), 2);
  t.equal(sum(samples, 'proxyauth_edge_restarts_total'), 0);
  t.equal(sum(samples, 'proxyauth_reloads_total'), 0);
  t.notOk([...samples.keys()].some((k) => k.startsWith('proxyauth_redis_connected')));
  const routesSeen = [...labelValues(samples, 'proxyauth_requests_total', 'route')].sort();
  t.same(routesSeen, ['/api', '/auth', 'none'], 'route labels are prefixes, never paths');

  t.equal(await revokeTokenId(gw.url, tokenId), 200);
  await waitFor(
    async () => {
      samples = await scrape(metricsPort);
      return sum(samples, 'proxyauth_revocations_total', { op: 'revoke-token' }) === 1;
    },
    SETTLE_MS,
    100,
  );
  t.equal(sum(samples, 'proxyauth_revocations_total', { op: 'revoke-token' }), 1);

  // An edge down: not ready (503, with the reason) until its replacement serves.
  const [victim] = await edgePids(gw.proc.pid ?? -1);
  process.kill(victim!, 'SIGKILL');
  let notReady: { status: number; body: Record<string, unknown> } | undefined;
  await waitFor(
    async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status === 503) notReady = { status: res.status, body };
      return notReady !== undefined;
    },
    SETTLE_MS,
    5,
  );
  t.equal(notReady?.status, 503, 'not ready while an edge is down');
  t.match(notReady?.body, { ready: false, reason: /of 2 edges serve generation/ });
  t.ok(await waitFor(() => hasExited(victim!), SETTLE_MS));
  t.ok(
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200,
      SETTLE_MS,
      50,
    ),
    'ready again once the replacement serves',
  );
  samples = await scrape(metricsPort);
  t.equal(sum(samples, 'proxyauth_edge_restarts_total'), 1);

  // A reload that changes the routes (after the kill: a reload under way is "not ready" too):
  // applied, generation 2, ready again.
  await writeFile(
    join(gw.configDir, 'routes.yml'),
    routes(`  - prefix: /other\n    target: ${upstream.origin}\n`),
  );
  gw.proc.kill('SIGHUP');
  await waitFor(
    async () => {
      samples = await scrape(metricsPort);
      return sum(samples, 'proxyauth_reloads_total', { outcome: 'applied' }) >= 1;
    },
    SETTLE_MS,
    100,
  );
  t.ok(sum(samples, 'proxyauth_reloads_total', { outcome: 'applied' }) >= 1);
  t.ok(sum(samples, 'proxyauth_config_generation') >= 2);
  t.ok(
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200,
      SETTLE_MS,
    ),
  );

  // Removing `metrics` takes effect at restart only: a replacement edge started after that
  // reload still counts, since the supervisor still listens.
  await writeConfig(gw.configDir, 0, { routes: routes() });
  gw.proc.kill('SIGHUP');
  t.ok(
    await waitFor(
      () =>
        logged(gw.output(), {
          message: 'metrics is read at start: the change takes effect at restart',
        }).length > 0,
      SETTLE_MS,
    ),
    'the change is reported as taking effect at restart',
  );
  const killed = await edgePids(gw.proc.pid ?? -1);
  for (const pid of killed) process.kill(pid, 'SIGKILL');
  // Gone for real (and seen gone by the supervisor) before readiness means the replacements.
  for (const pid of killed) t.ok(await waitFor(() => hasExited(pid), SETTLE_MS, 5));
  t.ok(
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 503,
      SETTLE_MS,
      5,
    ),
  );
  t.ok(
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200,
      SETTLE_MS,
      50,
    ),
  );
  const before = sum(await scrape(metricsPort), 'proxyauth_requests_total', { route: '/api' });
  const { token: fresh } = await loginWithId(gw.url);
  for (let i = 0; i < 4; i++) t.equal(await freshGet(gw.port, '/api/again', fresh), 200);
  t.ok(
    await waitFor(
      async () =>
        sum(await scrape(metricsPort), 'proxyauth_requests_total', { route: '/api' }) ===
        before + 4,
      SETTLE_MS,
      100,
    ),
    'replacement edges count',
  );

  const other = await fetch(`http://127.0.0.1:${metricsPort}/metrics/x`);
  t.equal(other.status, 404);
  const post = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'POST' });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD');
});

t.test('the metrics listener is off by default, and nothing is counted', async (t) => {
  const gw = await startGateway({ routes: routes() });
  t.teardown(() => gw.stop());
  t.equal(logged(gw.output(), { message: 'metrics listening' }).length, 0);
  // The default address would be this one; nothing listens there.
  const refused = await fetch('http://127.0.0.1:9464/metrics').then(
    () => false,
    () => true,
  );
  t.ok(refused, 'nothing answers on the documented example address');
});

t.test('a metrics address that cannot be bound refuses the start', async (t) => {
  const upstreamPort = Number(new URL(upstream.origin).port);
  await t.rejects(
    startGateway({
      routes: routes(),
      config: { metrics: { listen: `127.0.0.1:${upstreamPort}` } },
    }),
    /METRICS_LISTEN_FAILED/,
  );
});

t.test('check-config refuses a non-loopback metrics address without allow_remote', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'proxyauth-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeConfig(dir, 0, {
    routes: routes(),
    config: { metrics: { listen: '0.0.0.0:9464' } },
  });
  const refused = await runCli(['check-config', '--config-dir', dir]);
  t.equal(refused.code, 1);
  t.match(
    refused.stderr,
    `${join(dir, 'config.json')}: metrics.listen: 0.0.0.0 is not a loopback address`,
  );
  await writeConfig(dir, 0, {
    routes: routes(),
    config: { metrics: { listen: '0.0.0.0:9464', allow_remote: true } },
  });
  const accepted = await runCli(['check-config', '--config-dir', dir]);
  t.equal(accepted.code, 0, accepted.stderr);
});

t.test('during the drain of a stop, /readyz answers 503 "stopping"', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const slow = await startUpstream((req, res) => {
    if (req.url !== '/slow') return false;
    void held.then(() => res.end('late'));
    return true;
  });
  t.teardown(() => slow.close());
  const metricsPort = await freePort();
  const gw = await startGateway({
    routes: `routes:\n  - prefix: /api\n    target: ${slow.origin}\n`,
    config: { metrics: { listen: `127.0.0.1:${metricsPort}` } },
  });
  t.teardown(() => gw.stop());
  const { token } = await loginWithId(gw.url);
  const inflight = fetch(`${gw.url}/api/slow`, { headers: { authorization: `Bearer ${token}` } });
  // The request is at the upstream before the stop begins.
  await new Promise((r) => setTimeout(r, 300));
  gw.proc.kill('SIGTERM');
  t.ok(
    await waitFor(
      () => logged(gw.output(), { message: 'stopping: draining edges' }).length > 0,
      SETTLE_MS,
    ),
  );
  const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
  t.equal(ready.status, 503, 'not ready while draining');
  t.match(await ready.json(), { ready: false, reason: 'stopping' });
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200, 'alive');
  release();
  const answer = await inflight;
  t.equal(answer.status, 200, 'the request in flight finished');
  t.equal(await answer.text(), 'late');
  t.ok(
    await waitFor(() => logged(gw.output(), { message: 'gateway stopped' }).length > 0, SETTLE_MS),
  );
  await t.rejects(fetch(`http://127.0.0.1:${metricsPort}/readyz`), 'closed once stopped');
});

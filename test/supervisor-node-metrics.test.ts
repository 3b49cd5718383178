import t from 'tap';
import { LATENCY_BUCKETS, type MetricsReport } from '../shared/metrics-report.js';
import { readiness } from '../supervisor/health.js';
import { LokiShipper } from '../supervisor/loki-shipper.js';
import { NodeMetrics } from '../supervisor/node-metrics.js';

function report(over: Partial<MetricsReport> = {}): MetricsReport {
  return {
    requests: [],
    requestSeconds: [],
    upstreamSeconds: [],
    upstreamErrors: [],
    logins: [],
    rateLimited: [],
    tokenCache: { hits: 0, misses: 0 },
    loopLagSeconds: 0,
    ...over,
  };
}

function buckets(at: Record<number, number>): number[] {
  const counts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  for (const [i, n] of Object.entries(at)) counts[Number(i)] = n;
  return counts;
}

function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

t.test('reports of two edges add up into one series per label set', async (t) => {
  const node = new NodeMetrics({ generation: () => 3, restarts: () => 2, serving: () => 2 });
  const get = { route: '/api', method: 'GET', status: '2xx' };
  node.add(0, report({ requests: [{ ...get, count: 5 }], tokenCache: { hits: 4, misses: 1 } }));
  node.add(1, report({ requests: [{ ...get, count: 7 }], tokenCache: { hits: 6, misses: 1 } }));
  node.add(1, report({ rateLimited: [{ route: '/api', count: 3 }] }));
  node.add(0, report({ upstreamErrors: [{ route: '/api', kind: 'upstream_timeout', count: 1 }] }));
  // The lag is a gauge: each edge's latest report sets it.
  node.add(1, report({ logins: [{ result: 'success', count: 2 }], loopLagSeconds: 0.25 }));
  node.add(0, report({ loopLagSeconds: 0.5 }));
  node.revocation('revoke-token');
  node.reload('applied');
  node.reload('invalid');
  const text = await node.text();
  t.same(lines(text, 'proxyauth_requests_total{'), [
    'proxyauth_requests_total{route="/api",method="GET",status_class="2xx"} 12',
  ]);
  t.same(lines(text, 'proxyauth_token_cache_hits_total '), ['proxyauth_token_cache_hits_total 10']);
  t.same(lines(text, 'proxyauth_token_cache_misses_total '), [
    'proxyauth_token_cache_misses_total 2',
  ]);
  t.same(lines(text, 'proxyauth_logins_total{'), ['proxyauth_logins_total{result="success"} 2']);
  t.same(lines(text, 'proxyauth_event_loop_lag_seconds{').sort(), [
    'proxyauth_event_loop_lag_seconds{edge="0"} 0.5',
    'proxyauth_event_loop_lag_seconds{edge="1"} 0.25',
  ]);
  t.same(lines(text, 'proxyauth_rate_limited_total{'), [
    'proxyauth_rate_limited_total{route="/api"} 3',
  ]);
  t.same(lines(text, 'proxyauth_upstream_errors_total{'), [
    'proxyauth_upstream_errors_total{route="/api",kind="upstream_timeout"} 1',
  ]);
  t.same(lines(text, 'proxyauth_revocations_total{'), [
    'proxyauth_revocations_total{op="revoke-token"} 1',
  ]);
  t.match(text, /proxyauth_reloads_total\{outcome="applied"\} 1\n/);
  t.match(text, /proxyauth_reloads_total\{outcome="invalid"\} 1\n/);
  t.match(text, /proxyauth_reloads_total\{outcome="failed"\} 0\n/, 'every outcome shows from 0');
  t.match(text, /\nproxyauth_config_generation 3\n/);
  t.match(text, /\nproxyauth_edge_restarts_total 2\n/);
  t.match(text, /\nproxyauth_edges_serving 2\n/);
  t.match(text, /# TYPE proxyauth_requests_total counter/);
  t.notMatch(text, /proxyauth_redis_connected/, 'no Redis gauge without redis');
});

t.test('latency histograms: cumulative buckets, sum and count over both edges', async (t) => {
  const node = new NodeMetrics({ generation: () => 1, restarts: () => 0, serving: () => 1 });
  node.add(
    0,
    report({ requestSeconds: [{ route: '/api', counts: buckets({ 0: 2, 3: 1 }), sum: 0.006 }] }),
  );
  node.add(
    1,
    report({ requestSeconds: [{ route: '/api', counts: buckets({ 3: 1, 14: 1 }), sum: 12.004 }] }),
  );
  const text = await node.text();
  t.match(text, /# TYPE proxyauth_request_duration_seconds histogram/);
  const series = lines(text, 'proxyauth_request_duration_seconds_');
  t.equal(series.length, LATENCY_BUCKETS.length + 1 + 2);
  t.equal(series[0], 'proxyauth_request_duration_seconds_bucket{le="0.0005",route="/api"} 2');
  t.equal(series[2], 'proxyauth_request_duration_seconds_bucket{le="0.0025",route="/api"} 2');
  t.equal(series[3], 'proxyauth_request_duration_seconds_bucket{le="0.005",route="/api"} 4');
  t.equal(series[13], 'proxyauth_request_duration_seconds_bucket{le="10",route="/api"} 4');
  t.equal(series[14], 'proxyauth_request_duration_seconds_bucket{le="+Inf",route="/api"} 5');
  t.equal(series[15], 'proxyauth_request_duration_seconds_sum{route="/api"} 12.01');
  t.equal(series[16], 'proxyauth_request_duration_seconds_count{route="/api"} 5');
  t.notMatch(text, /proxyauth_upstream_duration_seconds_bucket/, 'no series before any answer');
});

t.test('the Redis gauge follows the bus when redis is configured', async (t) => {
  let up = false;
  const node = new NodeMetrics({
    generation: () => 1,
    restarts: () => 0,
    serving: () => 1,
    redisConnected: () => up,
  });
  t.match(await node.text(), /\nproxyauth_redis_connected 0\n/);
  up = true;
  t.match(await node.text(), /\nproxyauth_redis_connected 1\n/);
});

t.test('readiness: every edge on the current generation, no reload, store open', async (t) => {
  const ok = {
    stopping: false,
    reloading: false,
    storeClosed: false,
    generation: 2,
    edges: { wanted: 2, current: 2 },
  };
  t.same(readiness(ok), { ready: true, generation: 2, edges: { wanted: 2, serving: 2 } });
  t.match(readiness({ ...ok, edges: { wanted: 2, current: 1 } }), {
    ready: false,
    reason: '1 of 2 edges serve generation 2',
  });
  t.match(readiness({ ...ok, reloading: true }), { ready: false, reason: 'reload in progress' });
  t.match(readiness({ ...ok, storeClosed: true }), { ready: false, reason: 'store closed' });
  t.match(readiness({ ...ok, stopping: true }), { ready: false, reason: 'stopping' });
  t.match(readiness({ ...ok, generation: undefined, edges: { wanted: 0, current: 0 } }), {
    ready: false,
    reason: 'starting',
    generation: null,
  });
});

t.test('Loki lines shipped and dropped: every reason from 0, a down Loki fills them', async (t) => {
  const none = new NodeMetrics({ generation: () => 1, restarts: () => 0, serving: () => 1 });
  t.notMatch(await none.text(), /proxyauth_log_lines/, 'absent when log.type is not loki');
  // Nothing listens on port 9: Loki down. The buffer holds 3 lines, the rest are dropped.
  const shipper = new LokiShipper({
    url: 'http://127.0.0.1:9',
    node: 'n',
    maxBuffered: 3,
    batchMs: 60_000,
  });
  t.teardown(() => shipper.close());
  const node = new NodeMetrics({
    generation: () => 1,
    restarts: () => 0,
    serving: () => 1,
    loki: () => shipper.counts(),
  });
  const before = await node.text();
  t.same(lines(before, 'proxyauth_log_lines'), [
    'proxyauth_log_lines_shipped_total{sink="loki"} 0',
    'proxyauth_log_lines_dropped_total{sink="loki",reason="buffer_full"} 0',
    'proxyauth_log_lines_dropped_total{sink="loki",reason="refused"} 0',
    'proxyauth_log_lines_dropped_total{sink="loki",reason="stopped"} 0',
  ]);
  t.match(before, /# TYPE proxyauth_log_lines_dropped_total counter/);
  for (let i = 0; i < 10; i++) shipper.push(`l${i}`, { level: 'info', kind: 'app' });
  t.match(
    await node.text(),
    /\nproxyauth_log_lines_dropped_total\{sink="loki",reason="buffer_full"\} 7\n/,
  );
});

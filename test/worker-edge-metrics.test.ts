import t from 'tap';
import { LATENCY_BUCKETS, type MetricsReport } from '../shared/metrics-report.js';
import { EdgeMetrics, type FinishedRequest } from '../worker/edge-metrics.js';

function request(
  route: string | undefined,
  method: string,
  status: number,
  extra: { code?: string; ms?: number; upstreamMs?: number; aborted?: boolean } = {},
): FinishedRequest {
  return {
    logRoute: route,
    code: extra.code,
    upstreamMs: extra.upstreamMs ?? -1,
    ex: { method, status, aborted: extra.aborted ?? false, startedAt: 1000 - (extra.ms ?? 1) },
  };
}

function collector() {
  const cache = { hits: 0, misses: 0 };
  const reports: MetricsReport[] = [];
  const metrics = new EdgeMetrics(
    (r) => reports.push(r),
    () => cache,
  );
  return { metrics, cache, reports };
}

t.test('requests by route, method (unknown: other) and status class', async (t) => {
  const { metrics } = collector();
  metrics.record(request('/api', 'GET', 200), 1000);
  metrics.record(request('/api', 'GET', 204), 1000);
  metrics.record(request('/api', 'PROPFIND', 200), 1000);
  metrics.record(request(undefined, 'GET', 404, { code: 'NO_ROUTE' }), 1000);
  metrics.record(request('/api', 'GET', 200, { aborted: true }), 1000);
  const report = metrics.take()!;
  t.same(
    report.requests.sort((a, b) =>
      (a.route + a.method + a.status).localeCompare(b.route + b.method + b.status),
    ),
    [
      { route: '/api', method: 'GET', status: '2xx', count: 2 },
      { route: '/api', method: 'GET', status: 'aborted', count: 1 },
      { route: '/api', method: 'other', status: '2xx', count: 1 },
      { route: 'none', method: 'GET', status: '4xx', count: 1 },
    ],
  );
  t.same(metrics.take()!.requests, [], 'a report is a delta: the next one starts from zero');
});

t.test('latency buckets and sums, upstream only when it answered', async (t) => {
  const { metrics } = collector();
  metrics.record(request('/api', 'GET', 200, { ms: 3, upstreamMs: 2 }), 1000);
  metrics.record(request('/api', 'GET', 200, { ms: 20_000 }), 1000);
  const report = metrics.take()!;
  const [latency] = report.requestSeconds;
  t.equal(latency!.counts.length, LATENCY_BUCKETS.length + 1);
  t.equal(latency!.counts[LATENCY_BUCKETS.indexOf(0.005)], 1, '3 ms falls in le=0.005');
  t.equal(latency!.counts[LATENCY_BUCKETS.length], 1, '20 s is above every bound');
  t.equal(Math.round(latency!.sum * 1000), 20_003);
  t.equal(report.upstreamSeconds.length, 1);
  t.equal(report.upstreamSeconds[0]!.counts[LATENCY_BUCKETS.indexOf(0.0025)], 1);
  t.equal(
    report.upstreamSeconds[0]!.counts.reduce((a, b) => a + b),
    1,
  );
});

t.test('logins, rate-limit refusals and upstream failures by code', async (t) => {
  const { metrics } = collector();
  metrics.record(request('/auth', 'POST', 200), 1000);
  metrics.record(request('/auth', 'POST', 401, { code: 'INVALID_CREDENTIALS' }), 1000);
  metrics.record(request('/auth', 'POST', 429, { code: 'RATE_LIMITED' }), 1000);
  metrics.record(request('/auth', 'GET', 405, { code: 'METHOD_NOT_ALLOWED' }), 1000);
  metrics.record(request('/api', 'GET', 429, { code: 'RATE_LIMITED' }), 1000);
  metrics.record(request('/api', 'GET', 502, { code: 'UPSTREAM_UNREACHABLE' }), 1000);
  metrics.record(request('/api', 'GET', 503, { code: 'NO_HEALTHY_UPSTREAM' }), 1000);
  metrics.record(request('/api', 'GET', 401, { code: 'INVALID_TOKEN' }), 1000);
  const report = metrics.take()!;
  t.same(
    report.logins.sort((a, b) => a.result.localeCompare(b.result)),
    [
      { result: 'invalid_credentials', count: 1 },
      { result: 'rate_limited', count: 1 },
      { result: 'success', count: 1 },
    ],
    'a GET on /auth is no login',
  );
  t.same(
    report.rateLimited.sort((a, b) => a.route.localeCompare(b.route)),
    [
      { route: '/api', count: 1 },
      { route: '/auth', count: 1 },
    ],
  );
  t.same(
    report.upstreamErrors.sort((a, b) => a.kind.localeCompare(b.kind)),
    [
      { route: '/api', kind: 'no_healthy_upstream', count: 1 },
      { route: '/api', kind: 'upstream_unreachable', count: 1 },
    ],
  );
});

t.test('token cache deltas, lag gauge, and flush sends a report', async (t) => {
  const { metrics, cache, reports } = collector();
  cache.hits = 10;
  cache.misses = 2;
  t.same(metrics.take()!.tokenCache, { hits: 10, misses: 2 });
  cache.hits = 15;
  metrics.flush();
  t.equal(reports.length, 1);
  t.same(reports[0]!.tokenCache, { hits: 5, misses: 0 });
  t.equal(reports[0]!.loopLagSeconds, 0, 'no sample before start');
  metrics.start();
  const until = Date.now() + 60;
  while (Date.now() < until) {
    // Block the loop so the delay histogram has something to show.
  }
  await new Promise((r) => setTimeout(r, 30));
  metrics.stop();
  t.equal(reports.length, 2, 'stop sends a last report');
  t.ok(reports[1]!.loopLagSeconds > 0.01, `lag seen: ${reports[1]!.loopLagSeconds} s`);
});

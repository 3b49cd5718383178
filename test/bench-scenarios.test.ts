import t from 'tap';
import { BENCH_USER } from '../bench/gateway.js';
import type { LoadResult } from '../bench/load-result.js';
import { renderNginxConf } from '../bench/nginx.js';
import {
  renderBaseline,
  renderEdges,
  renderFeatureCost,
  renderLogin,
  renderReport,
  renderTable,
  type ScenarioRecord,
  summarize,
} from '../bench/report.js';
import {
  BENCH_HIGH_LIMIT,
  benchPage,
  ECHO_PATH,
  EDGE_PAIRS,
  echoAnswer,
  FEATURE_PAIRS,
  FORWARD_AUTH_PATH,
  GATEWAY_PREFIX,
  LARGE_BODY_BYTES,
  LARGE_PATH,
  LOGIN_PATH,
  largeBody,
  PAGE_PATHS,
  REFERENCES,
  SCENARIOS,
  selectScenarios,
  UPSTREAM_BODY,
  UPSTREAM_PATH,
} from '../bench/scenarios.js';
import { targetFor } from '../bench/service.js';
import { checkAnswer, checkLoadResult } from '../bench/verify.js';
import { wrkArgs } from '../bench/wrk.js';
import { parseWrkOutput, parseWrkTime } from '../bench/wrk-output.js';

// Captured from wrk 4.1.0 against a server answering every third request with 401.
const WRK_MIXED = `Running 1s test @ http://127.0.0.1:42791/hello
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   716.77us    1.26ms  21.07ms   92.96%
    Req/Sec     8.66k     4.23k   20.96k    66.67%
  Latency Distribution
     50%  370.00us
     75%  562.00us
     90%    1.39ms
     99%    5.89ms
  18084 requests in 1.10s, 2.25MB read
  Non-2xx or 3xx responses: 6028
Requests/sec:  16454.97
Transfer/sec:      2.05MB
`;

// A slow run: latencies in ms and s, socket errors, no Non-2xx line.
const WRK_SLOW = `Running 10s test @ http://127.0.0.1:8080/api/hello
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    45.12ms   80.33ms    1.99s    95.10%
    Req/Sec   800.12    120.50     1.02k    70.00%
  Latency Distribution
     50%   12.50ms
     75%   30.00ms
     90%  100.25ms
     99%    1.50s
  16000 requests in 10.02s, 1.95MB read
  Socket errors: connect 0, read 3, write 0, timeout 7
Requests/sec:   1596.81
Transfer/sec:    199.60KB
`;

const WRK_NO_LATENCY = WRK_MIXED.replace(/ {2}Latency Distribution[\s\S]*?99%.*\n/, '');

t.test('scenario definitions are well formed', async (t) => {
  const names = SCENARIOS.map((s) => s.name);
  t.equal(new Set(names).size, names.length, 'names are unique');
  for (const name of ['upstream-direct', 'gateway-auth-proxy', 'nginx-proxy', 'gateway-no-token']) {
    t.ok(names.includes(name), `${name} is defined`);
  }
  for (const [family, byShape] of Object.entries(REFERENCES)) {
    for (const [shape, ref] of Object.entries(byShape)) {
      t.ok(names.includes(ref), `${family} reference ${ref} exists`);
      t.equal(SCENARIOS.find((s) => s.name === ref)?.shape ?? 'get', shape, `${ref} is ${shape}`);
    }
  }
  for (const s of SCENARIOS) {
    t.match(s.name, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, `${s.name}: kebab-case name`);
    t.ok(s.description.length > 0, `${s.name}: has a description`);
    t.ok(
      [
        'upstream',
        'gateway',
        'gateway-stats',
        'gateway-ratelimit',
        'gateway-refusing',
        'gateway-balanced',
        'gateway-filters',
        'gateway-filters-body',
        'gateway-cors',
        'gateway-csrf',
        'gateway-metrics',
        'gateway-login',
        'gateway-forward-auth',
        'gateway-features-on',
        'gateway-one-edge',
        'nginx',
        'haproxy-jwt',
        'fastify-jwt',
        'floor',
        'raw-argon2',
        'baseline',
      ].includes(s.service),
      `${s.name}: known service`,
    );
    t.ok(Number.isInteger(s.expect.status) && s.expect.status >= 100 && s.expect.status < 600);
    const isGateway = s.service.startsWith('gateway') || s.service === 'baseline';
    const isJwtPeer = s.service === 'haproxy-jwt' || s.service === 'fastify-jwt';
    // The floor gets the gateway's token too (same request bytes) and ignores it.
    const isFloor = s.service === 'floor';
    if (s.auth !== 'none') {
      t.ok(isGateway || isJwtPeer || isFloor, `${s.name}: only gateways take tokens`);
    }
    if (isJwtPeer) t.equal(s.auth, 'bearer', `${s.name}: a JWT peer always gets its token`);
    if (s.shape === 'login') {
      t.ok(s.service === 'raw-argon2' || (s.auth === 'login' && s.path === LOGIN_PATH), s.name);
      continue;
    }
    const prefix = isGateway ? GATEWAY_PREFIX : '';
    if (s.shape === 'large') {
      t.equal(s.path, `${prefix}${LARGE_PATH}`, `${s.name}: the large path`);
      t.equal(s.expect.body, largeBody(), `${s.name}: checks the whole body`);
      t.equal(Buffer.byteLength(largeBody()), LARGE_BODY_BYTES, '100 KiB exactly');
      continue;
    }
    if (s.shape === 'post') {
      t.equal(s.path, `${prefix}${ECHO_PATH}`, `${s.name}: the echo path`);
      t.equal(s.method, 'POST');
      t.equal(Buffer.byteLength(s.body ?? ''), 1024, `${s.name}: 1 KiB`);
      t.equal(s.expect.body, echoAnswer(1024), `${s.name}: the upstream got all of it`);
      continue;
    }
    if (s.auth === 'cookie-csrf') t.equal(s.service, 'gateway-csrf', `${s.name}: cookie mode`);
    if (s.path === FORWARD_AUTH_PATH) {
      // A decision, not a proxied request: about the request gateway-auth-proxy sends.
      t.equal(s.headers?.['x-original-uri'], `${GATEWAY_PREFIX}${UPSTREAM_PATH}`, s.name);
      t.equal(s.expect.headers?.['x-user'], BENCH_USER, `${s.name}: checks the identity`);
      t.equal(s.service, 'gateway-forward-auth', `${s.name}: a gateway trusting loopback`);
      continue;
    }
    const page = Object.values(PAGE_PATHS).find((p) => s.path === `${GATEWAY_PREFIX}${p}`);
    if (page !== undefined) {
      t.ok(s.expect.body !== undefined || s.expect.bodyPattern !== undefined, `${s.name}: body`);
      continue;
    }
    if (s.expect.status < 300) t.equal(s.expect.body, UPSTREAM_BODY, `${s.name}: checks the body`);
    const wantedPath = isGateway ? `${GATEWAY_PREFIX}${UPSTREAM_PATH}` : UPSTREAM_PATH;
    t.equal(s.path, wantedPath, `${s.name}: reaches the upstream's ${UPSTREAM_PATH}`);
  }
  const noToken = SCENARIOS.find((s) => s.name === 'gateway-no-token');
  t.equal(noToken?.auth, 'none');
  t.equal(noToken?.expect.status, 401);
  t.ok(Object.isFrozen(SCENARIOS), 'the list cannot be changed at run time');
});

t.test('the CSRF page scenarios: a 20 KiB page, one placeholder or none, checked', async (t) => {
  const withPlaceholder = benchPage(true);
  const plain = benchPage(false);
  t.ok(withPlaceholder.length > 19 * 1024 && withPlaceholder.length <= 20 * 1024, 'about 20 KiB');
  t.equal(plain.length, withPlaceholder.length, 'the same size');
  t.equal(withPlaceholder.split('{{ csrf_token }}').length, 2, 'exactly one placeholder');
  t.notOk(/\{\{ ?csrf_token ?\}\}/.test(plain), 'none in the plain page');
  const scenario = SCENARIOS.find((s) => s.name === 'gateway-csrf-page');
  if (!scenario) throw new Error('scenario list changed');
  const replaced = withPlaceholder.replace('{{ csrf_token }}', 'A'.repeat(44));
  t.equal(checkAnswer(scenario.expect, 200, replaced), undefined, 'any token in its place');
  t.match(checkAnswer(scenario.expect, 200, withPlaceholder), /expected a body matching/);
  t.match(checkAnswer(scenario.expect, 200, replaced.replace('Item 7<', 'Item 8<')), /matching/);
  const service = {
    name: 'gateway-csrf' as const,
    baseUrl: 'http://127.0.0.1:1',
    authHeaders: { authorization: 'Bearer b' },
    cookieHeaders: { cookie: 'session_token=c' },
  };
  t.same(targetFor(scenario, service).headers, { cookie: 'session_token=c' }, 'the cookie only');
  t.throws(() => targetFor(scenario, { ...service, cookieHeaders: undefined }), {
    code: 'BENCH_NO_AUTH',
  });
});

t.test('selectScenarios keeps run order and rejects unknown names', async (t) => {
  t.same(
    selectScenarios(['nginx-proxy', 'upstream-direct']).map((s) => s.name),
    ['upstream-direct', 'nginx-proxy'],
  );
  t.same(
    selectScenarios([]).map((s) => s.service),
    SCENARIOS.filter((s) => s.service !== 'baseline').map((s) => s.service),
    'baseline scenarios only with --baseline',
  );
  t.equal(selectScenarios([], SCENARIOS, true).length, SCENARIOS.length);
  for (const base of SCENARIOS.filter((s) => s.service === 'baseline')) {
    const twin = SCENARIOS.find((s) => s.name === base.name.replace(/^baseline-/, 'gateway-'));
    t.same(
      { path: twin?.path, auth: twin?.auth, expect: twin?.expect },
      { path: base.path, auth: base.auth, expect: base.expect },
      `${base.name} mirrors its gateway twin`,
    );
  }
  t.throws(() => selectScenarios(['upstream-direct', 'nope']), { code: 'BENCH_UNKNOWN_SCENARIO' });
});

t.test('parseWrkTime converts every wrk unit to milliseconds', async (t) => {
  t.equal(parseWrkTime('612.00us'), 0.612);
  t.equal(parseWrkTime('1.45ms'), 1.45);
  t.equal(parseWrkTime('2.01s'), 2010);
  t.equal(parseWrkTime('1.50m'), 90_000);
  t.throws(() => parseWrkTime('12.00xs'), { code: 'BENCH_WRK_OUTPUT' });
  t.throws(() => parseWrkTime(''), { code: 'BENCH_WRK_OUTPUT' });
});

t.test('parseWrkOutput reads throughput, percentiles and the Non-2xx line', async (t) => {
  const r = parseWrkOutput(WRK_MIXED);
  t.equal(r.requests, 18084);
  t.equal(r.durationSec, 1.1);
  t.equal(r.requestsPerSec, 16454.97);
  t.equal(r.latencyP50Ms, 0.37, 'us converted');
  t.equal(r.latencyP99Ms, 5.89, 'ms kept');
  t.equal(r.latencyMaxMs, 21.07);
  t.equal(r.errorResponses, 6028);
  t.same(r.socketErrors, { connect: 0, read: 0, write: 0, timeout: 0 });
});

t.test('parseWrkOutput handles seconds, socket errors and a missing Non-2xx line', async (t) => {
  const r = parseWrkOutput(WRK_SLOW);
  t.equal(r.latencyP50Ms, 12.5);
  t.equal(r.latencyP99Ms, 1500, 's converted');
  t.equal(r.latencyMaxMs, 1990);
  t.equal(r.durationSec, 10.02);
  t.equal(r.errorResponses, 0);
  t.same(r.socketErrors, { connect: 0, read: 3, write: 0, timeout: 7 });
});

t.test('parseWrkOutput refuses output it cannot trust', async (t) => {
  t.throws(() => parseWrkOutput(WRK_NO_LATENCY), { code: 'BENCH_WRK_OUTPUT' }, 'no --latency');
  t.throws(() => parseWrkOutput(WRK_MIXED.replace(/Requests\/sec.*\n/, '')), {
    code: 'BENCH_WRK_OUTPUT',
  });
  t.throws(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused\n'), {
    code: 'BENCH_WRK_OUTPUT',
  });
});

t.test('checkLoadResult rejects error statuses in 200 scenarios and accepts all-401', async (t) => {
  const direct = SCENARIOS.find((s) => s.name === 'upstream-direct');
  const noToken = SCENARIOS.find((s) => s.name === 'gateway-no-token');
  if (!direct || !noToken) throw new Error('scenario list changed');
  const mixed = parseWrkOutput(WRK_MIXED);
  t.match(checkLoadResult(direct, mixed), /6028 of 18084/);
  t.equal(checkLoadResult(direct, parseWrkOutput(WRK_SLOW)), undefined);
  t.ok(checkLoadResult(noToken, mixed), 'some 200s in a 401 scenario is wrong');
  t.equal(checkLoadResult(noToken, { ...mixed, errorResponses: mixed.requests }), undefined);
  t.equal(
    checkLoadResult(direct, { ...mixed, requests: 0, errorResponses: 0 }),
    'no request completed',
  );
});

t.test('checkAnswer compares status and body', async (t) => {
  t.equal(checkAnswer({ status: 200, body: 'hello' }, 200, 'hello'), undefined);
  t.match(checkAnswer({ status: 200, body: 'hello' }, 200, 'hell'), /expected body/);
  t.match(
    checkAnswer({ status: 200, body: 'hello' }, 404, 'hello'),
    /expected status 200, got 404/,
  );
  t.equal(checkAnswer({ status: 401 }, 401, '{"error":"x"}'), undefined);
  const cors = { status: 200, headers: { 'access-control-allow-origin': 'https://a.test' } };
  const got = new Headers({ 'access-control-allow-origin': 'https://a.test' });
  t.equal(checkAnswer(cors, 200, '', got), undefined, 'headers compared when expected');
  t.match(checkAnswer(cors, 200, '', new Headers()), /expected access-control-allow-origin/);
  t.match(checkAnswer(cors, 200, ''), /got null/);
});

t.test('wrkArgs asks for percentiles and sends the bearer header', async (t) => {
  const args = wrkArgs({
    url: 'http://127.0.0.1:1/api/hello',
    headers: { authorization: 'Bearer abc' },
    connections: 64,
    threads: 2,
    durationSec: 10,
  });
  t.same(args, [
    '-t',
    '2',
    '-c',
    '64',
    '-d',
    '10s',
    '--latency',
    '-H',
    'authorization: Bearer abc',
    'http://127.0.0.1:1/api/hello',
  ]);
});

t.test(
  'renderNginxConf keeps every path in its directory and pools upstream connections',
  async (t) => {
    const conf = renderNginxConf({
      dir: '/tmp/b',
      port: 1234,
      upstreamPort: 5678,
      workerProcesses: 2,
      tempModules: ['proxy'],
    });
    t.match(conf, /^worker_processes 2;$/m);
    t.match(conf, /keepalive 64;/);
    t.match(conf, /proxy_http_version 1\.1;/);
    t.match(conf, /proxy_set_header Connection "";/);
    t.match(conf, /access_log off;/);
    t.match(conf, /listen 127\.0\.0\.1:1234;/);
    t.match(conf, /server 127\.0\.0\.1:5678;/);
    t.notMatch(conf, /fastcgi_temp_path/, 'no directive for a module the build lacks');
    const paths = [...conf.matchAll(/^\s*(?:pid|error_log|\w+_temp_path) (\S+?);?(?: \w+;)?$/gm)];
    t.ok(paths.length >= 4);
    for (const [, path] of paths) t.match(path, /^\/tmp\/b\//, `${path} is inside the temp dir`);
  },
);

t.test('summarize takes medians and ratios against the references', async (t) => {
  const run = (
    round: number,
    rps: number,
    p50: number,
  ): { round: number; result: LoadResult; cpuUsPerRequest: number; sysUsPerRequest: number } => ({
    round,
    cpuUsPerRequest: p50 * 10,
    sysUsPerRequest: p50 * 4,
    result: {
      requests: rps,
      durationSec: 1,
      requestsPerSec: rps,
      latencyP50Ms: p50,
      latencyP99Ms: p50 * 2,
      latencyMaxMs: p50 * 3,
      errorResponses: 0,
      socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
    },
  });
  const records: ScenarioRecord[] = [
    {
      name: 'upstream-direct',
      description: '',
      status: 'ok',
      runs: [run(1, 300, 1), run(2, 100, 3), run(3, 200, 2)],
    },
    { name: 'nginx-proxy', description: '', status: 'ok', runs: [run(1, 100, 4), run(2, 100, 4)] },
    { name: 'gateway-auth-proxy', description: '', status: 'failed', runs: [run(1, 1, 1)] },
  ];
  const [direct, nginx, ...rest] = summarize(records);
  t.equal(rest.length, 0, 'failed scenarios are left out');
  t.match(direct, {
    medianRps: 200,
    minRps: 100,
    maxRps: 300,
    medianP50Ms: 2,
    medianP99Ms: 4,
    medianCpuUs: 20,
    medianSysUs: 8,
  });
  // Paired by round: round 1 300/100, round 2 100/100; round 3 has no nginx run.
  t.same(direct?.ratios, {
    nginx: { reference: 'nginx-proxy', median: 2, min: 1, max: 3, rounds: 2 },
    upstream: { reference: 'upstream-direct', median: 1, min: 1, max: 1, rounds: 3 },
  });
  t.equal(nginx?.ratios.upstream?.median, (100 / 300 + 1) / 2);
  t.match(
    renderTable(summarize(records)),
    /\| upstream-direct \| 200 \| 100–300 \| 2\.00 \| 4\.00 \| 20 \| 8 \| 2\.00× \[1\.00×–3\.00×\] \| n\/a \| 1\.00× \[1\.00×–1\.00×\] \| 3 \|/,
  );
});

t.test('ratios pair each scenario with the nginx and HAProxy scenarios of its shape', async (t) => {
  const record = (name: string, rps: number[]): ScenarioRecord => ({
    name,
    description: '',
    status: 'ok',
    runs: rps.map((r, i) => ({
      round: i + 1,
      result: {
        requests: r,
        durationSec: 1,
        requestsPerSec: r,
        latencyP50Ms: 1,
        latencyP99Ms: 2,
        latencyMaxMs: 3,
        errorResponses: 0,
        socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
      },
    })),
  });
  const summaries = summarize([
    record('nginx-proxy', [1000, 1000]),
    record('nginx-large', [400, 200]),
    record('haproxy-jwt-auth-proxy', [800, 800]),
    record('haproxy-jwt-large', [100, 100]),
    record('gateway-auth-proxy', [400, 600]),
    record('gateway-large', [200, 100]),
    record('gateway-login', [10, 10]),
    record('raw-argon2', [20, 20]),
    record('a-scenario-nobody-knows', [5, 5]),
  ]);
  const by = (name: string) => summaries.find((s) => s.name === name);
  t.match(by('gateway-auth-proxy')?.ratios, {
    nginx: { reference: 'nginx-proxy', median: 0.5, min: 0.4, max: 0.6 },
    haproxy: { reference: 'haproxy-jwt-auth-proxy', median: 0.625, min: 0.5, max: 0.75 },
  });
  t.match(by('gateway-large')?.ratios, {
    nginx: { reference: 'nginx-large', median: 0.5, min: 0.5, max: 0.5 },
    haproxy: { reference: 'haproxy-jwt-large', median: 1.5, min: 1, max: 2 },
  });
  t.same(by('gateway-login')?.ratios, {}, 'a login has no proxy to compare with');
  t.same(by('a-scenario-nobody-knows')?.ratios, {}, 'unknown shape: no ratio');
  t.notOk(by('gateway-large')?.ratios.upstream, 'no upstream-large ran: no ratio');
  const login = renderLogin([record('gateway-login', [10, 12]), record('raw-argon2', [20, 20])]);
  t.match(login.join('\n'), /\| gateway-login vs raw-argon2 \| 0\.55× \[0\.50×–0\.60×\] \|/);
});

t.test(
  'renderBaseline pairs each gateway scenario with its --baseline twin by round',
  async (t) => {
    const record = (name: string, cpu: (number | undefined)[], rps: number[]): ScenarioRecord => ({
      name,
      description: '',
      status: 'ok',
      runs: rps.map((r, i) => ({
        round: i + 1,
        cpuUsPerRequest: cpu[i],
        result: {
          requests: r,
          durationSec: 1,
          requestsPerSec: r,
          latencyP50Ms: 1,
          latencyP99Ms: 2,
          latencyMaxMs: 3,
          errorResponses: 0,
          socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
        },
      })),
    });
    const lines = renderBaseline([
      record('gateway-auth-proxy', [110, 200, 90], [900, 500, 1000]),
      record('gateway-no-token', [undefined, undefined, undefined], [3000, 3000, 3000]),
      record('baseline-auth-proxy', [100, 180, 100], [1000, 500, 1000]),
      record('baseline-no-token', [30, 30, 30], [3000, 1500, 3000]),
    ]).join('\n');
    // Paired CPU ratios 1.10, 1.11, 0.90: median 1.10; medians of CPU 110 vs 100.
    t.match(
      lines,
      /\| gateway-auth-proxy vs baseline-auth-proxy \| 1\.00× \[0\.90×–1\.00×\] \| 1\.10× \[0\.90×–1\.11×\] \| 110\.0 vs 100\.0 \|/,
    );
    t.match(
      lines,
      /\| gateway-no-token vs baseline-no-token \| 1\.00× \[1\.00×–2\.00×\] \| n\/a \| n\/a \|/,
    );
    t.same(
      renderBaseline([record('gateway-auth-proxy', [1], [1])]),
      [],
      'nothing without a baseline',
    );
    const cost = renderFeatureCost([
      record('gateway-auth-proxy', [100, 100], [1000, 1000]),
      record('gateway-stats-revocations', [103, 105], [990, 970]),
    ]).join('\n');
    t.match(
      cost,
      /\| gateway-stats-revocations vs gateway-auth-proxy \| 0\.98× \[0\.97×–0\.99×\] \| 1\.04× \[1\.03×–1\.05×\] \| 104\.0 vs 100\.0 \|/,
    );
    t.same(renderFeatureCost([record('gateway-auth-proxy', [1], [1])]), [], 'nothing without both');
    // Issue 13's target: rate limiting, stats and metrics all on, against the plain scenario.
    const allOn = renderFeatureCost([
      record('gateway-auth-proxy', [100, 80], [1000, 1200]),
      record('gateway-features-on', [108, 90], [950, 1080]),
    ]).join('\n');
    t.match(
      allOn,
      /\| gateway-features-on vs gateway-auth-proxy \| 0\.93× \[0\.90×–0\.95×\] \| 1\.10× \[1\.08×–1\.13×\] \| 99\.0 vs 90\.0 \|/,
    );
  },
);

t.test('the edges table pairs one edge with two by round: req/s and CPU per request', async (t) => {
  const record = (name: string, cpu: (number | undefined)[], rps: number[]): ScenarioRecord => ({
    name,
    description: '',
    status: 'ok',
    runs: rps.map((r, i) => ({
      round: i + 1,
      cpuUsPerRequest: cpu[i],
      result: {
        requests: r,
        durationSec: 1,
        requestsPerSec: r,
        latencyP50Ms: 1,
        latencyP99Ms: 2,
        latencyMaxMs: 3,
        errorResponses: 0,
        socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 },
      },
    })),
  });
  t.same(EDGE_PAIRS, [['gateway-one-edge', 'gateway-auth-proxy']]);
  const two = record('gateway-auth-proxy', [80, 100, 90], [10_000, 8_000, 12_000]);
  // Round 2 of the one-edge run is missing: its round-3 run pairs with round 3 only.
  const one = record('gateway-one-edge', [72, 81], [6_000, 6_600]);
  one.runs[1] = { ...(one.runs[1] as (typeof one.runs)[number]), round: 3 };
  const lines = renderEdges([two, one]);
  const text = lines.join('\n');
  t.match(text, /^edges: 1 edge vs 2 \(same run/m);
  // Paired req/s: 6000/10000 = 0.60, 6600/12000 = 0.55; CPU 72/80 = 0.90, 81/90 = 0.90.
  t.match(
    text,
    /\| gateway-one-edge vs gateway-auth-proxy \| 6,300 vs 10,000 \| 0\.57× \[0\.55×–0\.60×\] \| 76\.5 vs 90\.0 \| 0\.90× \[0\.90×–0\.90×\] \|/,
  );
  t.same(renderEdges([two]), [], 'nothing without the one-edge run');
  t.same(renderEdges([two, { ...one, status: 'failed' }]), [], 'nor with a failed one');
  const noCpu = renderEdges([two, record('gateway-one-edge', [undefined], [5_000])]).join('\n');
  t.match(noCpu, /\| 5,000 vs 10,000 \| 0\.50× \[0\.50×–0\.50×\] \| n\/a \| n\/a \|/);
  const report = renderReport({
    startedAt: 'now',
    finishedAt: 'later',
    machine: {
      cpus: 2,
      cpuModel: 'cpu',
      memoryGiB: 1,
      os: 'linux',
      node: 'v20',
      loadavg: [0, 0, 0],
    },
    tools: { load: 'wrk 4' },
    parameters: {
      runs: 3,
      durationSec: 1,
      warmupSec: 0,
      connections: 8,
      threads: 2,
      proxyProcesses: 2,
    },
    scenarios: [two, one],
    summary: summarize([two, one]),
  });
  t.ok(report.includes(text), 'the full report carries the edges table');
});

t.test('gateway-features-on and gateway-one-edge: their services and pairs', async (t) => {
  const { FEATURED_GATEWAYS } = await import('../bench/gateway-services.js');
  const { gatewayConfigParams, renderGatewayConfig } = await import('../bench/gateway.js');
  const { parseConfig } = await import('../conf/parse.js');
  const parsed = (service: string) => {
    const entry = FEATURED_GATEWAYS.find((g) => g.service === service);
    if (entry === undefined) throw new Error(`${service} is not in FEATURED_GATEWAYS`);
    const params = gatewayConfigParams(entry.features, {
      port: 8080,
      passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA',
      instances: entry.instances ?? 2,
      secret: 'x'.repeat(96),
      metricsPort: entry.features.metrics ? 9100 : undefined,
    });
    return parseConfig(
      JSON.parse(renderGatewayConfig(params)),
      { routes: [] },
      {
        config: 'config.json',
        routes: 'routes.yml',
      },
    ).config;
  };
  const plain = parsed('gateway-one-edge');
  t.equal(plain.num_instances, 1, 'one edge');
  t.equal(plain.stats, false, 'and nothing else on');
  t.equal(plain.metrics, undefined);
  const on = parsed('gateway-features-on');
  t.equal(on.num_instances, 2, 'two edges, as gateway-auth-proxy');
  t.equal(on.stats, true, 'stats on');
  t.match(on.ratelimit_proxy, BENCH_HIGH_LIMIT, 'rate limited as gateway-ratelimit-high');
  t.match(on.metrics, { host: '127.0.0.1', port: 9100 }, 'the metrics listener on');
  for (const g of FEATURED_GATEWAYS) {
    t.doesNotThrow(() => parsed(g.service), `${g.service}: its config.json is valid`);
    t.ok(
      SCENARIOS.some((s) => s.service === g.service),
      `${g.service}: some scenario loads it`,
    );
  }
  const pairOf = (name: string) => FEATURE_PAIRS.find(([a]) => a === name)?.[1];
  t.equal(pairOf('gateway-features-on'), 'gateway-auth-proxy', 'paired with the plain scenario');
  const byName = (name: string) => SCENARIOS.find((s) => s.name === name);
  for (const name of ['gateway-features-on', 'gateway-one-edge']) {
    const s = byName(name);
    t.equal(s?.path, byName('gateway-auth-proxy')?.path, `${name}: the plain scenario's request`);
    t.equal(s?.auth, 'bearer');
    t.same(s?.expect, byName('gateway-auth-proxy')?.expect);
  }
});

// The grandchild burns a fixed amount of CPU time, measured by itself, then says so and waits.
// CPU time does not depend on how busy the machine is (a loaded machine only takes longer to
// spend it), so nothing here is a wall-clock race.
const BURN_MS = 600;
const GRANDCHILD = `
  const start = process.cpuUsage();
  const spent = () => { const u = process.cpuUsage(start); return (u.user + u.system) / 1000; };
  while (spent() < ${BURN_MS});
  process.stdout.write('burned ' + spent().toFixed(0) + '\\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
`;
// The parent idles: only a sum over the tree sees the grandchild's time.
const PARENT = `
  const child = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(GRANDCHILD)}], { stdio: 'inherit' });
  child.on('exit', () => process.exit(0));
`;

t.test('treeCpuSeconds counts a process and its children', async (t) => {
  const { spawn } = await import('node:child_process');
  const { treeCpuSeconds } = await import('../bench/process-cpu.js');
  const parent = spawn(process.execPath, ['-e', PARENT], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => parent.kill());
  const pid = parent.pid!;
  const burned = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /burned (\d+)/.exec(out);
      if (m) resolve(Number(m[1]) / 1000);
    });
    parent.once('exit', () => reject(new Error(`exited before burning: ${out}`)));
  });
  const own = await ownCpuSeconds(pid);
  const seconds = treeCpuSeconds(pid);
  // /proc counts in 10 ms ticks, truncated per process and per user/system field.
  t.ok(
    seconds !== undefined && seconds >= own + burned - 0.05,
    `tree CPU ${seconds} s = the parent's own ${own} s + the grandchild's ${burned} s and more`,
  );
  t.equal(treeCpuSeconds(2 ** 22 + 12345), undefined, 'an unknown pid gives undefined');
  const exited = new Promise((r) => parent.once('exit', r));
  parent.stdin.end();
  await exited;
});

t.test(
  "treeCpuTimes tells the kernel's part: syscalls count there, a busy loop does not",
  async (t) => {
    const { spawn } = await import('node:child_process');
    const { treeCpuTimes } = await import('../bench/process-cpu.js');
    // Each child does its work, then waits to be read.
    const burn = async (code: string) => {
      const child = spawn(
        process.execPath,
        ['-e', `${code}; console.log('done'); setInterval(() => {}, 1000);`],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      t.teardown(() => child.kill());
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('done') && resolve());
        child.once('exit', () => reject(new Error('exited early')));
      });
      return treeCpuTimes(child.pid!)!;
    };
    // A fixed amount of work, not a fixed time: a loaded machine gives a child less CPU a second.
    const syscalls = await burn(
      "const fs = require('node:fs'); const fd = fs.openSync('/dev/null', 'w'); const b = Buffer.alloc(1); for (let i = 0; i < 400000; i++) fs.writeSync(fd, b)",
    );
    const loop = await burn(
      'let x = 0; for (let i = 0; i < 3e8; i++) x += i % 7; if (x < 0) throw 0',
    );
    t.ok(syscalls.sys <= syscalls.total && loop.sys <= loop.total, 'a part of the total');
    t.ok(
      syscalls.sys > loop.sys + 0.1,
      `writes to /dev/null: ${syscalls.sys} s of ${syscalls.total} s in the kernel; a busy loop ${loop.sys} s of ${loop.total} s`,
    );
    t.ok(loop.sys < loop.total / 2, 'a busy loop is mostly user time');
    t.equal(treeCpuTimes(2 ** 22 + 12345), undefined, 'an unknown pid gives undefined');
  },
);

/** CPU seconds of one process alone (utime + stime, fields 14 and 15 of proc(5)). */
async function ownCpuSeconds(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

t.test("the balanced scenario's routes.yml is a valid config with both backends", async (t) => {
  const { renderRoutesYml } = await import('../bench/gateway.js');
  const { parseConfig } = await import('../conf/parse.js');
  const yaml = (await import('js-yaml')).default;
  const text = renderRoutesYml(8000, [
    { port: 8000, weight: 3 },
    { port: 8001, weight: 1 },
  ]);
  const users = [
    {
      username: 'bench',
      password: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA',
    },
  ];
  const parsed = parseConfig({ secret: 'x'.repeat(64), users }, yaml.load(text), {
    config: 'config.json',
    routes: 'routes.yml',
  });
  t.same(parsed.warnings, []);
  t.same(parsed.routes[0]?.backends, [
    { url: 'http://127.0.0.1:8000', weight: 3 },
    { url: 'http://127.0.0.1:8001', weight: 1 },
  ]);
  t.notMatch(renderRoutesYml(8000), /backends/, 'the plain route has none');
});

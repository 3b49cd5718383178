// The bench report's additions: the SVG ratio chart, --soak (options, memory sampling, growth)
// and the raw Argon2 measurement. No timed load: the Argon2 run lasts 0.2 s on one thread.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseBenchOptions } from '../bench/options.js';
import { packageRoot } from '../bench/paths.js';
import { machineTicks } from '../bench/process-cpu.js';
import { childPids, parseVmRss, rssKiB } from '../bench/process-memory.js';
import { chartMax, escapeXml, renderRatioChart } from '../bench/ratio-chart.js';
import { measureArgon2, percentile } from '../bench/raw-argon2.js';
import type { PairedRatio, ScenarioSummary } from '../bench/report.js';
import { SCENARIOS } from '../bench/scenarios.js';
import { targetFor } from '../bench/service.js';
import { costLine, runCost } from '../bench/soak.js';
import { renderSoak } from '../bench/soak-render.js';
import {
  growthPercent,
  type SoakSample,
  summarizeSoak,
  totalRssKiB,
} from '../bench/soak-report.js';
import { hashPassword } from '../crypto-pool/password.js';

function ratio(reference: string, median: number, min = median, max = median): PairedRatio {
  return { reference, median, min, max, rounds: 2 };
}

function summary(name: string, ratios: ScenarioSummary['ratios']): ScenarioSummary {
  return {
    name,
    runs: 2,
    medianRps: 1,
    minRps: 1,
    maxRps: 1,
    medianP50Ms: 1,
    medianP99Ms: 1,
    medianCpuUs: undefined,
    ratios,
  };
}

/**
 * A minimal XML well-formedness check: every tag closes in order, attributes are quoted, and
 * no bare `&` or `<` is left in text.
 */
function wellFormed(xml: string): string | undefined {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    if (/&(?!(?:amp|lt|gt|quot|apos);)/.test(text)) return `bare & in ${JSON.stringify(text)}`;
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) return `bad tag at ${lt}: ${xml.slice(lt, lt + 60)}`;
    const [, close, name, attrs, selfClose] = m;
    if (/&(?!(?:amp|lt|gt|quot|apos);)/.test(attrs ?? '')) return `bare & in attributes of ${name}`;
    if (close) {
      if (stack.pop() !== name) return `</${name}> closes nothing open`;
    } else if (!selfClose) stack.push(name as string);
    i = tag.lastIndex;
  }
  return stack.length === 0 ? undefined : `unclosed ${stack.join(', ')}`;
}

function bars(svg: string): { scenario: string; family: string; width: number }[] {
  return [
    ...svg.matchAll(
      /<rect class="bar" data-scenario="([^"]*)" data-family="(\w+)" x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g,
    ),
  ].map(([, scenario, family, width]) => ({
    scenario: scenario as string,
    family: family as string,
    width: Number(width),
  }));
}

t.test('the ratio chart: well-formed SVG, bars proportional, names escaped', async (t) => {
  const summaries = [
    summary('nginx-proxy', {
      nginx: ratio('nginx-proxy', 1),
      haproxy: ratio('haproxy-jwt-auth-proxy', 1.2),
    }),
    summary('gateway-auth-proxy', {
      nginx: ratio('nginx-proxy', 0.5, 0.4, 0.6),
      haproxy: ratio('haproxy-jwt-auth-proxy', 0.25),
    }),
    summary('a<b>&"c\'', { nginx: ratio('nginx-proxy', 2, 1.5, 2.2) }),
    summary('upstream-direct', { upstream: ratio('upstream-direct', 1) }),
  ];
  const svg = renderRatioChart(summaries, 'title & <more>');
  if (svg === undefined) throw new Error('no chart');
  t.equal(wellFormed(svg), undefined, 'well-formed XML');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /);
  t.match(svg, /title &amp; &lt;more&gt;/);
  t.match(svg, /a&lt;b&gt;&amp;&quot;c&apos;/, 'a scenario name is escaped');
  t.notMatch(svg, /a<b>/);
  const drawn = bars(svg);
  t.same(
    drawn.map((b) => `${b.scenario}/${b.family}`),
    [
      'nginx-proxy/haproxy',
      'gateway-auth-proxy/nginx',
      'gateway-auth-proxy/haproxy',
      'a&lt;b&gt;&amp;&quot;c&apos;/nginx',
    ],
    'no bar of a reference against itself, none for a scenario without a peer ratio',
  );
  const width = (s: string, f: string) =>
    drawn.find((b) => b.scenario === s && b.family === f)?.width ?? NaN;
  t.equal(chartMax(summaries), 2.5, 'the scale ends at the largest max rounded up to a half');
  t.ok(
    Math.abs(width('gateway-auth-proxy', 'nginx') / width('gateway-auth-proxy', 'haproxy') - 2) <
      0.01,
    '0.5 is twice 0.25',
  );
  t.ok(Math.abs(width('gateway-auth-proxy', 'nginx') / 480 - 0.5 / 2.5) < 0.01, 'to the scale');
  const parity = /<line class="parity" x1="([\d.]+)"/.exec(svg);
  t.equal(Number(parity?.[1]), 280 + 480 / 2.5, 'the 1.0 line is at 1.0 on the scale');
  t.equal(renderRatioChart([summary('x', {})], 't'), undefined, 'nothing to draw: no chart');
  t.equal(escapeXml(`<&>"'`), '&lt;&amp;&gt;&quot;&apos;');
});

t.test('--soak and --soak-interval parse and are validated', async (t) => {
  const plain = parseBenchOptions([]);
  t.equal(plain.soakMinutes, undefined, 'off by default');
  t.equal(plain.soakIntervalSec, 30);
  const soak = parseBenchOptions(['--soak', '2', '--soak-interval', '20']);
  t.equal(soak.soakMinutes, 2);
  t.equal(soak.soakIntervalSec, 20);
  for (const argv of [
    ['--soak', '0'],
    ['--soak', '1.5'],
    ['--soak', 'x'],
    ['--soak', '1', '--soak-interval', '0'],
    ['--soak', '1', '--soak-interval', '61'],
    ['--soak', '1', '--scenarios', 'nginx-proxy'],
    ['--soak', '1', '--baseline', '/tmp'],
  ]) {
    t.throws(() => parseBenchOptions(argv), { code: 'BENCH_BAD_OPTION' }, argv.join(' '));
  }
});

t.test('soak growth: first interval against the last, summed over the edges', async (t) => {
  // Each edge's heap: used a quarter of its RSS, total half of it, 1 MiB external.
  const heapOf = (kib: number) => ({
    usedBytes: kib * 256,
    totalBytes: kib * 512,
    externalBytes: 1 << 20,
  });
  const sample = (
    elapsedSec: number,
    rss: Record<string, number>,
    p99: number,
    cpu?: number,
  ): SoakSample => ({
    elapsedSec,
    durationSec: 30,
    startedAt: new Date(Date.UTC(2026, 11, 1, 19, 0, elapsedSec - 30)).toISOString(),
    endedAt: new Date(Date.UTC(2026, 11, 1, 19, 0, elapsedSec)).toISOString(),
    edgesRssKiB: rss,
    edgesHeap: Object.fromEntries(Object.entries(rss).map(([pid, kib]) => [pid, heapOf(kib)])),
    requestsPerSec: 1000,
    latencyP99Ms: p99,
    ...(cpu === undefined
      ? {}
      : { cpuUsPerRequest: cpu, upstreamCpuUsPerRequest: cpu / 2, machineIdlePercent: 3.25 }),
  });
  const samples = [
    sample(30, { '10': 50_000, '11': 50_000 }, 4, 60),
    sample(60, { '10': 60_000, '11': 52_000 }, 9),
    sample(90, { '10': 55_000, '11': 55_000 }, 5, 62),
  ];
  t.equal(totalRssKiB(samples[0] as SoakSample), 100_000);
  t.same(summarizeSoak(samples), {
    startRssKiB: 100_000,
    endRssKiB: 110_000,
    rssGrowthPercent: 10,
    startHeap: { usedBytes: 25_600_000, totalBytes: 51_200_000, externalBytes: 2 << 20 },
    endHeap: { usedBytes: 28_160_000, totalBytes: 56_320_000, externalBytes: 2 << 20 },
    heapUsedGrowthPercent: 10,
    heapTotalGrowthPercent: 10,
    rssTrendKiBPerMin: 10_000,
    heapUsedTrendBytesPerMin: 2_560_000,
    heapTotalTrendBytesPerMin: 5_120_000,
    heapMissing: false,
    startP99Ms: 4,
    endP99Ms: 5,
    p99GrowthPercent: 25,
    p99TrendMsPerMin: 1,
    gatewayStartP99Ms: undefined,
    gatewayEndP99Ms: undefined,
    gatewayP99TrendMsPerMin: undefined,
    startCpuUsPerRequest: 60,
    endCpuUsPerRequest: 62,
    // Over the intervals that have the figure (30 s and 90 s): +2 µs in a minute.
    cpuTrendUsPerMin: 2,
    upstreamCpuTrendUsPerMin: 1,
    edgesChanged: false,
  });
  const restarted = summarizeSoak([...samples, sample(120, { '10': 55_000, '12': 30_000 }, 5)]);
  t.equal(restarted?.edgesChanged, true, 'a new edge pid is reported');
  t.equal(summarizeSoak([]), undefined);
  t.equal(growthPercent(0, 5), 0);
  t.equal(growthPercent(200, 150), -25);
  const text = renderSoak({
    scenario: 'gateway-auth-proxy',
    minutes: 2,
    intervalSec: 30,
    samples,
    summary: summarizeSoak(samples),
  }).join('\n');
  t.match(
    text,
    /\| 30 \| 2 \| 97\.7 \| 24\.4 \| 48\.8 \| 2\.0 \| 1,000 \| 4\.00 \| n\/a \| n\/a \| 60\.0 \| 30\.0 \| 3\.3 \|/,
  );
  t.match(text, /\| 60 \| 2 \| .* \| 9\.00 \| n\/a \| n\/a \| n\/a \|/, 'a cost that was not had');
  t.match(
    text,
    /p99 \+1\.00 ms\/min\ngateway CPU per request: 60\.0 → 62\.0 µs, trend \+2\.00 µs\/min; upstream's trend \+1\.00 µs\/min/,
  );
  t.match(
    text,
    /RSS 97\.7 → 107\.4 MiB \(\+10\.0%\), JS heap used 24\.4 → 26\.9 MiB \(\+10\.0%\), heap total 48\.8 → 53\.7 MiB \(\+10\.0%\), p99 4\.00 → 5\.00 ms \(\+25\.0%\)/,
  );
  t.match(
    text,
    /trend over every interval \(least squares\): edges' RSS \+9\.77 MiB\/min, JS heap used \+2\.44 MiB\/min, heap total \+4\.88 MiB\/min/,
  );
  t.notMatch(text, /heap report did not come/);
});

const RUN = {
  durationSec: 30,
  startedAt: '2026-12-01T19:00:00.000Z',
  endedAt: '2026-12-01T19:00:30.000Z',
};

t.test(
  'soak cost of a run: CPU per request of the gateway and the upstream, idle share',
  async (t) => {
    const cost = runCost(
      { gatewaySec: 1, upstreamSec: 2, machine: { idle: 100, total: 1000 } },
      { gatewaySec: 1.6, upstreamSec: 2.25, machine: { idle: 130, total: 1600 } },
      10_000,
    );
    t.equal(cost.cpuUsPerRequest?.toFixed(6), '60.000000');
    t.equal(cost.upstreamCpuUsPerRequest?.toFixed(6), '25.000000');
    t.equal(cost.machineIdlePercent, 5);
    const line = costLine({
      ...RUN,
      elapsedSec: 30,
      edgesRssKiB: {},
      edgesHeap: {},
      requestsPerSec: 1,
      latencyP99Ms: 1,
      ...cost,
    });
    t.equal(line, 'CPU 60 µs/req (upstream 25), machine idle 5%');
    const missing = runCost(
      { gatewaySec: 1, upstreamSec: undefined, machine: undefined },
      { gatewaySec: 2, upstreamSec: undefined, machine: { idle: 1, total: 2 } },
      0,
    );
    t.same(missing, {
      cpuUsPerRequest: undefined,
      upstreamCpuUsPerRequest: undefined,
      machineIdlePercent: undefined,
    });
    t.equal(
      costLine({
        ...RUN,
        elapsedSec: 30,
        edgesRssKiB: {},
        edgesHeap: {},
        requestsPerSec: 1,
        latencyP99Ms: 1,
      }),
      'CPU ? µs/req (upstream ?), machine idle ?%',
    );
    const ticks = machineTicks();
    if (process.platform === 'linux') {
      t.ok(ticks !== undefined && ticks.total > 0 && ticks.idle >= 0 && ticks.idle <= ticks.total);
    } else t.equal(ticks, undefined);
  },
);

t.test('a soak report says so in its parameters and has no empty table', async (t) => {
  const { renderReport } = await import('../bench/report.js');
  const soak = {
    scenario: 'gateway-auth-proxy',
    minutes: 2,
    intervalSec: 30,
    samples: [],
    summary: undefined,
  };
  const text = renderReport({
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
      runs: 5,
      durationSec: 10,
      warmupSec: 3,
      connections: 64,
      threads: 2,
      proxyProcesses: 2,
    },
    scenarios: [],
    summary: [],
    soak,
  });
  t.match(text, /parameters: soak of 2 min in runs of 30 s \(warm-up 3 s\)/);
  t.notMatch(text, /\| scenario \| median req\/s/, 'no empty comparison table');
  t.match(text, /soak: gateway-auth-proxy for 2 min/);
  t.match(text, /no interval completed/);
});

t.test('edge memory comes from /proc: children of a pid and their VmRSS', async (t) => {
  t.equal(parseVmRss('Name:\tnode\nVmRSS:\t   51234 kB\nVmSwap: 0 kB\n'), 51_234);
  t.equal(parseVmRss('Name:\tkthreadd\n'), undefined, 'kernel threads have none');
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.teardown(() => child.kill());
  await new Promise((r) => child.once('spawn', r));
  t.ok(childPids(process.pid).includes(child.pid as number), 'the child is listed');
  const rss = rssKiB(child.pid as number);
  t.ok(rss !== undefined && rss > 1000, `a node child has megabytes resident (${rss} KiB)`);
  t.equal(rssKiB(2 ** 22 + 12345), undefined, 'an unknown pid gives undefined');
});

t.test(
  'raw Argon2: verifications per second on worker threads, wrong hashes refused',
  async (t) => {
    const workerPath = join(packageRoot(), 'dist', 'bench', 'raw-argon2-worker.js');
    t.ok(existsSync(workerPath), 'built (npm run build)');
    // Cheap parameters: this checks the mechanics, not the cost.
    const params = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
    const hash = await hashPassword('pw', params);
    const run = await measureArgon2({
      hash,
      password: 'pw',
      threads: 1,
      durationSec: 0.2,
      workerPath,
    });
    t.ok(run.result.requests > 0, `${run.result.requests} verifications`);
    t.equal(run.result.errorResponses, 0);
    t.ok(run.result.latencyP50Ms > 0 && run.result.latencyP99Ms >= run.result.latencyP50Ms);
    t.ok(Math.abs(run.result.requestsPerSec - run.result.requests / run.result.durationSec) < 1e-6);
    t.ok(run.cpuUsPerVerification !== undefined && run.cpuUsPerVerification > 0);
    await t.rejects(
      measureArgon2({ hash, password: 'other', threads: 1, durationSec: 0.1, workerPath }),
      { code: 'BENCH_WRONG_ANSWER' },
      'a pair that does not verify fails before timing',
    );
    t.equal(percentile([1, 2, 3, 4], 0.5), 2);
    t.equal(percentile([1, 2, 3, 4], 0.99), 4);
    t.equal(percentile([], 0.5), 0);
  },
);

t.test('a scenario may set its own connections; threads never exceed them', async (t) => {
  const { loadRequestFor } = await import('../bench/load-request.js');
  const { LOGIN_CONNECTIONS } = await import('../bench/scenarios.js');
  const login = SCENARIOS.find((s) => s.name === 'gateway-login');
  const plain = SCENARIOS.find((s) => s.name === 'gateway-auth-proxy');
  if (!login || !plain) throw new Error('scenario list changed');
  const target = {
    url: 'http://127.0.0.1:1/x',
    headers: { a: 'b' },
    method: 'POST' as const,
    body: '{}',
  };
  t.match(loadRequestFor(login, target, { connections: 64, threads: 2 }, 5), {
    connections: LOGIN_CONNECTIONS,
    threads: 2,
    durationSec: 5,
    url: target.url,
    method: 'POST',
    body: '{}',
  });
  t.ok(LOGIN_CONNECTIONS < 64, 'fewer logins in flight than proxied requests');
  t.match(loadRequestFor(plain, target, { connections: 64, threads: 2 }, 5), { connections: 64 });
  t.match(
    loadRequestFor({ ...plain, connections: 1 }, target, { connections: 64, threads: 2 }, 5),
    {
      connections: 1,
      threads: 1,
    },
  );
});

t.test('a login scenario posts the service user as JSON', async (t) => {
  const scenario = SCENARIOS.find((s) => s.name === 'gateway-login');
  if (!scenario) throw new Error('scenario list changed');
  const login = { username: 'bench', password: 'p"w', passwordHash: '$argon2id$...' };
  const target = targetFor(scenario, {
    name: 'gateway-login',
    baseUrl: 'http://127.0.0.1:1',
    login,
  });
  t.equal(target.url, 'http://127.0.0.1:1/auth');
  t.equal(target.method, 'POST');
  t.same(JSON.parse(target.body ?? ''), { username: 'bench', password: 'p"w' });
  t.equal(target.headers['content-type'], 'application/json');
  t.throws(() => targetFor(scenario, { name: 'gateway-login', baseUrl: 'http://x' }), {
    code: 'BENCH_NO_AUTH',
  });
});

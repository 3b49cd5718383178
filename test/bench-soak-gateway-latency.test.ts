// The soak's gateway latency: the access log read once after the soak (bench/access-log-latency.ts),
// its histogram (bench/latency-histogram.ts), and the report's columns and summary lines.
import { appendFileSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AccessLineReader, spanLatencies } from '../bench/access-log-latency.js';
import { HISTOGRAM_RELATIVE_ERROR, LatencyHistogram } from '../bench/latency-histogram.js';
import { withGatewayLatency } from '../bench/soak.js';
import { renderSoak, soakRunsLabel } from '../bench/soak-render.js';
import { type SoakReport, type SoakSample, summarizeSoak } from '../bench/soak-report.js';
import { AccessLog } from '../shared/access-log.js';
import { fakeSoak, loadResult } from './helpers/fake-soak.js';
import { seededRandom } from './helpers/seeded-random.js';

const T0 = Date.UTC(2026, 11, 1, 19, 48, 0);
const iso = (ms: number) => new Date(ms).toISOString();

/** An access line as shared/access-log.ts writes it. */
function access(ts: number, ms: number | string): string {
  return `{"ts":"${iso(ts)}","type":"access","pid":41,"ip":"127.0.0.1","method":"GET","path":"/api/hello","status":200,"ms":${ms},"user":"bench","route":"/api"}`;
}

/** `line` cut right after `after`. */
function torn(line: string, after: string): string {
  return line.slice(0, line.indexOf(after) + after.length);
}

/** Three spans: 0-10 s, 20-30 s and 40-50 s after T0. */
const SPANS = [0, 20, 40].map((s) => ({ startMs: T0 + s * 1000, endMs: T0 + (s + 10) * 1000 }));

t.test('the log parse: access lines by span, every other line passed over', async (t) => {
  // Below 1.28 ms the histogram is exact: the quantiles can be checked to the hundredth.
  const inA = Array.from({ length: 100 }, (_, i) => access(T0 + 50 * i, (i + 1) / 100));
  const inB = T0 + 25_000;
  const lines = [
    access(T0 - 1, 900), // the warm-up, just before the first span
    ...inA,
    access(T0 + 15_000, 900), // between two runs: the heap sampling
    access(inB, 1.25),
    access(T0 + 10_000, 1), // the first span's last ms, written late (another edge's flush)
    `{"level":"info","message":"edge ready","ms":900,"timestamp":"${iso(inB)}"}`,
    `{"ts":"${iso(inB)}","type":"log","level":"warn","ms":900}`,
    '[4242:0x5a0c3a0]    25000 ms: Scavenge 14.2 (16.5) -> 1.9 (16.5) MB, 2.31 / 0.00 ms  (average mu = 0.991) allocation failure;',
    'Writing Node.js report to file: report.json',
    '',
    access(inB, 900).slice(0, -30), // torn inside the line
    torn(access(inB, 900), '"ms":9'), // torn inside ms's digits
    `${access(inB, 900).slice(0, 60)}${access(inB, 900)}`, // a torn line then a whole one, merged
    access(inB, '"900"'),
    access(inB, -900),
    access(inB, '9e2'),
    access(inB, ''),
    access(inB, 900).replace(/T\d\d/, 'T99'), // no such hour
    access(inB, 900).replace('.000Z', '.0x0Z'),
    access(inB, 900).replace('"type":"access"', '"type":"accesses"'),
    access(inB, 1.25),
    access(T0 + 30_000, 1.25), // the second span's end is in it
  ];
  const dir = t.testdir({ 'gateway.log': `${lines.join('\n')}\n${access(inB, 1.25)}` });
  const got = await spanLatencies(join(dir, 'gateway.log'), SPANS);
  t.same(got, [
    { requests: 101, p50Ms: 0.51, p99Ms: 1 },
    { requests: 4, p50Ms: 1.25, p99Ms: 1.25 },
    undefined,
  ]);
  t.equal(await spanLatencies(join(dir, 'missing.log'), SPANS), undefined, 'no log');
  t.same(await spanLatencies(join(dir, 'gateway.log'), []), [], 'no span');
});

t.test('lines cut across chunks are whole again; an overlong line is skipped', async (t) => {
  const text = Buffer.from(
    `${access(T0, 1)}\n${'x'.repeat(70_000)}${access(T0, 900)}\n${access(T0 + 1, 2)}\n${access(T0 + 1000, 3.25)}\n`,
  );
  for (const size of [1, 13, 4096, 65_536, text.length]) {
    const seen: [number, number][] = [];
    const reader = new AccessLineReader((ts, ms) => seen.push([ts, ms]));
    for (let i = 0; i < text.length; i += size) reader.push(text.subarray(i, i + size));
    reader.end();
    t.same(
      seen,
      [
        [T0, 1],
        [T0 + 1, 2],
        [T0 + 1000, 3.25],
      ],
      `chunks of ${size} bytes`,
    );
  }
});

t.test('the parse reads what shared/access-log.ts writes', async (t) => {
  const path = join(t.testdir(), 'gateway.log');
  const fd = openSync(path, 'w');
  const log = new AccessLog(fd, 41);
  const startMs = Date.now();
  const values = [0, 0.01, 0.83, 1.5, 12.34, 250];
  for (const ms of values) {
    log.write({
      ip: '::1',
      method: 'GET',
      path: '/é"',
      status: 200,
      ms,
      user: 'u',
      route: '/',
      code: undefined,
    });
  }
  log.flush();
  closeSync(fd);
  const seen: number[] = [];
  const reader = new AccessLineReader((ts, ms) => {
    if (ts >= startMs && ts <= Date.now()) seen.push(ms);
  });
  reader.push(readFileSync(path));
  reader.end();
  t.same(seen, values);
});

t.test('histogram quantiles against exact ones, within the stated error', async (t) => {
  const next = seededRandom(24);
  // Latencies in hundredths of a ms (the log's resolution), log-normal: 0.01 ms to seconds.
  const values = Array.from({ length: 50_000 }, () => {
    const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    return Math.round(Math.exp(1.2 + 1.6 * normal) * 100) / 100;
  });
  const histogram = new LatencyHistogram();
  for (const v of values) histogram.record(v);
  const sorted = [...values].sort((a, b) => a - b);
  t.equal(histogram.count, values.length);
  t.ok(HISTOGRAM_RELATIVE_ERROR <= 0.01, 'at most 1%');
  for (const q of [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1]) {
    const exact = sorted[Math.ceil(q * sorted.length) - 1]!;
    const got = histogram.quantile(q)!;
    const error = Math.abs(got - exact);
    t.ok(error <= exact * HISTOGRAM_RELATIVE_ERROR + 1e-9, `q ${q}: ${got} against ${exact}`);
    if (exact < 1.28) t.equal(got, exact, `q ${q} exact below 1.28 ms`);
  }
  const empty = new LatencyHistogram();
  empty.record(-1);
  empty.record(Number.NaN);
  empty.record(Number.POSITIVE_INFINITY);
  t.equal(empty.count, 0, 'not latencies');
  t.equal(empty.quantile(0.5), undefined);
});

function sample(i: number, p99: number, gateway?: { p50: number; p99: number }): SoakSample {
  return {
    elapsedSec: 30 * (i + 1),
    durationSec: 30,
    startedAt: iso(T0 + 40_000 * i),
    endedAt: iso(T0 + 40_000 * i + 30_000),
    edgesRssKiB: { '10': 100_000 },
    edgesHeap: {},
    requestsPerSec: 1000,
    latencyP99Ms: p99,
    requests: 30_000,
    ...(gateway === undefined
      ? {}
      : { gatewayRequests: 29_990, gatewayP50Ms: gateway.p50, gatewayP99Ms: gateway.p99 }),
  };
}

function report(samples: SoakSample[]): SoakReport {
  return {
    scenario: 'gateway-auth-proxy',
    minutes: 2,
    intervalSec: 30,
    samples,
    summary: summarizeSoak(samples),
  };
}

t.test('the report: gateway columns beside the p99, its trend, n/a without it', async (t) => {
  // The client's p99 rises 9 → 27 ms; the gateway's own 6 → 7 ms, with a run it missed.
  const rising = [
    sample(0, 9, { p50: 0.84, p99: 6 }),
    sample(1, 15),
    sample(2, 21, { p50: 0.9, p99: 6.5 }),
    sample(3, 27, { p50: 0.88, p99: 7 }),
  ];
  const summary = summarizeSoak(rising);
  t.equal(summary?.gatewayStartP99Ms, 6);
  t.equal(summary?.gatewayEndP99Ms, 7);
  t.equal(summary?.p99TrendMsPerMin?.toFixed(6), '12.000000');
  t.equal(summary?.gatewayP99TrendMsPerMin?.toFixed(6), '0.642857', 'over the runs that have it');
  const text = renderSoak(report(rising)).join('\n');
  t.match(text, /\| p99 ms \| gateway p50 ms \| gateway p99 ms \|/);
  t.match(
    text,
    /\| 30 \| 1 \| 97\.7 \| 0\.0 \| 0\.0 \| 0\.0 \| 1,000 \| 9\.00 \| 0\.84 \| 6\.00 \| n\/a \|/,
  );
  t.match(text, /\| 60 \| .* \| 15\.00 \| n\/a \| n\/a \|/, 'a run without access lines');
  t.match(
    text,
    /gateway's own p99 \(access log\): 6\.00 → 7\.00 ms, trend \+0\.64 ms\/min, against the load tool's p99 trend \+12\.00 ms\/min \(89,970 access lines in the intervals; the load tool counted 120,000 requests\)/,
  );
  t.match(
    text,
    /rises more than twice as fast as the gateway's own: the rise is outside the gateway's handler/,
  );

  const both = [sample(0, 9, { p50: 1, p99: 6 }), sample(1, 12, { p50: 1, p99: 8 })];
  t.notMatch(renderSoak(report(both)).join('\n'), /outside the gateway's handler/, '+6 against +4');
  // Fewer than four intervals: a fit through two or three points names nothing.
  const three = [
    sample(0, 9, { p50: 1, p99: 6 }),
    sample(1, 15, { p50: 1, p99: 6 }),
    sample(2, 21, { p50: 1, p99: 6 }),
  ];
  t.notMatch(renderSoak(report(three)).join('\n'), /outside the gateway's handler/, '3 intervals');
  // Four intervals, a rise inside the noise: 9 -> 9.9 ms (+10%, under 20% and under 1 ms).
  const small = [0, 1, 2, 3].map((i) => sample(i, 9 + 0.3 * i, { p50: 1, p99: 6 }));
  t.notMatch(renderSoak(report(small)).join('\n'), /outside the gateway's handler/, '+10%');
  // The same share on a larger p99 (30 -> 33 ms: +3 ms, 10%): still noise.
  const share = [0, 1, 2, 3].map((i) => sample(i, 30 + i, { p50: 1, p99: 6 }));
  t.notMatch(renderSoak(report(share)).join('\n'), /outside the gateway's handler/, '+3 ms, 10%');
  // 9 -> 11.7 ms over four intervals (+30%, +2.7 ms), gateway flat: named.
  const clear = [0, 1, 2, 3].map((i) => sample(i, 9 + 0.9 * i, { p50: 1, p99: 6 }));
  t.match(renderSoak(report(clear)).join('\n'), /outside the gateway's handler/, '+30%');
  const falling = [sample(0, 12, { p50: 1, p99: 6 }), sample(1, 9, { p50: 1, p99: 2 })];
  t.notMatch(renderSoak(report(falling)).join('\n'), /outside the gateway's handler/, 'no rise');

  const none = renderSoak(report([sample(0, 9), sample(1, 12)])).join('\n');
  t.match(none, /\| 30 \| .* \| 9\.00 \| n\/a \| n\/a \|/);
  t.match(none, /gateway's own latency: n\/a/);
  t.notMatch(none, /\| 0\.00 \|/, 'never 0 for a missing figure');
});

t.test('one interval: every trend is n/a, not +0.00/min', async (t) => {
  const text = renderSoak(report([sample(0, 9, { p50: 1, p99: 6 })])).join('\n');
  t.match(text, /trend over every interval: n\/a \(a trend needs two intervals or more\)/);
  t.match(text, /trend n\/a µs\/min; upstream's trend n\/a µs\/min/);
  t.match(
    text,
    /6\.00 → 6\.00 ms, trend n\/a ms\/min, against the load tool's p99 trend n\/a ms\/min/,
  );
  t.notMatch(text, /[+-]0\.00( MiB| ms| µs)?\/min/);
});

t.test('the runs label says the lengths that ran', async (t) => {
  const run = (i: number, durationSec: number) => ({ ...sample(i, 9), durationSec });
  const label = (samples: SoakSample[]) => soakRunsLabel(report(samples));
  t.equal(label([run(0, 30), run(1, 30)]), '2 runs of 30 s');
  t.equal(label([run(0, 25), run(1, 25), run(2, 10)]), '2 runs of 25 s and 1 of 10 s');
  t.equal(label([run(0, 20)]), '1 run of 20 s');
  t.equal(label([]), 'runs of 30 s', 'none ran: the option');
  t.match(
    renderSoak(report([run(0, 25), run(1, 25), run(2, 10)]))[0],
    /back-to-back load runs \(2 runs of 25 s and 1 of 10 s\)/,
  );
});

t.test('withGatewayLatency adds each run its figures; without a log, none', async (t) => {
  const samples = [sample(0, 9), sample(1, 9), sample(2, 9)];
  const dir = t.testdir({
    'gateway.log': [1, 2, 3, 4].map((i) => access(T0 + 40_000 + i, i / 10)).join('\n'),
  });
  const got = await withGatewayLatency(join(dir, 'gateway.log'), samples);
  t.same(
    got.map((s) => [s.gatewayRequests, s.gatewayP50Ms, s.gatewayP99Ms]),
    [
      [undefined, undefined, undefined],
      [4, 0.2, 0.4],
      [undefined, undefined, undefined],
    ],
  );
  const missing = await withGatewayLatency(join(dir, 'missing.log'), samples);
  t.same(missing, samples);
  t.same(await withGatewayLatency(undefined, samples), samples);
  t.same(await withGatewayLatency(dir, samples), samples, 'a log that cannot be read (EISDIR)');
});

t.test('a soak records each run’s span and reads the log after the last run', async (t) => {
  const logPath = join(t.testdir({}), 'gateway.log');
  writeFileSync(logPath, `${access(Date.now() - 60_000, 900)}\n`);
  let run = 0;
  const load = async () => {
    run++;
    // Each run's requests end inside it: run 1's take 0.01-1 ms, run 2's 0.2 ms more.
    const ms = (i: number) => ((i + 1) / 100 + (run - 1) * 0.2).toFixed(2);
    const lines = Array.from({ length: 100 }, (_, i) => access(Date.now(), ms(i)));
    appendFileSync(logPath, `${lines.join('\n')}\n`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return loadResult({ requests: 100 });
  };
  const argv = ['--soak', '1', '--soak-interval', '40', '--warmup', '0'];
  const soak = await fakeSoak(t, argv, load, { gatewayLog: logPath });
  t.same(
    soak.samples.map((s) => [s.durationSec, s.gatewayRequests, s.gatewayP50Ms, s.gatewayP99Ms]),
    [
      [40, 100, 0.5, 0.99],
      [20, 100, 0.7, 1.19],
    ],
  );
  for (const s of soak.samples) t.ok(Date.parse(s.startedAt) <= Date.parse(s.endedAt));
  t.match(renderSoak(soak)[0], /\(1 run of 40 s and 1 of 20 s\)/);
});

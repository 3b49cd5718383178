import t, { type Test } from 'tap';
import { LokiShipper } from '../supervisor/loki-shipper.js';
import { type FakeLoki, type LokiPush, startFakeLoki } from './helpers/fake-loki.js';
import { waitFor } from './helpers/gateway.js';

/** The shared fake push endpoint (helpers/fake-loki.ts), closed at the test's end. */
async function fakeLoki(t: Test, reply?: Parameters<typeof startFakeLoki>[0]): Promise<FakeLoki> {
  const loki = await startFakeLoki(reply);
  t.teardown(() => loki.close());
  return loki;
}

const lines = (pushes: LokiPush[]) =>
  pushes.flatMap((p) => p.streams.flatMap((s) => s.values.map((v) => v[1])));

const APP = { level: 'info', kind: 'app' } as const;

t.test(
  'payload: labels, nanosecond string timestamps in order, one stream per label set',
  async (t) => {
    const loki = await fakeLoki(t);
    const shipper = new LokiShipper({ url: loki.url, node: 'n1', batchMs: 20 });
    shipper.push('a', APP);
    shipper.push('b', { level: 'warn', kind: 'app' });
    shipper.push('c', { level: 'info', kind: 'access' });
    shipper.push('d', APP);
    t.ok(await waitFor(() => loki.pushes.length === 1, 2000));
    t.same(loki.requests, ['POST /loki/api/v1/push application/json']);
    const streams = loki.pushes[0]!.streams;
    t.same(
      streams.map((s) => s.stream),
      [
        { app: 'proxyauth', node: 'n1', level: 'info', kind: 'app' },
        { app: 'proxyauth', node: 'n1', level: 'warn', kind: 'app' },
        { app: 'proxyauth', node: 'n1', level: 'info', kind: 'access' },
      ],
    );
    t.same(
      streams[0]!.values.map((v) => v[1]),
      ['a', 'd'],
    );
    const all = streams.flatMap((s) => s.values);
    for (const [ts] of all) t.match(ts, /^[0-9]{19}$/, 'nanoseconds, as a decimal string');
    const sorted = all.map((v) => BigInt(v[0]));
    t.equal(new Set(sorted).size, 4, 'no two lines share a timestamp');
    const first = streams[0]!.values.map((v) => BigInt(v[0]));
    t.ok(first[0]! < first[1]!, 'in order within a stream');
    const ms = Number(BigInt(all[0]![0]) / 1_000_000n);
    t.ok(Math.abs(ms - Date.now()) < 5000, 'the clock time');
    // The fake records a push before it answers: the shipper counts it a moment later.
    t.ok(await waitFor(() => shipper.pushed === 4, 2000), `${shipper.pushed} lines counted pushed`);
  },
);

t.test('batching: by size at once, else after batchMs', async (t) => {
  const loki = await fakeLoki(t);
  const shipper = new LokiShipper({ url: loki.url, node: 'n', batchLines: 3, batchMs: 60_000 });
  for (const l of ['1', '2', '3', '4']) shipper.push(l, APP);
  t.ok(await waitFor(() => loki.pushes.length === 1, 2000), 'a full batch leaves at once');
  t.same(lines(loki.pushes), ['1', '2', '3']);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(loki.pushes.length, 1, 'the rest waits for batchMs');
  await shipper.close();
  t.same(lines(loki.pushes), ['1', '2', '3', '4'], 'close pushes what is left');
});

t.test(
  'Loki down: bounded buffer drops the newest, counts and reports them, retries',
  async (t) => {
    const loki = await fakeLoki(t, (n) => ({ status: n < 2 ? 503 : 204 }));
    const reports: string[] = [];
    const shipper = new LokiShipper({
      url: loki.url,
      node: 'n',
      batchMs: 10,
      maxBuffered: 5,
      backoffMs: 50,
      report: (level, msg) => reports.push(`${level} ${msg}`),
    });
    for (let i = 0; i < 8; i++) shipper.push(`line ${i}`, APP);
    t.equal(shipper.buffered, 5);
    t.equal(shipper.dropped, 3);
    t.ok(await waitFor(() => loki.pushes.length === 1, 5000), 'retried until Loki took it');
    t.ok(loki.attempts() >= 3);
    const got = lines(loki.pushes);
    t.same(got.slice(1), ['line 0', 'line 1', 'line 2', 'line 3', 'line 4'], 'the oldest kept');
    const report = JSON.parse(got[0]!) as Record<string, unknown>;
    t.match(report, { level: 'warn', message: /dropped/, dropped: 3, dropped_total: 3 });
    const streams = loki.pushes[0]!.streams;
    t.same(streams[0]!.stream.level, 'warn', 'the report is a warn line');
    // The fake records a push before it answers: the shipper learns of it a moment later.
    await waitFor(() => reports.length === 2, 2000);
    t.same(reports, ['warn loki unreachable, buffering log lines', 'info loki reachable again']);
    shipper.push('after', APP);
    t.ok(await waitFor(() => loki.pushes.length === 2, 2000));
    t.same(lines([loki.pushes[1]!]), ['after'], 'reported once');
  },
);

t.test('lines arriving after a failed push do not bring the retry forward', async (t) => {
  // attack11 F2: with a full batch waiting, every push() cleared the backoff timer and pushed
  // at once, so a Loki answering 500 or 429 was asked again ~20 times a second.
  const loki = await fakeLoki(t, () => ({ status: 500 }));
  const shipper = new LokiShipper({
    url: loki.url,
    node: 'n',
    batchLines: 10,
    backoffMs: 2000,
    maxBackoffMs: 2000,
  });
  t.teardown(() => shipper.close());
  for (let i = 0; i < 10; i++) shipper.push(`line ${i}`, APP);
  t.ok(await waitFor(() => loki.attempts() === 1, 2000), 'the full batch is pushed at once');
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  while (Date.now() - started < 150) {
    shipper.push('more', APP);
    await new Promise((r) => setTimeout(r, 5));
  }
  t.equal(loki.attempts(), 1, 'no new push during the backoff (at least 1 s)');
  t.ok(await waitFor(() => loki.attempts() >= 2, 5000), 'the retry comes after the backoff');
});

t.test('a 4xx other than 429 drops the batch instead of retrying it forever', async (t) => {
  const loki = await fakeLoki(t, (n) => ({ status: n === 0 ? 400 : 204 }));
  const shipper = new LokiShipper({ url: loki.url, node: 'n', batchMs: 10, backoffMs: 10 });
  shipper.push('bad', APP);
  t.ok(await waitFor(() => loki.attempts() === 1, 2000));
  await waitFor(() => shipper.dropped === 1, 2000);
  t.equal(shipper.dropped, 1);
  shipper.push('good', APP);
  t.ok(await waitFor(() => loki.pushes.length === 1, 2000));
  const got = lines(loki.pushes);
  t.equal(got.length, 2, 'the drop report and the new line');
  t.equal(got[1], 'good');
});

t.test('a Loki that keeps refusing is reported once per status, not once per batch', async (t) => {
  // Refused (400) four times, then 413 twice, then accepted.
  const statuses = [400, 400, 400, 400, 413, 413];
  const loki = await fakeLoki(t, (n) => ({ status: statuses[n] ?? 204 }));
  const reports: string[] = [];
  const shipper = new LokiShipper({
    url: loki.url,
    node: 'n',
    batchMs: 5,
    backoffMs: 5,
    // As in production, a report is itself a line to ship (the feedback loop of the review).
    report: (level, msg) => {
      reports.push(`${level} ${msg}`);
      shipper.push(msg, { level, kind: 'app' });
    },
  });
  for (let i = 0; i < 7; i++) {
    shipper.push(`line ${i}`, APP);
    await waitFor(() => loki.attempts() > i, 2000);
  }
  t.ok(await waitFor(() => loki.pushes.length >= 1, 2000), 'accepted at last');
  t.same(reports, [
    'warn loki refused a batch, its lines are dropped',
    'warn loki refused a batch, its lines are dropped',
    'info loki accepts batches again',
  ]);
  t.ok(shipper.dropped >= 6, `${shipper.dropped} lines dropped, counted`);
});

t.test('slow Loki: a push past timeoutMs is aborted and retried; push() never waits', async (t) => {
  const loki = await fakeLoki(t, (n) => ({ status: 204, delayMs: n === 0 ? 1000 : 0 }));
  const shipper = new LokiShipper({
    url: loki.url,
    node: 'n',
    batchMs: 10,
    timeoutMs: 200,
    backoffMs: 10,
  });
  shipper.push('x', APP);
  const started = performance.now();
  for (let i = 0; i < 1000; i++) shipper.push(`y${i}`, APP);
  t.ok(performance.now() - started < 200, 'pushing 1000 lines took no network time');
  t.ok(await waitFor(() => shipper.pushed === 1001, 5000), 'delivered after the timeout');
  t.ok(loki.attempts() >= 2);
});

t.test('Loki unreachable (nothing listens): lines wait, nothing throws', async (t) => {
  const loki = await fakeLoki(t);
  const dead = new LokiShipper({ url: 'http://127.0.0.1:9', node: 'n', batchMs: 5, backoffMs: 5 });
  for (let i = 0; i < 10; i++) dead.push(`z${i}`, APP);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(dead.buffered, 10);
  t.equal(dead.pushed, 0);
  await dead.close();
  t.equal(loki.pushes.length, 0);
});

t.test('counts: shipped, and dropped by reason (buffer full, refused, stopped)', async (t) => {
  const loki = await fakeLoki(t, (n) => ({ status: n === 0 ? 400 : 204 }));
  const shipper = new LokiShipper({ url: loki.url, node: 'n', batchMs: 10, maxBuffered: 2 });
  t.same(shipper.counts(), { shipped: 0, dropped: { buffer_full: 0, refused: 0, stopped: 0 } });
  for (const l of ['a', 'b', 'c']) shipper.push(l, APP);
  t.ok(await waitFor(() => shipper.counts().dropped.refused === 2, 2000), 'the batch refused');
  shipper.push('d', APP);
  t.ok(await waitFor(() => shipper.counts().shipped === 1, 2000));
  t.same(shipper.counts(), { shipped: 1, dropped: { buffer_full: 1, refused: 2, stopped: 0 } });
  t.equal(shipper.dropped, 3, 'the total is their sum');

  const reports: string[] = [];
  const dead = new LokiShipper({
    url: 'http://127.0.0.1:9',
    node: 'n',
    batchMs: 5,
    backoffMs: 60_000,
    report: (level, msg, fields) => reports.push(`${level} ${msg} ${JSON.stringify(fields)}`),
  });
  for (let i = 0; i < 4; i++) dead.push(`z${i}`, APP);
  t.ok(await waitFor(() => reports.length === 1, 2000), 'the first push failed');
  await dead.close();
  t.same(dead.counts(), { shipped: 0, dropped: { buffer_full: 0, refused: 0, stopped: 4 } });
  t.match(reports[1], /^warn loki unreachable at stop, buffered lines dropped \{"lines":4\}$/);
});

t.test('headers: credentials and tenant on every push; new ones from the next push', async (t) => {
  const loki = await fakeLoki(t);
  const first = { authorization: 'Basic dTpvbGQ=', 'x-scope-orgid': 'team-a' };
  const shipper = new LokiShipper({ url: loki.url, node: 'n', batchMs: 10, headers: first });
  shipper.push('a', APP);
  t.ok(await waitFor(() => loki.pushes.length === 1, 2000));
  t.match(loki.headers[0], { ...first, 'content-type': 'application/json' });
  shipper.setHeaders({ authorization: 'Basic dTpuZXc=' });
  shipper.push('b', APP);
  t.ok(await waitFor(() => loki.pushes.length === 2, 2000));
  t.equal(loki.headers[1]?.authorization, 'Basic dTpuZXc=');
  t.equal(loki.headers[1]?.['x-scope-orgid'], undefined, 'a tenant removed is not sent');
  t.equal(loki.headers[1]?.['content-type'], 'application/json', 'the content type stays ours');
});

t.test('401 and 403 refuse the credentials, not the batch: kept and retried', async (t) => {
  const loki = await fakeLoki(t, (_n, headers) => ({
    status: headers.authorization === 'Basic Z29vZA==' ? 204 : 401,
  }));
  const reports: string[] = [];
  const shipper = new LokiShipper({
    url: loki.url,
    node: 'n',
    batchMs: 10,
    backoffMs: 20,
    maxBackoffMs: 40,
    headers: { authorization: 'Basic YmFk' },
    report: (level, msg, fields) => reports.push(`${level} ${msg} ${JSON.stringify(fields)}`),
  });
  shipper.push('kept', APP);
  t.ok(await waitFor(() => loki.attempts() >= 2, 2000), 'retried');
  t.equal(shipper.dropped, 0, 'nothing dropped');
  t.equal(shipper.buffered, 1);
  t.match(reports[0], /^warn loki unreachable, buffering log lines \{"reason":"HTTP 401"/);
  t.notMatch(reports.join('\n'), /YmFk|Basic/, 'the credentials are not reported');
  shipper.setHeaders({ authorization: 'Basic Z29vZA==' });
  t.ok(await waitFor(() => loki.pushes.length === 1, 2000), 'delivered with the new credentials');
  t.same(lines(loki.pushes), ['kept']);
  const forbidden = await fakeLoki(t, (n) => ({ status: n === 0 ? 403 : 204 }));
  const other = new LokiShipper({ url: forbidden.url, node: 'n', batchMs: 10, backoffMs: 10 });
  other.push('x', APP);
  t.ok(await waitFor(() => forbidden.pushes.length === 1, 2000), '403: retried as well');
  t.equal(other.dropped, 0);
});

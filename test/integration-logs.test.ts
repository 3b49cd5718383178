// Logs (README "Logs"): Loki push from a live gateway (labels, nanosecond timestamps, order),
// Loki down, then back, and slow while requests keep their latency; the /adm/logs ring;
// SIGUSR1 and a reload changing the level.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { startFakeLoki } from './helpers/fake-loki.js';
import { freePort } from './helpers/free-port.js';
import {
  login,
  type RunningGateway,
  startGateway,
  waitFor,
  writeConfig,
} from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const ADMIN = 'a'.repeat(64);
const upstream = await startUpstream();
t.teardown(() => upstream.close());
const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}/api\n`;

async function get(g: RunningGateway, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${g.url}${path}`, { headers });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

/** Latencies (ms) of `n` authenticated GETs in sequence, sorted. */
async function latencies(g: RunningGateway, token: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const res = await get(g, `/api/lat/${i}`, { authorization: `Bearer ${token}` });
    out.push(performance.now() - start);
    if (res.status !== 200) throw new Error(`GET answered ${res.status}`);
  }
  return out.sort((a, b) => a - b);
}

/** p50 of the same requests with local logs, measured first: "normal latency" on this machine. */
let baseline = 0;
const normal = () => Math.max(20, 3 * baseline);

t.test('baseline: local logs', async (t) => {
  const g = await startGateway({ routes });
  t.teardown(() => g.stop());
  const lat = await latencies(g, await login(g.url), 200);
  baseline = lat[100]!;
  t.comment(`local: p50 ${baseline.toFixed(2)} ms, p99 ${lat[198]!.toFixed(2)} ms`);
  t.ok(baseline > 0);
});

t.test('loki: app and access lines of supervisor and edges, labelled, in order', async (t) => {
  const loki = await startFakeLoki();
  t.teardown(() => loki.close());
  const g = await startGateway({
    routes,
    config: { log: { type: 'loki', host: `127.0.0.1:${loki.port}`, node: 'it-node' } },
  });
  t.teardown(() => g.stop());
  const token = await login(g.url);
  t.equal((await get(g, '/api/shipped', { authorization: `Bearer ${token}` })).status, 200);
  const arrived = () => loki.lines().some((l) => l.includes('"path":"/api/shipped"'));
  t.ok(await waitFor(arrived, 10_000), 'the access line reached Loki');
  t.ok(loki.requests.every((r) => r === 'POST /loki/api/v1/push application/json'));
  const streams = loki.pushes.flatMap((p) => p.streams);
  for (const s of streams) {
    t.same(Object.keys(s.stream).sort(), ['app', 'kind', 'level', 'node']);
    t.equal(s.stream.app, 'proxyauth');
    t.equal(s.stream.node, 'it-node');
    const ts = s.values.map((v) => v[0]);
    t.ok(
      ts.every((x) => /^[0-9]{19}$/.test(x)),
      'nanosecond strings',
    );
    t.ok(
      ts.every((x, i) => i === 0 || BigInt(x) > BigInt(ts[i - 1]!)),
      'increasing within a stream',
    );
  }
  const of = (kind: string) => streams.filter((s) => s.stream.kind === kind);
  const accessLines = of('access').flatMap((s) => s.values.map((v) => v[1]));
  t.ok(
    accessLines.some((l) => l.includes('"path":"/api/shipped"')),
    'access kind',
  );
  const appLines = of('app').flatMap((s) => s.values.map((v) => v[1]));
  t.ok(
    appLines.some((l) => l.includes('"message":"gateway started"')),
    'the supervisor',
  );
  t.ok(
    appLines.some((l) => l.includes('"message":"store opened"')),
    'lines of the start logged before the sink existed are shipped too',
  );
  t.ok(
    appLines.some((l) => l.includes('"message":"edge listening"')),
    'the edges',
  );
  for (const s of of('app')) {
    for (const [, line] of s.values) {
      t.equal((JSON.parse(line) as { level: string }).level, s.stream.level, 'level label');
    }
  }
  t.match(g.output(), /"path":"\/api\/shipped"/, 'stdout still has every line');
  const logs = await get(g, '/adm/logs', { 'x-auth-token': ADMIN });
  t.equal(logs.status, 404);
  t.match(JSON.parse(logs.body), { error: 'LOGS_NOT_KEPT' });
});

t.test('loki down, then back: requests keep their latency, lines wait and arrive', async (t) => {
  const port = await freePort();
  const g = await startGateway({
    routes,
    config: { log: { type: 'loki', host: `http://127.0.0.1:${port}` } },
  });
  t.teardown(() => g.stop());
  const token = await login(g.url);
  const lat = await latencies(g, token, 200);
  const p50 = lat[100]!;
  const p99 = lat[198]!;
  t.comment(`Loki down: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
  t.ok(p50 < normal(), `p50 ${p50} ms, baseline ${baseline} ms`);
  t.ok(await waitFor(() => g.output().includes('loki unreachable, buffering log lines'), 10_000));
  const loki = await startFakeLoki(undefined, port);
  t.teardown(() => loki.close());
  const buffered = () => loki.lines().some((l) => l.includes('"path":"/api/lat/199"'));
  t.ok(await waitFor(buffered, 30_000), 'lines logged while Loki was down arrive');
  t.ok(
    loki.lines().some((l) => l.includes('"path":"/api/lat/0"')),
    'from the start of it',
  );
  t.ok(await waitFor(() => g.output().includes('loki reachable again'), 5_000));
});

t.test('slow loki: requests keep their latency', async (t) => {
  const loki = await startFakeLoki(() => ({ status: 204, delayMs: 1_000 }));
  t.teardown(() => loki.close());
  const g = await startGateway({
    routes,
    config: { log: { type: 'loki', host: `127.0.0.1:${loki.port}` } },
  });
  t.teardown(() => g.stop());
  const token = await login(g.url);
  const lat = await latencies(g, token, 200);
  t.comment(`Loki slow: p50 ${lat[100]!.toFixed(2)} ms, p99 ${lat[198]!.toFixed(2)} ms`);
  t.ok(lat[100]! < normal(), `p50 ${lat[100]} ms, baseline ${baseline} ms`);
  t.ok(await waitFor(() => loki.lines().some((l) => l.includes('/api/lat/199')), 15_000));
});

t.test('http: GET /adm/logs serves the newest lines, newest last, bounded', async (t) => {
  const g = await startGateway({ routes, config: { log: { type: 'http', max_writes_log: 100 } } });
  t.teardown(() => g.stop());
  const token = await login(g.url);
  const auth = { authorization: `Bearer ${token}` };
  await get(g, '/api/first', auth);
  await get(g, '/api/second', auth);
  await new Promise((r) => setTimeout(r, 200)); // the access log flushes every 50 ms
  t.equal((await get(g, '/adm/logs')).status, 401, 'admin token required');
  t.equal((await get(g, '/adm/logs', { 'x-auth-token': 'b'.repeat(64) })).status, 401);
  const all = await get(g, '/adm/logs', { 'x-auth-token': ADMIN });
  t.equal(all.status, 200);
  t.equal(all.type, 'text/plain; charset=utf-8');
  const lines = all.body.trimEnd().split('\n');
  t.ok(lines.length <= 100, `${lines.length} lines, at most write_max_logs`);
  t.ok(
    lines.some((l) => l.includes('"message":"key ring in force"')),
    'lines of the start logged before the ring existed are kept',
  );
  const first = lines.findIndex((l) => l.includes('"path":"/api/first"'));
  const second = lines.findIndex((l) => l.includes('"path":"/api/second"'));
  // Two edges flush their access lines on their own 50 ms timers: lines of different edges
  // arrive (and are kept) in arrival order, which may differ from request order by one flush.
  t.ok(first >= 0 && second >= 0, 'both access lines are kept');
  // Lines keep arriving (each call's access line, flushed every 50 ms): the two served must be
  // the last two of a read just before, or newer than all of it.
  await new Promise((r) => setTimeout(r, 200));
  const before = (await get(g, '/adm/logs', { 'x-auth-token': ADMIN })).body.trimEnd().split('\n');
  const two = (await get(g, '/adm/logs?limit=2', { 'x-auth-token': ADMIN })).body
    .trimEnd()
    .split('\n');
  t.equal(two.length, 2);
  for (const line of two) {
    const at = before.lastIndexOf(line);
    t.ok(at === -1 || at >= before.length - 2, `one of the newest lines: ${line.slice(0, 120)}`);
  }
  for (const q of ['limit=0', 'limit=10001', 'limit=x', 'limit=1&limit=2', 'level=info']) {
    const bad = await get(g, `/adm/logs?${q}`, { 'x-auth-token': ADMIN });
    t.equal(bad.status, 400, q);
    t.match(JSON.parse(bad.body), { error: 'BAD_REQUEST' }, q);
  }
  t.equal(
    (await fetch(`${g.url}/adm/logs`, { method: 'POST', headers: { 'x-auth-token': ADMIN } }))
      .status,
    405,
  );
});

t.test('SIGUSR1 toggles debug on every process; a reload applies log.level', async (t) => {
  const g = await startGateway({
    routes,
    config: { log: { level: 'info' } },
    env: { PROXYAUTH_LOG_LEVEL: undefined },
  });
  t.teardown(() => g.stop());
  const changed = (to: string, cause: string) =>
    g
      .output()
      .split('\n')
      .filter(
        (l) =>
          l.includes('"component":"supervisor"') &&
          l.includes('"message":"log level changed"') &&
          l.includes(`"to":"${to}"`) &&
          l.includes(`"cause":"${cause}"`),
      );
  g.proc.kill('SIGUSR1');
  t.ok(await waitFor(() => changed('debug', 'SIGUSR1').length === 1, 5_000), 'the supervisor');
  const edgeLines = () =>
    g
      .output()
      .split('\n')
      .filter(
        (l) => l.includes('"component":"edge"') && l.includes('"message":"log level changed"'),
      );
  t.ok(await waitFor(() => edgeLines().length === 2, 5_000), 'both edges');
  g.proc.kill('SIGUSR1');
  t.ok(await waitFor(() => changed('info', 'SIGUSR1').length === 1, 5_000), 'and back');
  const before = JSON.parse(await readFile(join(g.configDir, 'config.json'), 'utf8')) as {
    port: number;
  };
  await writeConfig(g.configDir, before.port, { routes, config: { log: { level: 'warn' } } });
  t.ok(await waitFor(() => changed('warn', 'reload').length === 1, 10_000), 'reload');
});

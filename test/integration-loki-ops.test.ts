// Loki through the real CLI: basic auth and tenant on every push (a rotated password file
// applies at reload), the lines shipped and dropped on the metrics listener with Loki down and
// refusing, and check-config's refusals. The password never shows in any output.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runCli } from './helpers/cli.js';
import { startFakeLoki } from './helpers/fake-loki.js';
import { freePort } from './helpers/free-port.js';
import { freshGet, logged, login, startGateway, waitFor, writeConfig } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
t.teardown(() => upstream.close());
const ROUTES = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`;
const SETTLE_MS = 30_000;
const PW1 = 'first-loki-password-7f3a9c';
const PW2 = 'second-loki-password-b81e02';
const basic = (pw: string) => `Basic ${Buffer.from(`grafana:${pw}`).toString('base64')}`;

async function configDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'proxyauth-loki-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const SHIPPED = 'proxyauth_log_lines_shipped_total{sink="loki"}';
const dropped = (reason: string) =>
  `proxyauth_log_lines_dropped_total{sink="loki",reason="${reason}"}`;

t.test('basic auth and tenant on every push; a rotated password applies at reload', async (t) => {
  let accepted = basic(PW1);
  const loki = await startFakeLoki((_n, headers) => ({
    status: headers.authorization === accepted && headers['x-scope-orgid'] === 'team-a' ? 204 : 401,
  }));
  t.teardown(() => loki.close());
  const dir = await configDir(t);
  await writeFile(join(dir, 'loki.pass'), `${PW1}\n`, { mode: 0o600 });
  const metricsPort = await freePort();
  const config = {
    log: {
      type: 'loki',
      host: loki.url,
      user: 'grafana',
      password_file: 'loki.pass',
      tenant: 'team-a',
    },
    metrics: { listen: `127.0.0.1:${metricsPort}` },
  };
  const gw = await startGateway({ dir, routes: ROUTES, config });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  t.equal(await freshGet(gw.port, '/api/before', token), 200);
  const arrived = (path: string) => () => loki.lines().some((l) => l.includes(`"path":"${path}"`));
  t.ok(await waitFor(arrived('/api/before'), SETTLE_MS), 'lines arrive with the credentials');
  t.ok(
    loki.headers.every((h) => h.authorization === basic(PW1)),
    'Basic grafana:PW1',
  );
  t.ok(
    loki.headers.every((h) => h['x-scope-orgid'] === 'team-a'),
    'X-Scope-OrgID on each',
  );
  t.ok(
    await waitFor(async () => (sample(await scrape(metricsPort), SHIPPED) ?? 0) > 0, SETTLE_MS),
    'shipped lines counted',
  );
  t.equal(sample(await scrape(metricsPort), dropped('refused')), 0);

  // The password is rotated: Loki, then the file, which is watched: no SIGHUP (config.json is
  // unchanged).
  accepted = basic(PW2);
  await writeFile(join(dir, 'loki.pass'), PW2, { mode: 0o600 });
  t.ok(
    await waitFor(
      () =>
        logged(gw.output(), { message: 'configuration reloaded', reload: 'applied' }).length > 0,
      SETTLE_MS,
    ),
    'a new password file is seen, and is a change',
  );
  t.equal(await freshGet(gw.port, '/api/after', token), 200);
  t.ok(await waitFor(arrived('/api/after'), SETTLE_MS), 'delivered with the new password');
  t.equal(loki.headers.at(-1)?.authorization, basic(PW2));
  t.equal(sample(await scrape(metricsPort), dropped('refused')), 0, 'a 401 drops nothing');

  await gw.stop();
  const everything = [gw.output(), ...loki.lines()].join('\n');
  for (const secret of [PW1, PW2, basic(PW1).slice(6), basic(PW2).slice(6)]) {
    t.notOk(everything.includes(secret), 'no password, plain or encoded, in any output');
  }
});

t.test('Loki down, then refusing a batch: the counters on the metrics listener', async (t) => {
  const lokiPort = await freePort();
  const metricsPort = await freePort();
  const gw = await startGateway({
    routes: ROUTES,
    config: {
      log: { type: 'loki', host: `127.0.0.1:${lokiPort}` },
      metrics: { listen: `127.0.0.1:${metricsPort}` },
    },
  });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  for (let i = 0; i < 5; i++) t.equal(await freshGet(gw.port, `/api/down/${i}`, token), 200);
  t.ok(
    await waitFor(() => gw.output().includes('loki unreachable, buffering log lines'), SETTLE_MS),
  );
  const down = await scrape(metricsPort);
  t.equal(sample(down, SHIPPED), 0, 'nothing shipped while Loki is down');
  for (const reason of ['buffer_full', 'refused', 'stopped']) {
    t.equal(sample(down, dropped(reason)), 0, `${reason}: shown from 0 (the buffer holds them)`);
  }
  // Loki back, refusing the first batch for itself (400): dropped as refused, the rest shipped.
  const loki = await startFakeLoki((n) => ({ status: n === 0 ? 400 : 204 }), lokiPort);
  t.teardown(() => loki.close());
  let text = '';
  t.ok(
    await waitFor(
      async () => {
        text = await scrape(metricsPort);
        return (sample(text, dropped('refused')) ?? 0) > 0;
      },
      SETTLE_MS,
      200,
    ),
    'the refused batch is counted',
  );
  t.equal(await freshGet(gw.port, '/api/up', token), 200);
  t.ok(
    await waitFor(
      async () => (sample(await scrape(metricsPort), SHIPPED) ?? 0) > 0,
      SETTLE_MS,
      200,
    ),
    'later lines are shipped',
  );
  t.equal(sample(text, dropped('buffer_full')), 0);
});

t.test('check-config: credentials need https off loopback; the file is checked', async (t) => {
  const dir = await configDir(t);
  const log = { type: 'loki', user: 'grafana', password_file: 'loki.pass' };
  await writeConfig(dir, 0, {
    routes: ROUTES,
    config: { log: { ...log, host: 'http://loki.internal:3100' } },
  });
  const clear = await runCli(['check-config', '--config-dir', dir]);
  t.equal(clear.code, 1);
  t.match(
    clear.stderr,
    `${join(dir, 'config.json')}: log.host: would send the password of log.user in clear`,
  );

  await writeConfig(dir, 0, {
    routes: ROUTES,
    config: { log: { ...log, host: 'https://loki.internal' } },
  });
  const missing = await runCli(['check-config', '--config-dir', dir]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, `log.password_file: ${join(dir, 'loki.pass')}: not found`);

  await writeFile(join(dir, 'loki.pass'), PW1);
  await chmod(join(dir, 'loki.pass'), 0o640);
  const open = await runCli(['check-config', '--config-dir', dir]);
  t.equal(open.code, 0, open.stderr);
  t.match(
    open.stderr,
    /warning: .*log\.password_file: .* is open to group or others \(mode 0640\): chmod 600 it/,
  );
  t.notMatch(open.stdout + open.stderr, PW1, 'the password is never printed');
});

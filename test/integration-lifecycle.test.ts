import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { freshGet, logged, login, logLines, startGateway, waitFor } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
t.teardown(() => upstream.close());

const routes = (extra = '') =>
  `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n${extra}`;

function edgePids(output: string): number[] {
  return [...output.matchAll(/"message":"edge listening","pid":(\d+)/g)].map((m) => Number(m[1]));
}

t.test('a killed edge is replaced and the other edges keep serving', async (t) => {
  const gw = await startGateway({ routes: routes() });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  const [victim] = gw.edges;
  let killedAt = Number.POSITIVE_INFINITY;
  const results: { startedAt: number; ok: boolean }[] = [];
  const deadline = Date.now() + 3_000;
  const worker = async () => {
    while (Date.now() < deadline) {
      const startedAt = Date.now();
      const ok = await freshGet(gw.port, '/api/x', token).then(
        (s) => s === 200,
        () => false,
      );
      results.push({ startedAt, ok });
    }
  };
  const load = Promise.all(Array.from({ length: 6 }, worker));
  await new Promise((r) => setTimeout(r, 1_000));
  process.kill(victim!, 'SIGKILL');
  killedAt = Date.now();
  await load;
  const after = results.filter((r) => r.startedAt > killedAt + 250);
  const failedAfter = after.filter((r) => !r.ok).length;
  const failedAround = results.filter((r) => !r.ok).length;
  t.comment(
    `${results.length} requests, ${failedAround} failed (those in flight on the killed edge)`,
  );
  t.ok(after.length > 20, 'traffic went on after the kill');
  t.equal(failedAfter, 0, 'no request started after the kill failed');
  t.ok(failedAround <= 6, 'at most the requests in flight at the kill failed');
  t.ok(
    await waitFor(() => edgePids(gw.output()).length === 3, 15_000),
    'a replacement edge is listening',
  );
  t.match(gw.output(), /edge exited unexpectedly, replacing it/);
  t.equal(await freshGet(gw.port, '/api/x', token), 200);
});

t.test('reload: a valid change applies without dropping requests in flight', async (t) => {
  const gw = await startGateway({ routes: routes() });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  t.equal(await freshGet(gw.port, '/new/x', token), 404);
  const inFlight = freshGet(gw.port, '/api/slow/1500', token);
  await new Promise((r) => setTimeout(r, 200));
  await writeFile(
    join(gw.configDir, 'routes.yml'),
    routes(`  - prefix: /new\n    target: ${upstream.origin}\n`),
  );
  t.ok(
    await waitFor(async () => (await freshGet(gw.port, '/new/x', token)) === 200, 15_000),
    'the new route answers',
  );
  t.equal(await inFlight, 200, 'the request in flight during the reload completed');
  t.equal(logged(gw.output(), { message: 'configuration reloaded', reload: 'applied' }).length, 1);
  gw.proc.kill('SIGHUP');
  t.ok(
    await waitFor(
      () =>
        logLines(gw.output()).some(
          (l) => l.reload === 'unchanged' && String(l.trigger).includes('SIGHUP'),
        ),
      15_000,
    ),
    'a reload that finds nothing new is logged too',
  );
  t.equal(
    await freshGet(gw.port, '/api/x', token),
    200,
    'tokens issued before the reload stay valid',
  );
});

t.test('reload: an invalid change is logged and the old config keeps serving', async (t) => {
  const gw = await startGateway({ routes: routes() });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  await writeFile(
    join(gw.configDir, 'routes.yml'),
    `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n    filters:\n      allow:\n        - field: path\n          pattern: "(unclosed"\n`,
  );
  t.ok(
    await waitFor(
      () => gw.output().includes('invalid configuration, keeping the running one'),
      15_000,
    ),
    'the error is logged',
  );
  t.match(gw.output(), /routes\[0\]\.filters\.allow\[0\]\.pattern/);
  t.match(gw.output(), /routes\.yml/);
  t.equal(await freshGet(gw.port, '/api/x', token), 200, 'the old routes still answer');
  t.equal(gw.proc.exitCode, null, 'the gateway is still running');
});

t.test('SIGTERM drains requests in flight, then exits 0', async (t) => {
  const gw = await startGateway({ routes: routes() });
  const token = await login(gw.url);
  const inFlight = freshGet(gw.port, '/api/slow/1500', token);
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  gw.proc.kill('SIGTERM');
  t.equal(await inFlight, 200, 'the slow request completed');
  const code = await gw.exited;
  t.equal(code, 0);
  t.ok(Date.now() - started >= 1_000, 'the exit waited for the request');
  t.rejects(freshGet(gw.port, '/api/x', token), 'nothing listens afterwards');
  await gw.stop();
});

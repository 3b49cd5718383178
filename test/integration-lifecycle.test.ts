import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  freshGet,
  logged,
  login,
  logLines,
  type RunningGateway,
  startGateway,
  waitFor,
} from './helpers/gateway.js';
import { edgePids, hasExited } from './helpers/process-tree.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
t.teardown(() => upstream.close());

const routes = (extra = '') =>
  `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n${extra}`;

/** How long anything may take on a busy machine before a test gives up. */
const SETTLE_MS = 30_000;

function listeningLines(output: string): number {
  return (output.match(/"message":"edge listening"/g) ?? []).length;
}

/** One of the gateway's edges, read from /proc (never undefined: throws when there is none). */
async function someEdge(gw: RunningGateway): Promise<number> {
  const [pid] = await edgePids(gw.proc.pid ?? -1);
  if (pid === undefined) throw new Error('the gateway has no edge process');
  return pid;
}

t.test('a killed edge is replaced and the other edges keep serving', async (t) => {
  const gw = await startGateway({ routes: routes() });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  const victim = await someEdge(gw);
  const results: { startedAt: number; ok: boolean }[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const startedAt = Date.now();
      const ok = await freshGet(gw.port, '/api/x', token).then(
        (s) => s === 200,
        () => false,
      );
      results.push({ startedAt, ok });
    }
  };
  const load = Promise.all(Array.from({ length: 6 }, worker));
  // Counts, not durations: traffic flows before the kill, and enough of it after.
  await waitFor(() => results.length >= 30, SETTLE_MS);
  process.kill(victim, 'SIGKILL');
  // When the victim is really gone (its listening socket closed), not a guess after the kill:
  // on a busy machine dying takes a while, and until then the kernel still hands it
  // connections, which are reset.
  await waitFor(() => hasExited(victim), SETTLE_MS, 5);
  const goneAt = Date.now();
  const after = () => results.filter((r) => r.startedAt > goneAt);
  await waitFor(() => after().length >= 30, SETTLE_MS);
  running = false;
  await load;
  const failures = results.filter((r) => !r.ok);
  t.comment(`${results.length} requests, ${failures.length} failed around the kill`);
  t.ok(after().length >= 30, `traffic went on after the kill (${after().length} requests)`);
  t.same(
    failures.filter((r) => r.startedAt > goneAt),
    [],
    'no request started after the edge was gone failed',
  );
  t.ok(
    await waitFor(() => listeningLines(gw.output()) === 3, SETTLE_MS),
    'a replacement edge is listening',
  );
  const edges = await edgePids(gw.proc.pid ?? -1);
  t.equal(edges.length, 2, 'two edges again');
  t.notOk(edges.includes(victim), 'the killed one is not among them');
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
    await waitFor(async () => (await freshGet(gw.port, '/new/x', token)) === 200, SETTLE_MS),
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
      SETTLE_MS,
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
      SETTLE_MS,
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
  await t.rejects(freshGet(gw.port, '/api/x', token), 'nothing listens afterwards');
  await gw.stop();
});

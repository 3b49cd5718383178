import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from './helpers/free-port.js';
import {
  login,
  type RunningGateway,
  startGateway,
  waitFor,
  writeConfig,
} from './helpers/gateway.js';
import { edgePids, hasExited } from './helpers/process-tree.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
t.teardown(() => upstream.close());

/**
 * How long to wait for what takes well under a second on an idle machine (an edge replaced, a
 * reload applied, a roll done). It only keeps a broken test from hanging: other test runs on
 * the same cores can stretch these steps to several seconds, and passing must not depend on it.
 */
const SETTLE_MS = 30_000;

const routes = (extra = '') =>
  `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n${extra}`;

/** One GET on a fresh connection (no keep-alive), so each request is a new accept. */
function freshGet(port: number, path: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

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
  t.match(gw.output(), /configuration reloaded/);
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

t.test('SIGHUP reloads; a port change rolls the edges to the new port', async (t) => {
  const gw = await startGateway({ routes: routes() });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  const newPort = await freePort();
  // Written while the watcher is off would be racy: SIGHUP must work on its own too.
  await writeConfig(gw.configDir, newPort, { routes: routes() });
  gw.proc.kill('SIGHUP');
  t.ok(
    await waitFor(
      async () => (await freshGet(newPort, '/api/x', token).catch(() => 0)) === 200,
      SETTLE_MS,
    ),
    'serving on the new port',
  );
  t.ok(
    await waitFor(
      async () => (await freshGet(gw.port, '/api/x', token).catch(() => 0)) === 0,
      SETTLE_MS,
    ),
    'the old port is closed',
  );
});

t.test('an edge replaced during a reload never serves the old config', async (t) => {
  const gw = await startGateway({
    routes: routes(`  - prefix: /old\n    target: ${upstream.origin}\n`),
  });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  t.equal(await freshGet(gw.port, '/old/x', token), 200);
  const victim = await someEdge(gw);
  await writeFile(join(gw.configDir, 'routes.yml'), routes());
  // The replacement starts on one generation while the reload sends it the next one.
  process.kill(victim, 'SIGKILL');
  // SIGHUP lands while the replacement (spawned after 100 ms of backoff) is still starting.
  await waitFor(() => gw.output().includes('edge exited unexpectedly'), SETTLE_MS);
  await new Promise((r) => setTimeout(r, 200));
  gw.proc.kill('SIGHUP');
  t.ok(await waitFor(() => gw.output().includes('configuration reloaded'), SETTLE_MS), 'reloaded');
  const listening = () => listeningLines(gw.output());
  t.ok(await waitFor(() => listening() === 3, SETTLE_MS), 'a replacement edge is listening');
  await new Promise((r) => setTimeout(r, 1_000));
  t.equal(listening(), 3, 'the replacement started exactly one server');
  const statuses = await Promise.all(
    Array.from({ length: 40 }, () => freshGet(gw.port, '/old/x', token)),
  );
  t.same([...new Set(statuses)], [404], 'the removed route is gone on every connection');
});

t.test('a roll under keep-alive traffic loses no request', async (t) => {
  const gw = await startGateway({ routes: routes() });
  t.teardown(() => gw.stop());
  const token = await login(gw.url);
  const { Agent, request: undiciRequest } = await import('undici');
  const agent = new Agent({ connections: 2 });
  t.teardown(() => agent.close());
  const counts = new Map<string, number>();
  let running = true;
  const loop = async () => {
    while (running) {
      const outcome = await undiciRequest(`${gw.url}/api/x`, {
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}` },
      }).then(
        async (r) => {
          await r.body.dump();
          return String(r.statusCode);
        },
        (err: Error & { code?: string }) => err.code ?? err.message,
      );
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    }
  };
  const loops = Promise.all([loop(), loop()]);
  await new Promise((r) => setTimeout(r, 500));
  await writeConfig(gw.configDir, gw.port, { routes: routes(), config: { num_instances: 1 } });
  t.ok(
    await waitFor(
      () => (gw.output().match(/"message":"edge stopped"/g) ?? []).length === 2,
      SETTLE_MS,
    ),
    'the old edges drained',
  );
  await new Promise((r) => setTimeout(r, 500));
  running = false;
  await loops;
  t.comment(JSON.stringify(Object.fromEntries(counts)));
  // Clients here only open connections after a `connection: close`, i.e. after the old edges
  // closed their listening sockets, so no connection can be caught in their accept queues.
  t.same([...counts.keys()], ['200'], 'only 200 answers: no 502, no reset');
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

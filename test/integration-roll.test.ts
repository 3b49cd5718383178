// Rolls: the fleet replaced by new edges (new address or process settings) while serving.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from './helpers/free-port.js';
import { freshGet, login, startGateway, waitFor, writeConfig } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
t.teardown(() => upstream.close());

const routes = (extra = '') =>
  `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n${extra}`;

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
      20_000,
    ),
    'serving on the new port',
  );
  t.ok(
    await waitFor(
      async () => (await freshGet(gw.port, '/api/x', token).catch(() => 0)) === 0,
      20_000,
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
  const [victim] = gw.edges;
  await writeFile(join(gw.configDir, 'routes.yml'), routes());
  // The replacement starts on one generation while the reload sends it the next one.
  process.kill(victim!, 'SIGKILL');
  // SIGHUP lands while the replacement (spawned after 100 ms of backoff) is still starting.
  await waitFor(() => gw.output().includes('edge exited unexpectedly'), 10_000);
  await new Promise((r) => setTimeout(r, 200));
  gw.proc.kill('SIGHUP');
  t.ok(await waitFor(() => gw.output().includes('configuration reloaded'), 20_000), 'reloaded');
  const listening = () => (gw.output().match(/"message":"edge listening"/g) ?? []).length;
  t.ok(await waitFor(() => listening() === 3, 20_000), 'a replacement edge is listening');
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
  // Still port 0: the roll keeps the port picked at start.
  await writeConfig(gw.configDir, 0, { routes: routes(), config: { num_instances: 1 } });
  t.ok(
    await waitFor(
      () => (gw.output().match(/"message":"edge stopped"/g) ?? []).length === 2,
      30_000,
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

// health_on_main_port through the real CLI: the edges answer /healthz and /readyz on the main
// port with the supervisor's verdict (an edge down: 503 until its replacement serves), a reload
// turns them off, and check-config refuses a route they would take.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { startGateway, waitFor, writeConfig } from './helpers/gateway.js';
import { edgePids, hasExited } from './helpers/process-tree.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
t.teardown(() => upstream.close());
const ROUTES = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`;
const SETTLE_MS = 30_000;

async function get(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/**
 * As get, while an edge is being killed: a connection the kernel hands to the dying edge's
 * socket is reset (status 0), which says nothing of the node's readiness.
 */
async function poll(url: string): Promise<{ status: number; body: unknown }> {
  try {
    return await get(url);
  } catch {
    return { status: 0, body: undefined };
  }
}

t.test("on: both paths answer on the main port, readiness is the node's", async (t) => {
  const gw = await startGateway({ routes: ROUTES, config: { health_on_main_port: true } });
  t.teardown(() => gw.stop());
  t.same(await get(`${gw.url}/healthz`), { status: 200, body: { status: 'ok' } });
  t.same(await get(`${gw.url}/readyz`), { status: 200, body: { status: 'ok' } });

  // One edge killed: the one left asks the supervisor, which counts 1 of 2 edges: not ready.
  const [victim] = await edgePids(gw.proc.pid ?? -1);
  process.kill(victim!, 'SIGKILL');
  let notReady: { status: number; body: unknown } | undefined;
  await waitFor(
    async () => {
      const res = await poll(`${gw.url}/readyz`);
      if (res.status === 503) notReady = res;
      return notReady !== undefined;
    },
    SETTLE_MS,
    5,
  );
  t.match(notReady, { status: 503, body: { code: 503, error: 'NOT_READY' } });
  t.same(Object.keys(notReady?.body as object).sort(), ['code', 'error', 'message'], 'no detail');
  t.ok(await waitFor(() => hasExited(victim!), SETTLE_MS));
  t.ok(
    await waitFor(async () => (await poll(`${gw.url}/readyz`)).status === 200, SETTLE_MS, 50),
    'ready again once the replacement serves',
  );
  t.notMatch(
    gw.output(),
    /"message":"request failed"[^\n]*NOT_READY/,
    'probes are not logged as failures',
  );

  // A reload that turns the option off: the paths are the routes' again (none here: 404).
  await writeConfig(gw.configDir, 0, { routes: ROUTES });
  gw.proc.kill('SIGHUP');
  t.ok(
    await waitFor(async () => (await get(`${gw.url}/healthz`)).status === 404, SETTLE_MS, 50),
    'a reload applies it',
  );
  t.match(await get(`${gw.url}/readyz`), { status: 404, body: { error: 'NO_ROUTE' } });
});

t.test('off by default: the main port has no health endpoint', async (t) => {
  const gw = await startGateway({ routes: ROUTES });
  t.teardown(() => gw.stop());
  t.match(await get(`${gw.url}/healthz`), { status: 404, body: { error: 'NO_ROUTE' } });
});

t.test('check-config and run refuse a route named after a health path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'proxyauth-health-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const routes = `${ROUTES}  - prefix: /readyz\n    target: ${upstream.origin}\n`;
  await writeConfig(dir, 0, { routes, config: { health_on_main_port: true } });
  const refused = await runCli(['check-config', '--config-dir', dir]);
  t.equal(refused.code, 1);
  t.match(
    refused.stderr,
    `${join(dir, 'routes.yml')}: routes[1].prefix: /readyz is answered by the gateway while health_on_main_port is true`,
  );
  await t.rejects(
    startGateway({ routes, config: { health_on_main_port: true } }),
    /routes\[1\]\.prefix/,
    'run refuses it with the same words',
  );
  await writeConfig(dir, 0, {
    routes: `routes:\n  - prefix: /\n    target: ${upstream.origin}\n`,
    config: { health_on_main_port: true },
  });
  const warned = await runCli(['check-config', '--config-dir', dir]);
  t.equal(warned.code, 0, warned.stderr);
  t.match(
    warned.stderr,
    /warning: .*routes\[0\]\.prefix: \/ does not receive \/healthz and \/readyz/,
  );
});

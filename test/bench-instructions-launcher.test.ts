// What `--instructions` builds on, without valgrind (which would take minutes): a gateway
// started under a launcher (`GatewayFeatures.launcher`, here env(1) setting a variable), its one
// edge found among the supervisor's children, and the fixed-count client: exactly N answers, each
// checked, a wrong one refused.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { findEdgePid } from '../bench/callgrind.js';
import { CleanupStack } from '../bench/cleanup-stack.js';
import { FixedLoad } from '../bench/fixed-load.js';
import { startGateway } from '../bench/gateway.js';
import { gatewayCliPath, packageRoot } from '../bench/paths.js';
import { SCENARIOS } from '../bench/scenarios.js';
import { targetFor } from '../bench/service.js';
import type { UpstreamMessage } from '../bench/upstream-message.js';

const dist = join(packageRoot(), 'dist', 'bench');
const MARK = 'PROXYAUTH_BENCH_LAUNCHED=yes';

/** The bench's own upstream (dist/bench/upstream-server.js), on a free port. */
async function startBenchUpstream(t: Test): Promise<number> {
  const child = spawn(process.execPath, [join(dist, 'upstream-server.js')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  t.teardown(() => {
    child.kill();
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m: UpstreamMessage) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`upstream exited ${code}`)));
  });
}

function environ(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

t.test('a gateway under a launcher, its edge, a fixed number of checked requests', async (t) => {
  t.ok(existsSync(gatewayCliPath()), 'the gateway is built (npm run build)');
  const upstreamPort = await startBenchUpstream(t);
  const cleanup = new CleanupStack();
  t.teardown(() => cleanup.run());
  const gateway = await startGateway(
    'gateway',
    gatewayCliPath(),
    join(t.testdir({}), 'gateway'),
    upstreamPort,
    1,
    cleanup,
    { launcher: ['env', MARK], readyTimeoutMs: 60_000 },
  );
  const root = gateway.pid as number;
  t.ok(environ(root).includes(MARK), 'the supervisor runs under the launcher');
  const edge = findEdgePid(root);
  t.not(edge, root);
  t.ok(environ(edge).includes(MARK), 'its edge inherits what the launcher set');

  const scenario = SCENARIOS.find((s) => s.name === 'gateway-auth-proxy');
  if (scenario === undefined) throw new Error('no gateway-auth-proxy scenario');
  const target = targetFor(scenario, gateway);
  const before = accessLines(gateway.logPath as string);
  const load = new FixedLoad(target, scenario.expect, 4);
  await load.send(37);
  await load.send(3);
  await load.close();
  await waitFor(() => accessLines(gateway.logPath as string) - before >= 40);
  t.equal(accessLines(gateway.logPath as string) - before, 40, 'exactly 37 + 3 requests');

  const wrong = new FixedLoad(target, { ...scenario.expect, body: 'not this' }, 2);
  await t.rejects(wrong.send(5), { code: 'BENCH_WRONG_ANSWER', message: /expected body/ });
  await wrong.close();

  const exit = await gateway.stop?.();
  t.equal(exit?.code, 0, 'a clean stop');
  t.throws(() => findEdgePid(root), { code: 'BENCH_CALLGRIND', message: /found 0/ });
});

/** Access-log lines of proxied `/api/hello` requests in the gateway's log. */
function accessLines(path: string): number {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"type":"access"') && l.includes('/api/hello')).length;
}

async function waitFor(done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) await new Promise((r) => setTimeout(r, 100));
}

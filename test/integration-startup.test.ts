import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runCli, spawnCli } from './helpers/cli.js';
import {
  freshGet,
  logged,
  login,
  type RunningGateway,
  startGateway,
  waitFor,
  writeConfig,
} from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const routes = `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`;
const gw: RunningGateway = await startGateway({ routes });
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

/** A second gateway on `port` (and `host`), expected to refuse to start. */
async function secondGateway(t: Test, port: number, host = '127.0.0.1') {
  const dir = t.testdir({});
  await writeConfig(dir, port, { routes, config: { host } });
  const child = spawnCli(['--config-dir', dir, '--data-dir', join(dir, 'data')], {
    readyFd: true,
  });
  t.teardown(() => child.stop(2_000));
  const readiness = await child.ready();
  const { code } = await child.exited;
  return { readiness, code, stderr: child.stderr(), stdout: child.stdout() };
}

function listenPlain(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.end());
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
}

function portOf(server: Server): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** The distinct statuses of `count` fresh connections to the first gateway. */
async function allServed(count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push(await freshGet(gw.port, '/api/x'));
  return [...new Set(statuses)];
}

t.test('the readiness line names the port picked for port 0 and the live edges', async (t) => {
  t.not(gw.port, 0);
  t.equal(gw.edges.length, 2, 'num_instances edges');
  for (const pid of gw.edges) t.doesNotThrow(() => process.kill(pid, 0), `edge ${pid} is alive`);
  const started = logged(gw.output(), { message: 'gateway started' })[0];
  t.equal(started?.port, gw.port, 'the same port as in the log');
  t.equal(started?.pids, gw.edges.join(','));
  const token = await login(gw.url);
  t.ok(token.length > 20, 'the gateway answers on that port');
});

t.test('a second gateway on the same port exits 1; the first keeps every request', async (t) => {
  const second = await secondGateway(t, gw.port);
  t.match(second.readiness, {
    ready: false,
    code: 'PORT_IN_USE',
    error: `127.0.0.1:${gw.port} is already in use`,
  });
  t.equal(second.code, 1, 'exit code 1');
  t.match(second.stderr, `127.0.0.1:${gw.port} is already in use`);
  t.match(second.stderr, /Stop it, or set another "port"/, 'says what to do');
  t.notMatch(second.stdout, /edge listening/, 'no edge of the second gateway ever listened');
  t.same(await allServed(20), [401], 'every request answered by the first gateway');
});

t.test('a second gateway on 0.0.0.0 overlapping 127.0.0.1 is refused too', async (t) => {
  const second = await secondGateway(t, gw.port, '0.0.0.0');
  t.match(second.readiness, { ready: false, code: 'PORT_IN_USE', error: `0.0.0.0:${gw.port}` });
  t.equal(second.code, 1);
});

t.test('a port held by a plain listener is refused at start', async (t) => {
  const blocker = await listenPlain('127.0.0.1');
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const second = await secondGateway(t, portOf(blocker));
  t.match(second.readiness, { ready: false, code: 'PORT_IN_USE' });
  t.equal(second.code, 1);
  t.match(second.stderr, `127.0.0.1:${portOf(blocker)} is already in use`);
});

t.test('a reload onto a taken port keeps the running config and logs why', async (t) => {
  const blocker = await listenPlain('127.0.0.1');
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  await writeConfig(gw.configDir, portOf(blocker), { routes });
  gw.proc.kill('SIGHUP');
  t.ok(
    await waitFor(
      () => logged(gw.output(), { reload: 'failed', code: 'PORT_IN_USE' }).length > 0,
      10_000,
    ),
    'the failure is logged with its code',
  );
  t.same(await allServed(5), [401], 'still serving on the old port');
  t.equal(gw.proc.exitCode, null, 'still running');
  // Back to the running settings for the next test: a no-op reload.
  await writeConfig(gw.configDir, 0, { routes });
});

t.test('an invalid config reports not-ready at once; --ready-fd is checked', async (t) => {
  const dir = t.testdir({ 'config.json': '{"secret": "short"}', 'routes.yml': 'routes: []\n' });
  const child = spawnCli(['--config-dir', dir, '--data-dir', join(dir, 'data')], {
    readyFd: true,
  });
  t.teardown(() => child.stop(2_000));
  t.match(await child.ready(), { ready: false, code: 'CONFIG_INVALID', error: /secret/ });
  t.equal((await child.exited).code, 1);
  const usage = await runCli(['--config-dir', dir, '--ready-fd', '1']);
  t.equal(usage.code, 2, 'fds 0-2 are refused');
  t.match(usage.stderr, /--ready-fd/);
});

t.test('an empty routes.yml is no routes, at start and on reload', async (t) => {
  for (const empty of ['', '\n  \n', '# nothing yet\n']) {
    const local = await startGateway({ routes: empty });
    t.teardown(() => local.stop());
    const res = await fetch(`${local.url}/anything`);
    t.equal(res.status, 404, `${JSON.stringify(empty)}: started, nothing routed`);
  }
  // Truncating routes.yml cuts every route (it must not fail and keep the old ones).
  const local = await startGateway({ routes });
  t.teardown(() => local.stop());
  const token = await login(local.url);
  t.equal(await freshGet(local.port, '/api/x', token), 200);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(local.configDir, 'routes.yml'), '');
  t.ok(
    await waitFor(async () => (await freshGet(local.port, '/api/x', token)) === 404, 20_000),
    'the route is gone',
  );
});

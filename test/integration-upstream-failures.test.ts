// Regressions found by review of issue 8 (each failed before its fix): upstream features, real CLI.
import { createServer as createTcpServer } from 'node:net';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort } from './helpers/free-port.js';
import { logged, login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { startTinyproxy } from './helpers/tinyproxy.js';
import { startUpstream } from './helpers/upstream.js';

const seen: Record<string, string | string[] | undefined>[] = [];
const upstream = await startUpstream((req) => {
  seen.push(req.headers);
  return false;
});
// A proxy with no BasicAuth of its own: it relays what it does not consume.
const proxy = await startTinyproxy(t.testdir({}));
// Accepts connections and resets each one as soon as the request arrives.
const resetter = createTcpServer((s) => s.on('data', () => s.resetAndDestroy()));
await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
const resetPort = (resetter.address() as { port: number }).port;
const deadPort = await freePort();
// Closes every connection at once: a WebSocket backend that cannot be reached. (A free port
// would do, but under parallel tests another test may bind it meanwhile.)
const closer = createTcpServer((s) => s.destroy());
await new Promise<void>((r) => closer.listen(0, '127.0.0.1', r));
const closerPort = (closer.address() as { port: number }).port;
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
await new Promise<void>((r) => wss.once('listening', () => r()));
const wsPort = (wss.address() as { port: number }).port;

const gw: RunningGateway = await startGateway({
  config: { num_instances: 1 },
  routes: `routes:
  - prefix: /px
    target: ${upstream.origin}
    proxy: true
    proxy_config: "http://gwuser:s3cret@127.0.0.1:${proxy.port}"
  - prefix: /rst
    target: http://127.0.0.1:${resetPort}
    backends: [${upstream.origin}]
  - prefix: /down
    target: http://127.0.0.1:${deadPort}
    backends: ["http://127.0.0.1:${deadPort}/other"]
  - prefix: /wsb
    target: http://127.0.0.1:${closerPort}
    backends: ["http://127.0.0.1:${wsPort}"]
`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
  await proxy.stop();
  resetter.close();
  closer.close();
  wss.close();
});
const token = await login(gw.url);
const auth = { authorization: `Bearer ${token}` };

t.test('proxy credentials never reach the upstream, whatever the proxy does', async (t) => {
  const res = await fetch(`${gw.url}/px/x`, { headers: auth });
  await res.text();
  t.equal(res.status, 200);
  // README: "Proxy credentials go to the proxy only". Measured: Basic Z3d1c2VyOnMzY3JldA==.
  t.equal(seen.at(-1)?.['proxy-authorization'], undefined, 'the upstream got the proxy password');
});

t.test('POSTs to a backend that accepts then resets: it is taken out eventually', async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) {
    const res = await fetch(`${gw.url}/rst/x`, { method: 'POST', body: 'x', headers: auth });
    await res.text();
    statuses.push(res.status);
  }
  const failed = statuses.filter((s) => s === 502).length;
  // Before the fix: 20 of 40 were 502 and no "backend down" was ever logged. The bound: health
  // is per edge, 3 failures in a row take the backend out on an edge (2 edges: 6 at most, if the
  // connection lands on both), and each end of a cool-down (1 s, then 2 s) lets one probe fail
  // on a slow, loaded run. Seen failing at 4 with the old bound of 3 under load.
  t.ok(failed <= 8, `${failed} of 40 POSTs failed`);
});

t.test('WebSocket handshakes on a balanced route fail over like requests do', async (t) => {
  let opened = 0;
  for (let i = 0; i < 10; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = new WebSocket(`${gw.url.replace('http', 'ws')}/wsb/x`, { headers: auth });
      c.on('open', () => {
        c.close();
        resolve(true);
      });
      c.on('unexpected-response', () => resolve(false));
      c.on('error', () => resolve(false));
    });
    if (ok) opened++;
  }
  // Measured: 5 of 10 get 502 UPSTREAM_UNREACHABLE, forever (no failover, no passive health).
  t.equal(opened, 10);
});

t.test('all down: not one warning per refused request', async (t) => {
  for (let i = 0; i < 10; i++)
    await fetch(`${gw.url}/down/x`, { headers: auth }).then((r) => r.text());
  const lines = logged(gw.output(), { message: 'request failed', code: 'NO_HEALTHY_UPSTREAM' });
  // README: "never a line per request while it is known down". Measured: one per 503.
  t.ok(lines.length <= 1, `${lines.length} "request failed" warnings for NO_HEALTHY_UPSTREAM`);
});

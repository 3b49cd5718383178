// WebSocket proxying to `https` targets: the gateway connects with wss:// and verifies the
// backend's certificate (a backend whose certificate it does not trust gets no connection).
// The route's connection profile applies as to HTTP: `ca`, `tls_verify: false`, and a forward
// proxy (a CONNECT tunnel, for wss:// and ws:// alike).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { login, startGateway, waitFor } from './helpers/gateway.js';
import { startTinyproxy } from './helpers/tinyproxy.js';

const dir = await mkdtemp(join(tmpdir(), 'proxyauth-wss-'));

/** A self-signed certificate for IP 127.0.0.1 (subjectAltName), made by the openssl CLI. */
async function pair(name: string): Promise<{ cert: string; key: string; certFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${name}.test`,
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8'), certFile };
}

/** A wss echo backend (ws without `p`); `seen` counts the handshakes that reached it. */
async function wssBackend(p?: { cert: string; key: string }) {
  const server = p ? createServer({ cert: p.cert, key: p.key }) : createHttpServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const seen: { user: string | undefined }[] = [];
  wss.on('connection', (socket, req) => {
    const user = req.headers['x-user'];
    seen.push({ user: typeof user === 'string' ? user : undefined });
    socket.on('message', (data, binary) => socket.send(data, { binary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `${p ? 'https' : 'http'}://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const trusted = await pair('trusted');
const untrusted = await pair('untrusted');
const good = await wssBackend(trusted);
const bad = await wssBackend(untrusted);
const plain = await wssBackend();
const proxy = await startTinyproxy(dir);
// Read by the gateway's processes at start: the only CA they trust besides the system's.
process.env.NODE_EXTRA_CA_CERTS = trusted.certFile;
const gw = await startGateway({
  routes: `routes:
  - prefix: /good
    target: ${good.origin}
  - prefix: /bad
    target: ${bad.origin}
  - prefix: /own-ca
    target: ${bad.origin}
    ca: ${untrusted.certFile}
  - prefix: /no-verify
    target: ${bad.origin}
    tls_verify: false
  - prefix: /proxied-wss
    target: ${good.origin}
    proxy: true
    proxy_config: http://127.0.0.1:${proxy.port}
  - prefix: /proxied-ws
    target: ${plain.origin}
    proxy: true
    proxy_config: http://127.0.0.1:${proxy.port}
`,
  config: { num_instances: 1 },
});
delete process.env.NODE_EXTRA_CA_CERTS;
const token = await login(gw.url);
t.teardown(async () => {
  await gw.stop();
  await good.close();
  await bad.close();
  await plain.close();
  await proxy.stop();
  await rm(dir, { recursive: true, force: true });
});

function open(path: string): Promise<WebSocket | number> {
  const socket = new WebSocket(`${gw.url.replace('http:', 'ws:')}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return new Promise((resolve, reject) => {
    socket.on('open', () => resolve(socket));
    socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    socket.on('error', reject);
  });
}

t.test('an https target is reached with wss://, its certificate verified', async (t) => {
  const socket = await open('/good/echo');
  if (typeof socket === 'number') throw new Error(`refused ${socket}`);
  const got: string[] = [];
  socket.on('message', (d) => got.push(d.toString()));
  socket.send('over tls');
  t.ok(await waitFor(() => got.length === 1, 5_000), 'echoed');
  t.same(got, ['over tls']);
  t.same(good.seen, [{ user: 'alice' }], 'the backend saw the identity');
  socket.close(1000);
  t.equal(await open('/bad/echo'), 502, 'an untrusted certificate: 502');
  t.equal(bad.seen.length, 0, 'no WebSocket was opened with it');
});

async function echoes(t: Test, path: string): Promise<void> {
  const socket = await open(path);
  if (typeof socket === 'number') throw new Error(`${path}: refused ${socket}`);
  const got: string[] = [];
  socket.on('message', (d) => got.push(d.toString()));
  socket.send(`via ${path}`);
  t.ok(await waitFor(() => got.length === 1, 5_000), `${path}: echoed`);
  t.same(got, [`via ${path}`]);
  socket.close(1000);
}

t.test("the route's ca and tls_verify apply to its WebSocket connections", async (t) => {
  const before = bad.seen.length;
  await echoes(t, '/own-ca/echo');
  await echoes(t, '/no-verify/echo');
  t.equal(bad.seen.length, before + 2, 'both reached the backend the default roots refuse');
});

t.test("the route's forward proxy carries its WebSocket connections", async (t) => {
  const goodBefore = good.seen.length;
  await echoes(t, '/proxied-wss/echo');
  t.equal(good.seen.length, goodBefore + 1);
  t.match(proxy.log(), new RegExp(`CONNECT[^\\n]*127\\.0\\.0\\.1:${new URL(good.origin).port}`));
  await echoes(t, '/proxied-ws/echo');
  t.equal(plain.seen.length, 1, 'the ws:// backend got one handshake');
  t.match(proxy.log(), new RegExp(`CONNECT[^\\n]*127\\.0\\.0\\.1:${new URL(plain.origin).port}`));
});

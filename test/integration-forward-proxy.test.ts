import { readFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import t, { type Test } from 'tap';
import { makeCertAuthority } from './helpers/cert-authority.js';
import { freePort } from './helpers/free-port.js';
import {
  logged,
  login,
  logLines,
  type RunningGateway,
  startGateway,
  waitFor,
} from './helpers/gateway.js';
import { startTinyproxy } from './helpers/tinyproxy.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

// Forward proxy (routes.yml proxy/proxy_config), upstream certificate verification (ca,
// tls_verify) and client certificates (cert), on the real CLI against a real tinyproxy and an
// HTTPS upstream that requires a client certificate signed by a CA made here with openssl.

const dir = t.testdir({});
const pki = await makeCertAuthority(dir);
const PROXY_USER = 'gw';
const PROXY_PASSWORD = 'pr0xy-Secret-x9';
const open = await startTinyproxy(dir);
const guarded = await startTinyproxy(dir, {
  basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD },
});
const plain = await startUpstream();
const deadPort = await freePort();

/** An HTTPS upstream that requires a client certificate from the test CA; answers its CN. */
const mtls: Server = createHttpsServer(
  { ...pki.server, ca: readFileSync(pki.caFile), requestCert: true, rejectUnauthorized: true },
  (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ cn: peer.subject?.CN, url: req.url, headers: req.headers }));
  },
);
await new Promise<void>((resolve) => mtls.listen(0, '127.0.0.1', resolve));
const mtlsOrigin = `https://127.0.0.1:${(mtls.address() as AddressInfo).port}`;
const mtlsAuthority = `127.0.0.1:${(mtls.address() as AddressInfo).port}`;

const p12 = `cert: {file: ${pki.clientP12File}, password: "${pki.clientP12Password}"}`;
const pem = `cert: {file: ${pki.clientCertFile}, key: ${pki.clientKeyFile}}`;
const openProxy = `http://127.0.0.1:${open.port}`;
const creds = `${PROXY_USER}:${encodeURIComponent(PROXY_PASSWORD)}`;
const guardedProxy = `http://${creds}@127.0.0.1:${guarded.port}`;
const wrongProxy = `http://${PROXY_USER}:wrong@127.0.0.1:${guarded.port}`;

const gw: RunningGateway = await startGateway({
  config: { client_timeout: 3000 },
  routes: `routes:
  - prefix: /direct
    target: ${plain.origin}/up
  - prefix: /via-http
    target: ${plain.origin}/up
    proxy: true
    proxy_config: "${openProxy}"
  - prefix: /via-https
    target: ${mtlsOrigin}/secure
    proxy: true
    proxy_config: {host: "127.0.0.1:${open.port}"}
    ca: ${pki.caFile}
    ${p12}
  - prefix: /auth-http
    target: ${plain.origin}/up
    proxy: true
    proxy_config: "${guardedProxy}"
  - prefix: /auth-https
    target: ${mtlsOrigin}/secure
    proxy: true
    proxy_config: "${guardedProxy}"
    ca: ${pki.caFile}
    ${pem}
  - prefix: /wrong-https
    target: ${mtlsOrigin}/secure
    proxy: true
    proxy_config: "${wrongProxy}"
    ca: ${pki.caFile}
    ${p12}
  - prefix: /nocreds-http
    target: ${plain.origin}/up
    proxy: true
    proxy_config: "http://127.0.0.1:${guarded.port}"
  - prefix: /dead-proxy-http
    target: ${plain.origin}/up
    proxy: true
    proxy_config: "http://127.0.0.1:${deadPort}"
  - prefix: /dead-proxy-https
    target: ${mtlsOrigin}/secure
    proxy: true
    proxy_config: "http://127.0.0.1:${deadPort}"
    ca: ${pki.caFile}
    ${p12}
  - prefix: /mtls-p12
    target: ${mtlsOrigin}/secure
    ca: ${pki.caFile}
    ${p12}
  - prefix: /mtls-pem
    target: ${mtlsOrigin}/secure
    ca: ${pki.caFile}
    ${pem}
  - prefix: /mtls-none
    target: ${mtlsOrigin}/secure
    ca: ${pki.caFile}
  - prefix: /untrusted
    target: ${mtlsOrigin}/secure
    ${p12}
  - prefix: /noverify
    target: ${mtlsOrigin}/secure
    tls_verify: false
    ${p12}
  - prefix: /unused-proxy
    target: ${plain.origin}/up
    proxy_config: "${openProxy}"
  - prefix: /creds-open-http
    target: ${plain.origin}/up
    proxy: true
    proxy_config: "http://${creds}@127.0.0.1:${open.port}"
`,
});
const token = await login(gw.url);
t.teardown(async () => {
  await gw.stop();
  await open.stop();
  await guarded.stop();
  await plain.close();
  mtls.closeAllConnections();
  await new Promise((resolve) => mtls.close(resolve));
});

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
}

async function json<T>(path: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await get(path, headers);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

async function refused(t: Test, path: string, status: number, code: string): Promise<void> {
  const res = await get(path);
  t.equal(res.status, status, `${path}: ${status}`);
  t.equal(((await res.json()) as { error: string }).error, code, `${path}: ${code}`);
}

t.test('http target through the proxy: absolute form, the proxy adds Via', async (t) => {
  const before = open.log().length;
  const direct = await json<Echo>('/direct/a?x=1');
  t.equal(direct.headers.via, undefined, 'the direct route does not pass the proxy');
  const proxied = await json<Echo>('/via-http/a?x=1');
  t.equal(proxied.url, '/up/a?x=1', 'the upstream gets the origin-form path');
  t.match(proxied.headers.via, /tinyproxy-test/, 'the request went through tinyproxy');
  t.equal(proxied.headers.host, plain.origin.slice('http://'.length), "the target's Host");
  t.equal(proxied.headers['x-user'], 'alice', 'identity headers still go upstream');
  t.match(
    open.log().slice(before),
    `GET ${plain.origin}/up/a?x=1 HTTP/1.1`,
    "tinyproxy's log has the absolute-form request",
  );
  // Same origin, two profiles: two pools, each request on its own path.
  t.equal((await json<Echo>('/direct/b')).headers.via, undefined);
  t.match((await json<Echo>('/via-http/b')).headers.via, /tinyproxy-test/);
  t.match((await json<Echo>('/via-http/c')).headers.via, /tinyproxy-test/, 'every request');
});

t.test('https target through the proxy: a CONNECT tunnel, TLS end to end', async (t) => {
  const before = open.log().length;
  const body = await json<{ cn: string; url: string; headers: Record<string, string> }>(
    '/via-https/x',
  );
  t.equal(body.cn, 'gateway-client', 'the client certificate went through the tunnel');
  t.equal(body.url, '/secure/x');
  t.equal(body.headers.via, undefined, 'the proxy saw no request: only a tunnel');
  t.match(open.log().slice(before), `CONNECT ${mtlsAuthority} HTTP/1.1`, 'tinyproxy tunnelled it');
});

t.test('proxy credentials from the URL: Basic to the proxy, never upstream', async (t) => {
  const before = guarded.log().length;
  // An http target with proxy credentials goes through a plain CONNECT tunnel: credentials
  // on the CONNECT only, never on a request a proxy might pass on.
  const viaHttp = await json<Echo>('/auth-http/p');
  t.equal(viaHttp.headers['proxy-authorization'], undefined, 'not upstream');
  t.match(guarded.log().slice(before), `CONNECT 127.0.0.1:${new URL(plain.origin).port} HTTP/1.1`);
  // A proxy that asks for no credentials does not consume them: they still never pass it.
  const openBefore = open.log().length;
  const viaOpen = await json<Echo>('/creds-open-http/p');
  t.equal(viaOpen.headers['proxy-authorization'], undefined, 'an open proxy passes nothing on');
  t.match(open.log().slice(openBefore), `CONNECT 127.0.0.1:${new URL(plain.origin).port} HTTP/1.1`);
  const viaHttps = await json<{ cn: string }>('/auth-https/p');
  t.equal(viaHttps.cn, 'gateway-client', 'PEM client certificate through an authenticated tunnel');
  t.match(guarded.log().slice(before), `CONNECT ${mtlsAuthority} HTTP/1.1`);
  await refused(t, '/wrong-https/p', 502, 'UPSTREAM_PROXY_FAILED');
  await refused(t, '/nocreds-http/p', 502, 'UPSTREAM_PROXY_FAILED');
});

t.test("a client's own Proxy-Authorization never reaches the proxy", async (t) => {
  const basic = `Basic ${Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64')}`;
  const res = await get('/nocreds-http/p', { 'proxy-authorization': basic });
  t.equal(res.status, 502, 'valid proxy credentials from the client are not forwarded');
  t.equal(((await res.json()) as { error: string }).error, 'UPSTREAM_PROXY_FAILED');
});

t.test(
  'an unreachable proxy is 502 UPSTREAM_PROXY_FAILED, never a direct connection',
  async (t) => {
    await refused(t, '/dead-proxy-http/q', 502, 'UPSTREAM_PROXY_FAILED');
    await refused(t, '/dead-proxy-https/q', 502, 'UPSTREAM_PROXY_FAILED');
  },
);

t.test('client certificates: PKCS#12 and PEM answered, none refused', async (t) => {
  t.equal((await json<{ cn: string }>('/mtls-p12/a')).cn, 'gateway-client');
  t.equal((await json<{ cn: string }>('/mtls-pem/a')).cn, 'gateway-client');
  await refused(t, '/mtls-none/a', 502, 'UPSTREAM_TLS_FAILED');
});

t.test("the upstream's certificate is verified by default", async (t) => {
  // Signed by the test CA, which is not among Node's roots: refused without `ca`.
  await refused(t, '/untrusted/a', 502, 'UPSTREAM_TLS_FAILED');
  t.equal((await json<{ cn: string }>('/noverify/a')).cn, 'gateway-client', 'tls_verify: false');
});

t.test('load warnings, and no secret in the output', async (t) => {
  const out = gw.output();
  const warnings = logLines(out)
    .filter((l) => l.level === 'warn')
    .map((l) => String(l.message));
  t.ok(
    warnings.some((m) =>
      m.endsWith(
        'routes.yml: routes[13].tls_verify: false: route "/noverify" does not verify its https upstream\'s certificate, so anyone on the network path can impersonate the upstream and read its traffic',
      ),
    ),
    'tls_verify: false is warned at load',
  );
  t.ok(
    warnings.some((m) => /routes\[14\]\.proxy_config: has no effect: proxy is false/.test(m)),
    'an unused proxy_config is warned',
  );
  t.equal((await json<Echo>('/unused-proxy/a')).headers.via, undefined, 'and it is unused');
  t.notMatch(out, PROXY_PASSWORD, 'proxy password never logged');
  t.notMatch(out, encodeURIComponent(PROXY_PASSWORD), 'not even encoded');
  t.notMatch(out, pki.clientP12Password, 'PKCS#12 password never logged');
  t.match(out, 'UPSTREAM_PROXY_FAILED', 'the failures were logged');
  t.match(out, `proxy http://127.0.0.1:${guarded.port}:`, 'naming the proxy without userinfo');
});

t.test('a client certificate file replaced on disk is used after SIGHUP', async (t) => {
  const current = join(dir, 'current.p12');
  await copyFile(pki.secondP12File, current);
  const reloading = await startGateway({
    routes: `routes:
  - prefix: /mtls
    target: ${mtlsOrigin}/secure
    ca: ${pki.caFile}
    cert: {file: ${current}, password: "${pki.clientP12Password}"}
`,
  });
  t.teardown(() => reloading.stop());
  const token = await login(reloading.url);
  const cn = async () => {
    const res = await fetch(`${reloading.url}/mtls/a`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return ((await res.json()) as { cn: string }).cn;
  };
  t.equal(await cn(), 'second-client', 'the certificate the file held at start');
  await copyFile(pki.clientP12File, current);
  reloading.proc.kill('SIGHUP');
  t.ok(
    await waitFor(
      () => logged(reloading.output(), { message: 'configuration reloaded' }).length > 0,
      15_000,
    ),
    'routes.yml is unchanged, yet the new file bytes are a change',
  );
  t.equal(await cn(), 'gateway-client', 'the new certificate, on a new pool');
});

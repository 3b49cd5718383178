import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Agent, fetch } from 'undici';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

// tls: true on a config dir without certificates: the gateway generates a self-signed one and
// serves HTTPS (uWS SSLApp) on the same port.
const upstream = await startUpstream();
const gw: RunningGateway = await startGateway({
  config: { tls: true },
  routes: `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`,
});
const insecure = new Agent({ connect: { rejectUnauthorized: false } });
const url = gw.url.replace('http://', 'https://');
t.teardown(async () => {
  await insecure.close();
  await gw.stop();
  await upstream.close();
});

t.test(
  'a self-signed certificate is generated with a private key only the owner reads',
  async (t) => {
    const certs = join(gw.configDir, 'certs');
    t.match(await readFile(join(certs, 'cert.pem'), 'utf8'), /BEGIN CERTIFICATE/);
    t.equal((await stat(join(certs, 'key.pem'))).mode & 0o777, 0o600);
  },
);

t.test('login and forwarding over HTTPS', async (t) => {
  const login = await fetch(`${url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
    dispatcher: insecure,
  });
  t.equal(login.status, 200);
  const { token } = (await login.json()) as { token: string };
  const res = await fetch(`${url}/api/x`, {
    headers: { authorization: `Bearer ${token}` },
    dispatcher: insecure,
  });
  t.equal(res.status, 200);
  const echo = (await res.json()) as Echo;
  t.equal(echo.headers['x-forwarded-proto'], 'https');
  t.equal(echo.headers['x-user'], 'alice');
});

t.test('plain HTTP on the TLS port gets no answer', async (t) => {
  const res = await fetch(`${gw.url}/api/x`).then(
    (r) => r.status,
    () => 'refused',
  );
  t.equal(res, 'refused');
});

// The client address on the real CLI: a spoofed X-Forwarded-For from an untrusted peer changes
// nothing; from a trusted peer (tests connect from 127.0.0.1) it decides the allow lists,
// admin_allow, the access log and the X-Forwarded-For sent upstream.
import t from 'tap';
import { logged, type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

const ADMIN = 'a'.repeat(64); // the helper's token_admin
const upstream = await startUpstream();
const options = (trusted: string[]) => ({
  users: [{ username: 'remote', password: 'remote-password', allow: ['10.9.8.7'] }],
  config: { trusted_proxies: trusted, admin_allow: ['10.9.8.7'] },
  routes: `routes:
  - prefix: /echo
    target: ${upstream.origin}
    secure: false
`,
});
// `open` trusts proxies, but not the tests' peer (an empty list is the old path, covered by the
// other integration tests): the walk runs and must stop at the peer.
const [open, behind] = await Promise.all([
  startGateway(options(['192.0.2.0/24', '::1'])),
  startGateway(options(['127.0.0.1'])),
]);
t.teardown(async () => {
  await Promise.all([open.stop(), behind.stop()]);
  await upstream.close();
});

let seq = 0;

/** GET /echo/N with `headers`: the X-Forwarded-For upstream saw, and the access log's ip. */
async function echo(gw: RunningGateway, headers: Record<string, string>) {
  const path = `/echo/${++seq}`;
  const res = await fetch(`${gw.url}${path}`, { headers });
  const body = (await res.json()) as Echo;
  return { upstream: body.headers['x-forwarded-for'], logged: await accessIp(gw, path) };
}

async function accessIp(gw: RunningGateway, path: string): Promise<unknown> {
  const find = () => logged(gw.output(), { type: 'access', path })[0];
  await waitFor(() => find() !== undefined, 5_000);
  return find()?.ip;
}

async function loginStatus(gw: RunningGateway, headers: Record<string, string>) {
  const res = await fetch(`${gw.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ username: 'remote', password: 'remote-password' }),
  });
  const body = (await res.json()) as { error?: string };
  return body.error ?? String(res.status);
}

async function adminStatus(gw: RunningGateway, headers: Record<string, string>) {
  const res = await fetch(`${gw.url}/adm/stats`, {
    headers: { 'x-auth-token': ADMIN, ...headers },
  });
  const body = (await res.json()) as { error?: string };
  return body.error ?? String(res.status);
}

const SPOOF = { 'x-forwarded-for': '10.9.8.7' };

t.test('untrusted peer: a spoofed X-Forwarded-For changes nothing', async (t) => {
  t.same(await echo(open, SPOOF), { upstream: '127.0.0.1', logged: '127.0.0.1' });
  t.same(await echo(open, { forwarded: 'for=10.9.8.7', 'x-real-ip': '10.9.8.7' }), {
    upstream: '127.0.0.1',
    logged: '127.0.0.1',
  });
  t.equal(await loginStatus(open, SPOOF), 'IP_NOT_ALLOWED');
  t.equal(await loginStatus(open, { forwarded: 'for=10.9.8.7' }), 'IP_NOT_ALLOWED');
  t.equal(await adminStatus(open, SPOOF), 'ADMIN_IP_NOT_ALLOWED');
});

t.test('trusted peer: X-Forwarded-For names the client', async (t) => {
  t.same(await echo(behind, SPOOF), { upstream: '10.9.8.7, 127.0.0.1', logged: '10.9.8.7' });
  t.same(await echo(behind, { 'x-forwarded-for': ' 6.6.6.6 ,10.9.8.7 ' }), {
    upstream: '6.6.6.6, 10.9.8.7, 127.0.0.1',
    logged: '10.9.8.7',
  });
  t.equal(await loginStatus(behind, SPOOF), '200', 'the allow list sees 10.9.8.7');
  t.equal(await loginStatus(behind, { 'x-forwarded-for': '10.9.8.6' }), 'IP_NOT_ALLOWED');
  t.equal(await loginStatus(behind, {}), 'IP_NOT_ALLOWED', 'without the header: the peer');
  t.equal(await loginStatus(behind, { 'x-real-ip': '10.9.8.7' }), 'IP_NOT_ALLOWED');
  t.equal(await adminStatus(behind, SPOOF), '200', 'admin_allow sees 10.9.8.7');
  t.equal(await adminStatus(behind, {}), 'ADMIN_IP_NOT_ALLOWED');
});

t.test('trusted peer: Forwarded when there is no X-Forwarded-For', async (t) => {
  t.same(await echo(behind, { forwarded: 'for="[2001:db8::7]:4711";proto=https' }), {
    upstream: '2001:db8::7, 127.0.0.1',
    logged: '2001:db8::7',
  });
  t.same(await echo(behind, { forwarded: 'for=10.9.8.7, for=_hidden' }), {
    upstream: '127.0.0.1',
    logged: '127.0.0.1',
  });
  t.equal(await loginStatus(behind, { forwarded: 'for="10.9.8.7:1234"' }), '200');
  t.equal(await loginStatus(behind, { forwarded: 'for=unknown' }), 'IP_NOT_ALLOWED');
});

t.test('trusted peer: X-Forwarded-For lines are read as one list', async (t) => {
  const path = `/echo/${++seq}`;
  const head =
    `GET ${path} HTTP/1.1\r\nHost: gw.test\r\nX-Forwarded-For: 6.6.6.6\r\n` +
    'Connection: close\r\nX-Forwarded-For: 10.9.8.7\r\n\r\n';
  const { responses } = await rawExchange(behind.port, [head]);
  const body = JSON.parse(responses[0]!.body.toString()) as Echo;
  t.equal(body.headers['x-forwarded-for'], '6.6.6.6, 10.9.8.7, 127.0.0.1');
  t.equal(await accessIp(behind, path), '10.9.8.7');
});

t.test('refusals are logged with the resolved address', async (t) => {
  const path = '/no-route-here';
  await (await fetch(`${behind.url}${path}`, { headers: SPOOF })).text();
  t.equal(await accessIp(behind, path), '10.9.8.7');
});

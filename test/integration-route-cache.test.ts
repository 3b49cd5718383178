// routes.yml `cache: false`: no cache may keep the route's answers; Content-Type untouched.
import t from 'tap';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream((req, res) => {
  if (!req.url?.endsWith('/cached')) return false;
  res.writeHead(200, {
    'content-type': 'image/png',
    'cache-control': 'public, max-age=86400',
    pragma: 'cache',
    expires: 'Wed, 21 Oct 2037 07:28:00 GMT',
    etag: '"v1"',
  });
  res.end('png');
  return true;
});
const gw: RunningGateway = await startGateway({
  routes: `routes:
  - prefix: /nostore
    target: ${upstream.origin}
    cache: false
  - prefix: /default
    target: ${upstream.origin}
`,
});
const token = await login(gw.url);
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const auth = { authorization: `Bearer ${token}` };

t.test('cache: false replaces the caching headers, and only them', async (t) => {
  for (const method of ['GET', 'HEAD']) {
    const res = await fetch(`${gw.url}/nostore/cached`, { method, headers: auth });
    t.equal(res.status, 200, method);
    t.equal(res.headers.get('cache-control'), 'no-store', `${method}: one value, ours`);
    t.equal(res.headers.get('pragma'), 'no-cache');
    t.equal(res.headers.get('expires'), '0');
    t.equal(res.headers.get('content-type'), 'image/png', 'Content-Type as the upstream sent it');
    t.equal(res.headers.get('etag'), '"v1"', 'other headers pass');
    t.equal(await res.text(), method === 'GET' ? 'png' : '');
  }
  const echo = await fetch(`${gw.url}/nostore/echo`, { headers: auth });
  t.equal(echo.headers.get('content-type'), 'application/json', 'JSON stays JSON');
  t.equal(echo.headers.get('cache-control'), 'no-store', 'added when the upstream sent none');
});

t.test("cache: true (the default) keeps the upstream's headers", async (t) => {
  const res = await fetch(`${gw.url}/default/cached`, { headers: auth });
  t.equal(res.headers.get('cache-control'), 'public, max-age=86400');
  t.equal(res.headers.get('pragma'), 'cache');
  t.equal(res.headers.get('expires'), 'Wed, 21 Oct 2037 07:28:00 GMT');
  await res.arrayBuffer();
});

t.test("refusals on the route are the gateway's own, no-store as always", async (t) => {
  const res = await fetch(`${gw.url}/nostore/cached`);
  t.equal(res.status, 401);
  t.equal(res.headers.get('cache-control'), 'no-store');
  t.equal(res.headers.get('pragma'), null, 'the gateway answered: the route edit does not run');
  await res.arrayBuffer();
});

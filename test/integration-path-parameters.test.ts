// The example: a public /app and a restricted /app/admin. Whatever a backend does with
// ';' path parameters, no spelling may carry an anonymous request to /app/admin's backend path.
import t from 'tap';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const seen: string[] = [];
upstream.server.on('request', (req) => seen.push(req.url ?? ''));
const gw: RunningGateway = await startGateway({
  users: [
    { username: 'bob', password: 'bob-password' },
    { username: 'eve', password: 'eve-password' },
  ],
  routes: `routes:
  - prefix: /app
    target: ${upstream.origin}
    secure: false
  - prefix: /app/admin
    target: ${upstream.origin}/admin
    username: [bob]
`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const ATTEMPTS = [
  '/app/admin;/secret',
  '/app/admin;jsessionid=0123/secret',
  '/app/admin;',
  '/app/admin;x',
  '/app/;/admin/secret',
  '/app;x/admin/secret',
  '/app/admin%3B/secret',
  '/app/admin%3b/secret',
  '/app/admin%3Bjsessionid=1',
  '/app/%3B/admin',
  '/app/x/..;/admin/secret',
  '/app/admin/secret;.css',
];

t.test('no spelling with path parameters reaches a backend', async (t) => {
  const eve = await login(gw.url, 'eve', 'eve-password');
  for (const path of ATTEMPTS) {
    for (const auth of ['', `Authorization: Bearer ${eve}\r\n`]) {
      const result = await rawExchange(gw.port, [`GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`]);
      const res = result.responses[0];
      t.equal(res?.status, 400, `${path}${auth ? ' (eve)' : ''}: 400`);
      t.equal(JSON.parse(res?.body.toString() ?? '{}').error, 'BAD_PATH');
    }
  }
  t.same(seen, [], 'the upstream received nothing');
});

t.test('the legitimate paths still work', async (t) => {
  const bob = await login(gw.url, 'bob', 'bob-password');
  const anon = await fetch(`${gw.url}/app/page?a=1;b=2`);
  t.equal(anon.status, 200, 'a ";" in the query is fine');
  t.equal(((await anon.json()) as { url: string }).url, '/page?a=1;b=2');
  const denied = await fetch(`${gw.url}/app/admin/secret`);
  t.equal(denied.status, 401, 'the restricted route still asks for a token');
  const allowed = await fetch(`${gw.url}/app/admin/secret`, {
    headers: { authorization: `Bearer ${bob}` },
  });
  t.equal(allowed.status, 200);
  t.equal(((await allowed.json()) as { url: string }).url, '/admin/secret');
});

t.test(
  'a path that reaches another route when case or trailing dots are ignored is refused',
  async (t) => {
    const before = seen.length;
    // Express, ASP.NET and IIS match without regard to case; Windows drops trailing dots.
    for (const path of [
      '/app/ADMIN/secret',
      '/app/Admin/secret',
      '/app/admin./secret',
      '/app/admin%2e/secret',
      '/app/admin /secret'.replace(' ', '%20'),
      '/app/ADMIN.',
    ]) {
      const res = await rawExchange(gw.port, [`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`]);
      t.equal(res.responses[0]?.status, 400, path);
      t.equal(JSON.parse(res.responses[0]?.body.toString() ?? '{}').error, 'BAD_PATH', path);
    }
    // No route takes /APP exactly: nothing to forward, whatever a lenient reading would be.
    const none = await rawExchange(gw.port, [`GET /APP/admin/secret HTTP/1.1\r\nHost: x\r\n\r\n`]);
    t.equal(none.responses[0]?.status, 404, '/APP/admin/secret matches no route');
    t.equal(JSON.parse(none.responses[0]?.body.toString() ?? '{}').error, 'NO_ROUTE');
    t.same(seen.slice(before), [], 'none reached a backend');
    // Case and dots that do not change the route are fine.
    for (const [path, upstream] of [
      ['/app/Page', '/Page'],
      ['/app/file.txt', '/file.txt'],
      ['/app/v1./x', '/v1./x'],
    ] as const) {
      const res = await fetch(`${gw.url}${path}`);
      t.equal(res.status, 200, path);
      t.equal(((await res.json()) as { url: string }).url, upstream, `${path} goes up as routed`);
    }
  },
);

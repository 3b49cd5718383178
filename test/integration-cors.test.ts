// cors_origins through the real CLI: preflights answered by the gateway, CORS headers on every
// answer to a listed origin (refusals included), Vary on every answer, upstream CORS replaced.
import t from 'tap';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { routesYaml } from './helpers/routes-yaml.js';
import { startUpstream } from './helpers/upstream.js';

const APP = 'https://app.test';
const DEV = 'http://localhost:5173';
const EVIL = 'https://evil.test';

const seen: string[] = [];
const upstream = await startUpstream((req, res) => {
  seen.push(`${req.method} ${req.url} ${req.headers.origin ?? '-'}`);
  const headers: Record<string, string | string[]> = { 'content-type': 'text/plain' };
  switch (req.url) {
    case '/pub/acao-star':
      Object.assign(headers, {
        'access-control-allow-origin': '*',
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'GET, POST, DELETE',
        'access-control-allow-headers': '*',
        'access-control-max-age': '86400',
        'access-control-expose-headers': 'X-Total',
        'x-total': '42',
      });
      break;
    case '/pub/vary-accept':
      headers.vary = 'Accept-Encoding';
      break;
    case '/pub/vary-lines':
      headers.vary = ['Accept-Encoding', 'Cookie'];
      break;
    case '/pub/vary-origin':
      headers.vary = 'origin';
      break;
    case '/pub/vary-star':
      headers.vary = '*';
      break;
    case '/pub/empty':
      res.writeHead(204, { vary: 'Accept', 'access-control-allow-origin': '*' });
      res.end();
      return true;
    default:
      return false;
  }
  res.writeHead(200, headers);
  res.end('upstream body');
  return true;
});

const routes = routesYaml(upstream.origin, [
  { prefix: '/api' },
  { prefix: '/pub', secure: false },
  { prefix: '/ro', secure: false, allow_methods: '[GET]' },
]);
const gw: RunningGateway = await startGateway({
  config: { cors_origins: [APP, `${DEV}/`] },
  routes,
});
const off: RunningGateway = await startGateway({ routes });
t.teardown(async () => {
  await gw.stop();
  await off.stop();
  await upstream.close();
});

const token = await login(gw.url);

function preflight(
  url: string,
  origin: string,
  method = 'PUT',
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, ...headers },
  });
}

/** Every access-control-* header of an answer, and its Vary. */
function corsOf(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of res.headers) {
    if (name.startsWith('access-control-') || name === 'vary') out[name] = value;
  }
  return out;
}

const LISTED_HEADERS = {
  'access-control-allow-origin': APP,
  'access-control-allow-credentials': 'true',
  'access-control-expose-headers': 'Retry-After, RateLimit, RateLimit-Policy, WWW-Authenticate',
  vary: 'Origin',
};

/** Requests the upstream saw since `mark` (an index into `seen`). */
const since = (mark: number) => seen.slice(mark);

t.test('a preflight from a listed origin is answered by the gateway', async (t) => {
  const mark = seen.length;
  const res = await preflight(`${gw.url}/api/items/1`, APP, 'PUT', {
    'access-control-request-headers': 'authorization,content-type,x-csrf-token',
  });
  t.equal(res.status, 204, 'no token needed: browsers send none with a preflight');
  t.same(corsOf(res), {
    ...LISTED_HEADERS,
    'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE',
    'access-control-allow-headers': 'Authorization, Content-Type, X-CSRF-Token',
    'access-control-max-age': '600',
  });
  t.equal(await res.text(), '');
  t.equal(res.headers.get('server'), 'ProxyAuth');

  const methods = async (path: string) =>
    (await preflight(`${gw.url}${path}`, APP)).headers.get('access-control-allow-methods');
  t.equal(await methods('/ro/x'), 'GET, HEAD', "a route's allow_methods");
  t.equal(await methods('/auth'), 'POST', 'a gateway endpoint, by its own methods');
  t.equal(await methods('/auth/'), 'POST');
  t.equal(await methods('/logout'), 'GET, POST');
  t.equal(await methods('/pub/x'), 'GET, HEAD, POST, PUT, PATCH, DELETE');
  t.equal(await methods('/nowhere'), 'GET, HEAD, POST, PUT, PATCH, DELETE', 'no route: the set');

  const other = await preflight(`${gw.url}/api/x`, 'https://APP.test:443/', 'DELETE', {
    'access-control-request-headers': 'x-not-listed',
  });
  t.equal(other.status, 204, 'the same answer whatever the method and headers asked for');
  t.equal(other.headers.get('access-control-allow-origin'), APP, 'the listed spelling comes back');
  const dev = await preflight(`${gw.url}/pub/x`, DEV);
  t.equal(dev.headers.get('access-control-allow-origin'), DEV, 'listed with a trailing slash');
  t.same(since(mark), [], 'no preflight reached the backend');
});

t.test('a preflight from any other origin is refused with 403 and never forwarded', async (t) => {
  const mark = seen.length;
  for (const origin of [
    EVIL,
    'null',
    'https://app.test.evil.com',
    'https://app.test:8443',
    'http://app.test',
    'https://evil.test/https://app.test',
    'http://localhost:5174',
  ]) {
    for (const path of ['/api/x', '/pub/x', '/auth', '/logout', '/nowhere']) {
      const res = await preflight(`${gw.url}${path}`, origin);
      t.equal(res.status, 403, `${origin} ${path}`);
      t.same(corsOf(res), { vary: 'Origin' }, 'nothing reflected');
      t.equal(((await res.json()) as { error: string }).error, 'CORS_ORIGIN_NOT_ALLOWED');
    }
  }
  t.same(since(mark), [], 'the backend saw nothing');
});

t.test('a preflight with a body, and several Origin headers, are refused', async (t) => {
  const mark = seen.length;
  const head = (method: string, extra: string) =>
    `${method} /pub/x HTTP/1.1\r\nHost: gw\r\n${extra}\r\n`;
  const withBody = await rawExchange(gw.port, [
    `${head('OPTIONS', `Origin: ${APP}\r\nAccess-Control-Request-Method: PUT\r\nContent-Length: 2\r\n`)}{}`,
  ]);
  t.equal(withBody.responses[0]?.status, 400);
  t.match(withBody.responses[0]?.body.toString(), /"BAD_REQUEST".*preflight has no body/);
  for (const method of ['GET', 'POST', 'OPTIONS']) {
    for (const second of [APP, EVIL]) {
      const res = await rawExchange(gw.port, [
        head(
          method,
          `Origin: ${APP}\r\nOrigin: ${second}\r\nAccess-Control-Request-Method: PUT\r\nContent-Length: 0\r\n`,
        ),
      ]);
      const answer = res.responses[0];
      t.equal(answer?.status, 400, `${method} with Origin ${APP} and ${second}`);
      t.match(answer?.body.toString(), /more than one Origin header/);
      t.notOk(answer?.headers.has('access-control-allow-origin'));
      t.same(answer?.headers.get('vary'), ['Origin']);
    }
  }
  t.same(since(mark), [], 'the backend saw nothing');
});

t.test('actual requests: the listed origin is allowed, others get Vary only', async (t) => {
  const auth = { authorization: `Bearer ${token}` };
  const get = await fetch(`${gw.url}/api/items`, { headers: { ...auth, origin: APP } });
  t.equal(get.status, 200);
  t.same(corsOf(get), LISTED_HEADERS);
  const echo = (await get.json()) as { headers: Record<string, string> };
  t.equal(echo.headers.origin, APP, 'the Origin header still goes upstream');

  const post = await fetch(`${gw.url}/api/items`, {
    method: 'POST',
    headers: { ...auth, origin: APP, 'content-type': 'application/json' },
    body: '{"a":1}',
  });
  t.equal(post.status, 200);
  t.same(corsOf(post), LISTED_HEADERS);
  await post.arrayBuffer();

  for (const origin of [EVIL, 'null', 'https://app.test.evil.com', 'http://app.test']) {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${gw.url}/api/items`, { method, headers: { ...auth, origin } });
      t.equal(res.status, 200, `${method} from ${origin} is served (not a CORS read)`);
      t.same(corsOf(res), { vary: 'Origin' }, 'nothing reflected');
      await res.arrayBuffer();
    }
  }
  const none = await fetch(`${gw.url}/api/items`, { headers: auth });
  t.same(corsOf(none), { vary: 'Origin' }, 'no Origin: Vary all the same');
  await none.arrayBuffer();

  const head = await fetch(`${gw.url}/api/items`, {
    method: 'HEAD',
    headers: { ...auth, origin: APP },
  });
  t.same(corsOf(head), LISTED_HEADERS, 'HEAD answers too');
  const empty = await fetch(`${gw.url}/pub/empty`, { headers: { origin: APP } });
  t.equal(empty.status, 204);
  t.same(corsOf(empty), { ...LISTED_HEADERS, vary: 'Accept, Origin' }, 'and 204 answers');

  const mark = seen.length;
  const options = await fetch(`${gw.url}/pub/x`, { method: 'OPTIONS', headers: { origin: APP } });
  t.equal(options.status, 200, 'an OPTIONS that is no preflight is forwarded');
  t.same(corsOf(options), LISTED_HEADERS);
  await options.arrayBuffer();
  t.same(since(mark), [`OPTIONS /pub/x ${APP}`]);
});

t.test("an upstream's Vary is merged, never duplicated or replaced", async (t) => {
  const cases: [string, string][] = [
    ['/pub/vary-accept', 'Accept-Encoding, Origin'],
    ['/pub/vary-lines', 'Accept-Encoding, Cookie, Origin'],
    ['/pub/vary-origin', 'origin'],
    ['/pub/vary-star', '*'],
    ['/pub/plain', 'Origin'],
  ];
  for (const [path, vary] of cases) {
    for (const origin of [APP, EVIL]) {
      const res = await rawExchange(gw.port, [
        `GET ${path} HTTP/1.1\r\nHost: gw\r\nOrigin: ${origin}\r\n\r\n`,
      ]);
      t.same(res.responses[0]?.headers.get('vary'), [vary], `${path} from ${origin}: one Vary`);
    }
  }
});

t.test("an upstream's CORS headers cannot widen the list", async (t) => {
  const evil = await fetch(`${gw.url}/pub/acao-star`, { headers: { origin: EVIL } });
  t.equal(evil.status, 200);
  t.same(
    corsOf(evil),
    { vary: 'Origin', 'access-control-expose-headers': 'X-Total' },
    'the backend\'s "*" and credentials are gone; its exposed-header list stays',
  );
  const none = await fetch(`${gw.url}/pub/acao-star`);
  t.equal(none.headers.get('access-control-allow-origin'), null, 'nor without an Origin');
  const app = await fetch(`${gw.url}/pub/acao-star`, { headers: { origin: APP } });
  t.same(corsOf(app), {
    ...LISTED_HEADERS,
    'access-control-expose-headers': `X-Total, ${LISTED_HEADERS['access-control-expose-headers']}`,
  });
  t.equal(app.headers.get('x-total'), '42');
  for (const res of [evil, none, app]) await res.arrayBuffer();
});

t.test('/auth and /logout never reflect an origin that is not listed', async (t) => {
  const body = JSON.stringify({ username: 'alice', password: 'alice-password' });
  const json = { 'content-type': 'application/json' };
  for (const origin of [EVIL, 'null']) {
    const auth = await fetch(`${gw.url}/auth`, {
      method: 'POST',
      headers: { ...json, origin },
      body,
    });
    t.equal(auth.status, 200, `a login from ${origin} (no CORS read: the browser blocks it)`);
    t.same(corsOf(auth), { vary: 'Origin' });
    const { token: other } = (await auth.json()) as { token: string };
    const out = await fetch(`${gw.url}/logout`, {
      headers: { origin, authorization: `Bearer ${other}` },
    });
    t.equal(out.status, 200);
    t.same(corsOf(out), { vary: 'Origin' }, `/logout from ${origin}`);
    await out.arrayBuffer();
  }
  const auth = await fetch(`${gw.url}/auth`, {
    method: 'POST',
    headers: { ...json, origin: APP },
    body,
  });
  t.same(corsOf(auth), LISTED_HEADERS, 'a listed origin can read its login');
  const { token: mine } = (await auth.json()) as { token: string };
  const out = await fetch(`${gw.url}/logout`, {
    method: 'POST',
    headers: { origin: APP, authorization: `Bearer ${mine}` },
  });
  t.same(corsOf(out), LISTED_HEADERS);
  await out.arrayBuffer();
});

t.test(
  'refusals to a listed origin carry the CORS headers, so the app can read them',
  async (t) => {
    const cases: [string, RequestInit, number, string][] = [
      ['/api/x', {}, 401, 'TOKEN_MISSING'],
      ['/api/x', { headers: { authorization: 'Bearer nope' } }, 401, 'TOKEN_INVALID'],
      ['/nowhere', {}, 404, 'NO_ROUTE'],
      ['/adm/nothing', {}, 404, 'NOT_FOUND'],
      ['/ro/x', { method: 'POST' }, 405, 'METHOD_NOT_ALLOWED'],
      [
        '/auth',
        { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } },
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      ['/api/x;y', {}, 400, 'BAD_PATH'],
    ];
    for (const [path, init, status, code] of cases) {
      const headers = { ...(init.headers as Record<string, string>), origin: APP };
      const res = await fetch(`${gw.url}${path}`, { ...init, headers });
      t.equal(res.status, status, `${path}: ${status}`);
      t.equal(((await res.json()) as { error: string }).error, code);
      t.same(corsOf(res), LISTED_HEADERS, `${code} carries them`);
    }
    const challenged = await fetch(`${gw.url}/api/x`, { headers: { origin: APP } });
    t.ok(challenged.headers.get('www-authenticate'), 'the challenge it may read (exposed)');
    await challenged.arrayBuffer();
  },
);

t.test('with cors_origins empty nothing changes: preflights go to the route', async (t) => {
  const mark = seen.length;
  const res = await preflight(`${off.url}/pub/x`, APP);
  t.equal(res.status, 200, "the backend's answer");
  t.same(corsOf(res), {}, 'no header added');
  const echo = (await res.json()) as { method: string };
  t.equal(echo.method, 'OPTIONS');
  t.same(since(mark), [`OPTIONS /pub/x ${APP}`], 'forwarded as before');
  const refused = await preflight(`${off.url}/api/x`, APP);
  t.equal(refused.status, 401, 'a secure route wants its token, as before');
  t.same(corsOf(refused), {});
  await refused.arrayBuffer();
  const star = await fetch(`${off.url}/pub/acao-star`, { headers: { origin: EVIL } });
  t.equal(
    star.headers.get('access-control-allow-origin'),
    '*',
    "without cors_origins the backend's own CORS headers pass unchanged",
  );
  await star.arrayBuffer();
  const two = await rawExchange(off.port, [
    `GET /pub/x HTTP/1.1\r\nHost: gw\r\nOrigin: ${APP}\r\nOrigin: ${EVIL}\r\n\r\n`,
  ]);
  t.equal(two.responses[0]?.status, 200, "several Origin headers are the backend's business");
});

t.test('the access log names what answered a preflight', async (t) => {
  const res = await preflight(`${gw.url}/ro/logged`, APP);
  t.equal(res.status, 204);
  let line: Record<string, unknown> | undefined;
  for (let i = 0; i < 100 && line === undefined; i++) {
    line = gw
      .output()
      .split('\n')
      .filter((l) => l.includes('"type":"access"') && l.includes('/ro/logged'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
    if (line === undefined) await new Promise((r) => setTimeout(r, 30));
  }
  t.match(line, { method: 'OPTIONS', status: 204, route: '/ro' });
});

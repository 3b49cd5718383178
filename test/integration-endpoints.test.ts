// Reserved paths, the one answer path of refusals, HEAD answers and reason phrases.
import t from 'tap';
import { type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const seen: string[] = [];
upstream.server.on('request', (req) => seen.push(`${req.method} ${req.url}`));
// A catch-all public route: anything not reserved would be forwarded.
const gw: RunningGateway = await startGateway({
  routes: `routes:
  - prefix: /
    target: ${upstream.origin}
    secure: false
  - prefix: /api
    target: ${upstream.origin}
  - prefix: /ro
    target: ${upstream.origin}
    secure: false
    allow_methods: [GET]
`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const head = (method: string, path: string, extra = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

interface AccessLine {
  type: string;
  method: string;
  path: string;
  status: number;
  code?: string;
  route?: string;
}

function accessLines(): AccessLine[] {
  return gw
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{"ts"') && l.includes('"type":"access"'))
    .map((l) => JSON.parse(l) as AccessLine);
}

async function accessLine(method: string, path: string, status: number): Promise<AccessLine> {
  let found: AccessLine | undefined;
  await waitFor(() => {
    found = accessLines().find(
      (l) => l.method === method && l.path === path && l.status === status,
    );
    return found !== undefined;
  }, 3_000);
  if (!found) throw new Error(`no access line for ${method} ${path} ${status}`);
  return found;
}

t.test('a reserved path with another method is 405 with Allow, never forwarded', async (t) => {
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const res = await fetch(`${gw.url}/auth`, { method });
    t.equal(res.status, 405, method);
    t.equal(res.headers.get('allow'), 'POST', `${method}: Allow`);
    const body = (await res.json()) as { error: string; code: number };
    t.same(body, { ...body, error: 'METHOD_NOT_ALLOWED', code: 405 }, `${method}: body`);
  }
  t.notOk(
    seen.some((s) => s.includes('/auth')),
    'the catch-all route never saw /auth',
  );
  const line = await accessLine('GET', '/auth', 405);
  t.equal(line.code, 'METHOD_NOT_ALLOWED', 'the 405 access line has its code');
  t.equal(line.route, '/auth');
});

t.test('the reserved path is matched on the canonical path', async (t) => {
  const res = await fetch(`${gw.url}/x/../auth`, { method: 'GET' });
  t.equal(res.status, 405);
  const encoded = await rawExchange(gw.port, [head('GET', '/%61uth')]);
  t.equal(encoded.responses[0]?.status, 405, '%61uth is /auth');
  for (const path of ['/auth/', '/auth/.', '/auth%2f', '/auth//', '/x/../auth/']) {
    const res = await rawExchange(gw.port, [head('GET', path)]);
    t.equal(res.responses[0]?.status, 405, `${path} is /auth`);
    const login = await fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
    });
    t.equal(login.status, 200, `${path}: the login is the gateway's`);
  }
  for (const path of ['/AUTH', '/Auth/', '/auth.']) {
    const res = await rawExchange(gw.port, [head('POST', path)]);
    t.equal(res.responses[0]?.status, 400, `${path}: ambiguous with /auth, refused`);
  }
  t.notOk(
    seen.some((s) => s.toLowerCase().includes('/auth')),
    'no /auth spelling reached the catch-all route',
  );
  // Not the reserved path: below it, it is ordinary routing.
  const below = await fetch(`${gw.url}/auth/other`);
  t.equal(below.status, 200, '/auth/other goes to the route table');
  t.ok(seen.includes('GET /auth/other'));
});

t.test('415 goes through the one answer path, with its code in the access log', async (t) => {
  const res = await fetch(`${gw.url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'username=a',
  });
  t.equal(res.status, 415);
  t.equal(((await res.json()) as { error: string }).error, 'UNSUPPORTED_MEDIA_TYPE');
  const line = await accessLine('POST', '/auth', 415);
  t.equal(line.code, 'UNSUPPORTED_MEDIA_TYPE');
});

t.test('405 of a route with allow_methods goes through the same path', async (t) => {
  const res = await fetch(`${gw.url}/ro/x`, { method: 'DELETE' });
  t.equal(res.status, 405);
  t.equal(res.headers.get('allow'), 'GET, HEAD', 'GET brings HEAD along');
  const head = await fetch(`${gw.url}/ro/x`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD on a GET-only route is served');
  t.equal(((await res.json()) as { error: string }).error, 'METHOD_NOT_ALLOWED');
  const line = await accessLine('DELETE', '/ro/x', 405);
  t.equal(line.code, 'METHOD_NOT_ALLOWED');
  t.notOk(seen.includes('DELETE /x'), 'not forwarded');
});

t.test('the gateway answers HEAD without a body and keeps the connection usable', async (t) => {
  const cases: [string, string, number, string][] = [
    ['HEAD', '/auth', 405, ''],
    ['HEAD', '/api/x', 401, ''],
    ['HEAD', '/api/x', 401, 'Authorization: Bearer not-a-token\r\n'],
  ];
  for (const [method, path, status, extra] of cases) {
    // The HEAD, then a GET on the same connection: its answer must come, whole.
    const result = await rawExchange(gw.port, [head(method, path, extra), head('GET', '/open')], {
      methods: [method, 'GET'],
      sequential: true,
    });
    const [first, second] = result.responses;
    t.equal(first?.status, status, `${method} ${path}: status`);
    const length = Number(first?.headers.get('content-length')?.[0]);
    t.ok(length > 0, `${method} ${path}: Content-Length says what GET would send`);
    t.equal(first?.body.length, 0, `${method} ${path}: no body`);
    t.equal(
      second?.status,
      200,
      `${method} ${path}: the next request on the connection is answered`,
    );
    t.equal(result.rest.length, 0, 'nothing unparsed is left');
  }
});

t.test('reason phrases come from the standard table', async (t) => {
  const login = await rawExchange(gw.port, [
    'POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 52\r\n\r\n' +
      '{"username":"alice","password":"alice-password"}    ',
  ]);
  t.equal(login.responses[0]?.status, 200);
  t.equal(login.responses[0]?.reason, 'OK', 'HTTP/1.1 200 OK, not "200 Error"');
  const refused = await rawExchange(gw.port, [head('GET', '/api/x')]);
  t.equal(refused.responses[0]?.reason, 'Unauthorized');
  const proxied = await rawExchange(gw.port, [head('GET', '/status/418')]);
  t.equal(proxied.responses[0]?.status, 418);
  t.equal(proxied.responses[0]?.reason, "I'm a Teapot", 'relayed statuses get the standard phrase');
  for (const res of [login, refused, proxied]) {
    t.equal(res.responses[0]?.headers.get('server')?.[0], 'ProxyAuth');
    t.notOk(res.responses[0]?.headers.has('uwebsockets'), 'no uWebSockets header');
  }
});

t.test('a refusal before the body was read closes the connection, pipelined or not', async (t) => {
  const before = seen.length;
  const refusedPost = 'POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello';
  const follower = 'GET /pipelined-after-refusal HTTP/1.1\r\nHost: x\r\n\r\n';
  const pipelined = await rawExchange(gw.port, [refusedPost + follower], { waitMs: 1500 });
  t.ok(pipelined.responses.length <= 1, 'at most the refusal is answered');
  if (pipelined.responses[0] !== undefined) t.equal(pipelined.responses[0].status, 401);
  t.ok(pipelined.closed, 'the connection is closed');
  const alone = await rawExchange(gw.port, [refusedPost], { waitMs: 1500 });
  t.equal(alone.responses[0]?.status, 401, 'alone, the refusal is answered');
  t.equal(alone.responses[0]?.headers.get('connection')?.[0], 'close');
  t.ok(alone.closed, 'and the connection closed');
  t.notOk(
    seen.slice(before).some((s) => s.includes('pipelined-after-refusal')),
    'the pipelined request was not served',
  );
});

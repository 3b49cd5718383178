// Session-cookie mode's logout, HTTPS rule and pages on the real CLI: logout by cookie and by
// bearer (the old cookie then refused on both edges), a browser logged out whatever its
// cookie, plain-HTTP logins refused unless loopback or a trusted TLS proxy says https, and
// failed browser logins answered with the login page (a file, the page a public route serves
// at logout_redirect_url, or the built-in one) with its error block shown.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ERRORS } from '../shared/errors.js';
import {
  type GatewayOptions,
  logged,
  logLines,
  type RunningGateway,
  startGateway,
  waitFor,
} from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const BEGIN = '<!-- BEGIN_BLOCK_ERROR -->';
const END = '<!-- END_BLOCK_ERROR -->';
const ROUTE_PAGE = `<!doctype html><title>Site login</title><form method="post" action="/auth"></form>
${BEGIN}
<!--
<div id="error_display">{{ error }}</div>
-->
${END}
</html>`;
const FILE_PAGE = `<!doctype html><title>File login</title>
${BEGIN}<!--<p class="oops">{{error}}</p>-->${END}`;

let pageHits = 0;
const upstream = await startUpstream((req, res) => {
  if (req.url !== '/login') return false;
  pageHits++;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(ROUTE_PAGE);
  return true;
});
const routes =
  `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n` +
  `  - prefix: /pub\n    target: ${upstream.origin}\n    secure: false\n`;
const alice = { username: 'alice', password: 'alice-password', roles: ['r'] };
const bob = { username: 'bob', password: 'bob-password', allow: ['10.0.0.0/8'] };
const session = { session_cookie: true, csrf_token: false };

const fileDir = await mkdtemp(join(tmpdir(), 'proxyauth-pages-'));
await writeFile(join(fileDir, 'login.html'), FILE_PAGE);
// Started one after the other: parallel starts time out on a loaded machine.
const gateways: RunningGateway[] = [];
const setups: GatewayOptions[] = [
  // Two edges; its login page is the page /pub/login serves (through the route).
  {
    users: [alice],
    config: {
      ...session,
      logout_redirect_url: '/pub/login',
      num_instances: 2,
      login_lockout: { max_failures: 0 },
    },
    routes,
  },
  // The built-in page; the test client (127.0.0.1) is a trusted proxy here.
  {
    users: [alice, bob],
    config: {
      ...session,
      num_instances: 1,
      trusted_proxies: ['127.0.0.1'],
      login_lockout: { max_failures: 0 },
    },
    routes,
  },
  // login_page from a file beside config.json.
  {
    dir: fileDir,
    users: [alice],
    config: {
      ...session,
      num_instances: 1,
      login_page: 'login.html',
      login_redirect_url: '/api/home',
    },
    routes,
  },
  // The auth rate limit: one login, then 429.
  {
    users: [alice],
    config: {
      ...session,
      num_instances: 1,
      ratelimit_auth: { requests_per_second: 0.01, burst: 0 },
    },
    routes,
  },
  // logout_redirect_url on a public route whose answer is no login page (the echo's JSON);
  // a lockout after 2 failures.
  {
    users: [alice],
    config: {
      ...session,
      num_instances: 1,
      logout_redirect_url: '/pub/echo',
      login_lockout: { max_failures: 2 },
    },
    routes,
  },
];
for (const options of setups) gateways.push(await startGateway(options));
const [routed, builtin, filed, limited, broken] = gateways as [
  RunningGateway,
  RunningGateway,
  RunningGateway,
  RunningGateway,
  RunningGateway,
];
t.teardown(async () => {
  await Promise.all([routed, builtin, filed, limited, broken].map((g) => g.stop()));
  await rm(fileDir, { recursive: true, force: true });
  await upstream.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on a fresh connection (a new accept each time: both edges answer some). */
function fresh(
  gw: RunningGateway,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gw.port,
        path,
        method: init.method ?? 'GET',
        agent: false,
        headers: init.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const FORM = 'application/x-www-form-urlencoded';

/** A browser's form post to /auth (or an API client's, with `accept`). */
function formLogin(
  gw: RunningGateway,
  body: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return fresh(gw, '/auth', {
    method: 'POST',
    headers: { 'content-type': FORM, accept: BROWSER_ACCEPT, ...headers },
    body,
  });
}

function cookies(a: Answer): string[] {
  const set = a.headers['set-cookie'];
  return set === undefined ? [] : Array.isArray(set) ? set : [set];
}

/** The session cookie a login set. */
function sessionOf(a: Answer): string {
  const ours = cookies(a).find((c) => c.startsWith('session_token=') && !c.includes('Max-Age=0'));
  if (ours === undefined) throw new Error(`no session cookie: ${a.status} ${a.body}`);
  return ours.slice('session_token='.length, ours.indexOf(';'));
}

async function cookieLogin(gw: RunningGateway): Promise<string> {
  return sessionOf(
    await formLogin(gw, 'username=alice&password=alice-password', { accept: '*/*' }),
  );
}

const EXPIRED = 'session_token=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0';

function errorOf(a: Answer): string | undefined {
  try {
    return (JSON.parse(a.body) as { error?: string }).error;
  } catch {
    return undefined;
  }
}

/** The text a rendered page shows between its error markers. */
function block(html: string): string {
  const from = html.indexOf(BEGIN);
  const to = html.indexOf(END);
  if (from === -1 || to === -1) throw new Error(`no error block in ${html}`);
  return html.slice(from + BEGIN.length, to);
}

t.test('logout by cookie: revoked on every edge, cookie expired, redirected', async (t) => {
  for (const method of ['GET', 'POST']) {
    const token = await cookieLogin(routed);
    const cookie = { cookie: `session_token=${token}` };
    const before = await Promise.all(
      Array.from({ length: 12 }, () => fresh(routed, '/api/x', { headers: cookie })),
    );
    t.same(
      before.map((a) => a.status),
      Array(12).fill(200),
      `${method}: the cookie works first`,
    );
    const mark = routed.output().length;
    const out = await fresh(routed, '/logout', { method, headers: cookie });
    t.equal(out.status, 302, method);
    t.equal(out.headers.location, '/pub/login');
    t.same(cookies(out), [EXPIRED], 'the cookie is expired');
    t.equal(out.headers['cache-control'], 'no-store');
    const body = JSON.parse(out.body) as { logged_out: boolean; token_ids: string[] };
    t.equal(body.logged_out, true);
    t.equal(body.token_ids.length, 1);
    const refused = new Set<unknown>();
    t.ok(
      await waitFor(async () => {
        const after = await Promise.all(
          Array.from({ length: 10 }, () => fresh(routed, '/api/x', { headers: cookie })),
        );
        for (const a of after) {
          if (a.status !== 401 || errorOf(a) !== 'TOKEN_REVOKED') {
            throw new Error(`the old cookie passed: ${a.status} ${a.body}`);
          }
        }
        for (const line of logLines(routed.output().slice(mark))) {
          if (line.code === 'TOKEN_REVOKED' && line.route === '/api') refused.add(line.pid);
        }
        return refused.size >= 2;
      }, 10_000),
      `${method}: every request after the answer is 401 TOKEN_REVOKED, on both edges`,
    );
    t.same([...refused].sort(), [...routed.edges].sort());
  }
});

t.test('a browser is logged out whatever its cookie holds', async (t) => {
  const revoked = await cookieLogin(routed);
  await fresh(routed, '/logout', { headers: { cookie: `session_token=${revoked}` } });
  for (const [name, headers] of [
    ['a revoked cookie', { cookie: `session_token=${revoked}` }],
    ['a garbage cookie', { cookie: 'session_token=garbage' }],
    ['no cookie', {}],
  ] as const) {
    const out = await fresh(routed, '/logout', { headers });
    t.equal(out.status, 302, name);
    t.equal(out.headers.location, '/pub/login', name);
    t.same(cookies(out), [EXPIRED], `${name}: expired anyway`);
    t.same(JSON.parse(out.body), { logged_out: true, token_id: null, token_ids: [] }, name);
  }
  const a = await cookieLogin(routed);
  const b = await cookieLogin(routed);
  const both = await fresh(routed, '/logout', {
    headers: { cookie: `session_token=${a}; session_token=${b}; session_token=junk` },
  });
  t.equal(both.status, 302);
  t.equal((JSON.parse(both.body) as { token_ids: string[] }).token_ids.length, 2);
  for (const token of [a, b]) {
    const res = await fresh(routed, '/api/x', { headers: { cookie: `session_token=${token}` } });
    t.equal(res.status, 401, 'each of two session cookies is revoked');
  }
});

t.test('logout by bearer in cookie mode: revoked too; a bad bearer keeps its 401', async (t) => {
  const login = await fresh(routed, '/auth', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
  });
  const { token } = JSON.parse(login.body) as { token: string };
  const out = await fresh(routed, '/logout', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(out.status, 302);
  t.same(cookies(out), [EXPIRED], 'session_cookie is on: the cookie is expired as well');
  const after = await fresh(routed, '/api/x', { headers: { authorization: `Bearer ${token}` } });
  t.equal(errorOf(after), 'TOKEN_REVOKED');
  const bad = await fresh(routed, '/logout', { headers: { authorization: 'Bearer nope' } });
  t.equal(bad.status, 401, 'an Authorization header decides alone, as on routes');
  t.equal(errorOf(bad), 'TOKEN_INVALID');
  t.same(cookies(bad), []);
});

t.test('HEAD never logs out', async (t) => {
  const token = await cookieLogin(routed);
  const head = await fresh(routed, '/logout', {
    method: 'HEAD',
    headers: { cookie: `session_token=${token}` },
  });
  t.equal(head.status, 405);
  t.equal(head.headers.allow, 'GET, POST');
  t.same(cookies(head), []);
  const still = await fresh(routed, '/api/x', { headers: { cookie: `session_token=${token}` } });
  t.equal(still.status, 200);
});

t.test('without logout_redirect_url a logout answers 200', async (t) => {
  const token = await cookieLogin(builtin);
  const out = await fresh(builtin, '/logout', { headers: { cookie: `session_token=${token}` } });
  t.equal(out.status, 200);
  t.equal(out.headers.location, undefined);
  t.same(cookies(out), [EXPIRED]);
  t.equal((JSON.parse(out.body) as { logged_out: boolean }).logged_out, true);
  const browserToken = await cookieLogin(builtin);
  const page = await fresh(builtin, '/logout', {
    headers: { cookie: `session_token=${browserToken}`, accept: BROWSER_ACCEPT },
  });
  t.equal(page.status, 200, "a browser's navigation");
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  t.match(page.body, '<a href="/auth">Sign in again</a>', 'gets the signed-out page');
  t.match(page.headers['content-security-policy'], /^default-src 'none'/);
  t.same(cookies(page), [EXPIRED]);
  const after = await fresh(builtin, '/api/x', {
    headers: { cookie: `session_token=${browserToken}` },
  });
  t.equal(errorOf(after), 'TOKEN_REVOKED');
});

t.test('plain HTTP: loopback hosts log in, other hosts are told to use HTTPS', async (t) => {
  const port = routed.port;
  const good = 'username=alice&password=alice-password';
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'app.localhost']) {
    const res = await formLogin(routed, good, { host, accept: '*/*' });
    t.equal(res.status, 200, `Host ${host}`);
    t.ok(sessionOf(res));
  }
  const mark = routed.output().length;
  const json = await formLogin(routed, good, { host: 'app.example.test', accept: '*/*' });
  t.equal(json.status, 403);
  t.equal(errorOf(json), 'SESSION_NEEDS_HTTPS');
  t.same(cookies(json), [], 'no cookie');
  const page = await formLogin(routed, good, { host: 'app.example.test' });
  t.equal(page.status, 403);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(block(page.body), ERRORS.SESSION_NEEDS_HTTPS.message, 'the browser shows why');
  const forged = await formLogin(routed, good, {
    host: 'app.example.test',
    'x-forwarded-proto': 'https',
    accept: '*/*',
  });
  t.equal(errorOf(forged), 'SESSION_NEEDS_HTTPS', "an untrusted peer's X-Forwarded-Proto");
  t.ok(
    await waitFor(
      () =>
        logged(routed.output().slice(mark), {
          message:
            'session login refused: plain HTTP from a host that is not loopback (SESSION_NEEDS_HTTPS)',
          host: 'app.example.test',
        }).length > 0,
      5_000,
    ),
    'logged for the operator',
  );
  t.match(routed.output(), /session_cookie: the gateway serves plain HTTP/, 'warned at start');
});

t.test('behind a trusted TLS proxy saying https, logins work from any host', async (t) => {
  const good = 'username=alice&password=alice-password';
  const host = 'app.example.test';
  const ok = await formLogin(builtin, good, { host, 'x-forwarded-proto': 'https', accept: '*/*' });
  t.equal(ok.status, 200);
  t.ok(sessionOf(ok));
  const rfc = await formLogin(builtin, good, {
    host,
    forwarded: 'for=203.0.113.9;proto=https',
    accept: '*/*',
  });
  t.equal(rfc.status, 200, 'Forwarded: proto=https');
  for (const proto of ['http', 'https, http']) {
    const res = await formLogin(builtin, good, { host, 'x-forwarded-proto': proto, accept: '*/*' });
    t.equal(errorOf(res), 'SESSION_NEEDS_HTTPS', `X-Forwarded-Proto: ${proto}`);
  }
  const none = await formLogin(builtin, good, { host, accept: '*/*' });
  t.equal(errorOf(none), 'SESSION_NEEDS_HTTPS', 'a trusted peer that says nothing');
});

const PAGE_HEADERS = ['x-content-type-options', 'referrer-policy', 'x-frame-options'];

t.test('the built-in page at GET /auth, with its security headers', async (t) => {
  const res = await fresh(builtin, '/auth');
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(res.headers['cache-control'], 'no-store');
  t.match(res.headers['content-security-policy'], /^default-src 'none'; style-src 'sha256-/);
  t.match(res.headers['content-security-policy'], "frame-ancestors 'none'");
  t.same(
    PAGE_HEADERS.map((h) => res.headers[h]),
    ['nosniff', 'same-origin', 'DENY'],
  );
  // No action: the form posts to the page's own URL, `/auth` with its `rd` (forward-auth).
  t.match(res.body, '<form method="post">');
  t.match(block(res.body), /^\n<!--\n/, 'the error block is commented out');
  const head = await fresh(builtin, '/auth', { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '');
  t.equal(Number(head.headers['content-length']), Buffer.byteLength(res.body));
  const put = await fresh(builtin, '/auth', { method: 'PUT' });
  t.equal(put.status, 405);
  t.equal(put.headers.allow, 'POST, GET, HEAD');
});

t.test('a failed browser login shows the error in the page, with its status', async (t) => {
  const wrong = await formLogin(builtin, 'username=alice&password=wrong');
  t.equal(wrong.status, 401);
  t.equal(wrong.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(wrong.headers['cache-control'], 'no-store');
  t.match(wrong.headers['content-security-policy'], /^default-src 'none'/);
  t.same(
    PAGE_HEADERS.map((h) => wrong.headers[h]),
    ['nosniff', 'same-origin', 'DENY'],
  );
  t.same(cookies(wrong), []);
  t.equal(
    block(wrong.body),
    '\n\n<p class="error" id="login-error" role="alert">Invalid username, password or one-time code</p>\n\n',
    'uncommented, the message in place',
  );
  const unknown = await formLogin(builtin, 'username=nobody&password=x');
  t.equal(unknown.body, wrong.body, 'an unknown user looks the same');
  const ip = await formLogin(builtin, 'username=bob&password=bob-password');
  t.equal(ip.status, 403);
  t.match(block(ip.body), ERRORS.IP_NOT_ALLOWED.message);
  const bad = await formLogin(builtin, 'username=alice');
  t.equal(bad.status, 400);
  t.match(block(bad.body), `${ERRORS.BAD_BODY.message}: password must be a non-empty string`);
  const json = await formLogin(builtin, 'username=alice&password=wrong', {
    accept: 'application/json',
  });
  t.equal(json.status, 401);
  t.equal(json.headers['content-type'], 'application/json');
  t.equal(errorOf(json), 'INVALID_CREDENTIALS', 'API clients keep JSON');
  const jsonBody = await fresh(builtin, '/auth', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: BROWSER_ACCEPT },
    body: '{"username":"alice","password":"wrong"}',
  });
  t.equal(errorOf(jsonBody), 'INVALID_CREDENTIALS', 'a JSON body is an API call');
});

t.test('a successful browser login without login_redirect_url: the signed-in page', async (t) => {
  const res = await formLogin(builtin, 'username=alice&password=alice-password');
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  t.match(res.body, 'You are signed in as <strong>alice</strong>');
  const token = sessionOf(res);
  t.notMatch(res.body, token, 'the token is in the HttpOnly cookie only');
  const api = await formLogin(builtin, 'username=alice&password=alice-password', {
    accept: '*/*',
  });
  t.equal(api.headers['content-type'], 'application/json', 'API clients keep JSON');
});

t.test('the rate limit and its Retry-After reach the page', async (t) => {
  const first = await formLogin(limited, 'username=alice&password=wrong');
  t.equal(first.status, 401);
  const second = await formLogin(limited, 'username=alice&password=wrong');
  t.equal(second.status, 429);
  t.ok(Number(second.headers['retry-after']) >= 1, 'Retry-After');
  t.match(block(second.body), /Too Many Requests \(retry in \d+ s\)/);
  t.equal(second.headers['content-type'], 'text/html; charset=utf-8');
});

t.test('login_page: served at GET /auth and rendered on failure', async (t) => {
  const page = await fresh(filed, '/auth');
  t.equal(page.status, 200);
  t.equal(page.body, FILE_PAGE);
  t.equal(page.headers['content-security-policy'], "form-action 'self'; frame-ancestors 'none'");
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  const wrong = await formLogin(filed, 'username=alice&password=wrong');
  t.equal(wrong.status, 401);
  t.equal(
    wrong.body,
    `<!doctype html><title>File login</title>\n${BEGIN}<p class="oops">Invalid username, password or one-time code</p>${END}`,
  );
  const ok = await formLogin(filed, 'username=alice&password=alice-password');
  t.equal(ok.status, 303, 'with login_redirect_url a browser is redirected');
  t.equal(ok.headers.location, '/api/home');
  t.ok(sessionOf(ok));
});

t.test('the page at logout_redirect_url, fetched through its public route', async (t) => {
  const hits = pageHits;
  const wrong = await formLogin(routed, 'username=alice&password=wrong');
  t.equal(wrong.status, 401);
  t.match(wrong.body, '<title>Site login</title>');
  t.equal(
    block(wrong.body),
    '\n\n<div id="error_display">Invalid username, password or one-time code</div>\n\n',
  );
  t.equal(wrong.headers['content-security-policy'], "form-action 'self'; frame-ancestors 'none'");
  for (let i = 0; i < 6; i++) await formLogin(routed, 'username=alice&password=wrong');
  t.ok(pageHits >= 1, 'the upstream served it');
  t.ok(pageHits - hits <= 2, `7 failures, ${pageHits - hits} fetches: at most one per edge`);
  const form = await fresh(routed, '/auth');
  t.match(
    form.body,
    '<h1>Sign in</h1>',
    'GET /auth is the built-in page: the route serves its own',
  );
});

t.test('a route page that is no login page: the built-in one, and the log says why', async (t) => {
  const wrong = await formLogin(broken, 'username=alice&password=wrong');
  t.equal(wrong.status, 401);
  t.match(wrong.body, '<h1>Sign in</h1>');
  t.match(block(wrong.body), 'Invalid username, password or one-time code');
  t.ok(
    await waitFor(
      () =>
        logged(broken.output(), {
          message: 'login page unavailable: failed browser logins get the built-in page',
          url: '/pub/echo',
          route: '/pub',
        }).length === 1,
      5_000,
    ),
    broken.output(),
  );
});

t.test('a lockout reaches the page with its status and Retry-After', async (t) => {
  let locked: Answer | undefined;
  for (let i = 0; i < 4 && locked === undefined; i++) {
    const res = await formLogin(broken, 'username=alice&password=wrong');
    if (res.status === 429) locked = res;
    else t.equal(res.status, 401, `failure ${i + 1}`);
  }
  if (locked === undefined) throw new Error('never locked out');
  t.equal(locked.headers['content-type'], 'text/html; charset=utf-8');
  t.ok(Number(locked.headers['retry-after']) >= 1, 'Retry-After');
  t.match(block(locked.body), ERRORS.LOGIN_LOCKED.message);
  const json = await formLogin(broken, 'username=alice&password=wrong', { accept: '*/*' });
  t.equal(errorOf(json), 'LOGIN_LOCKED', 'JSON for API clients');
});

t.test(
  'an edit of the login_page file alone reloads; a broken one keeps the page in force',
  async (t) => {
    const file = join(fileDir, 'login.html');
    const edited = FILE_PAGE.replace('File login', 'Edited login');
    // Written beside it and renamed over it, as editors and config management do.
    await writeFile(`${file}.tmp`, edited);
    await rename(`${file}.tmp`, file);
    t.ok(
      await waitFor(async () => (await fresh(filed, '/auth')).body === edited, 10_000),
      'the edited page is served without SIGHUP',
    );
    // No error block: the reload fails and the edited page stays.
    await writeFile(file, '<!doctype html><title>Broken</title>');
    t.ok(
      await waitFor(
        () => logged(filed.output(), { reload: 'invalid', key: 'login_page' }).length > 0,
        10_000,
      ),
      'the reload fails on the page, naming login_page',
    );
    t.equal((await fresh(filed, '/auth')).body, edited, 'a bad page keeps the one in force');
    // Written in place (no rename): seen too.
    await writeFile(file, FILE_PAGE);
    t.ok(
      await waitFor(async () => (await fresh(filed, '/auth')).body === FILE_PAGE, 10_000),
      'an in-place write is seen too',
    );
  },
);

/*
 * The browser side of session-cookie mode, in a real headless Chromium (Debian's `chromium`,
 * driven by puppeteer-core): login page, error block, cookie flags as the browser keeps them,
 * CSRF placeholder and check, a forged cross-origin form post, logout.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { chromiumPath, launchBrowser } from './helpers/browser.js';
import { type RunningGateway, startGateway } from './helpers/gateway.js';

const executable = chromiumPath();
if (executable === undefined) {
  // .ci/run installs chromium; a developer machine without it must not pass silently.
  throw new Error('chromium is not installed: apt-get install chromium (see .ci/run)');
}

/** Where the test leaves what a human may want to look at (git-ignored). */
const OUTPUT = join(process.cwd(), 'test-output');

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  return new Promise<{ port: number; close: () => Promise<void> }>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => resolve(body));
  });
}

const received: { item: string | null; headers: IncomingMessage['headers'] }[] = [];
const backend = await listen(async (req, res) => {
  if (req.method === 'GET' && req.url === '/app/page') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><title>Orders</title></head><body>
<h1>Orders</h1>
<form method="POST" action="/app/submit">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <label>Item <input name="item"></label>
  <button type="submit">Save</button>
</form></body></html>`);
    return;
  }
  if (req.method === 'POST' && req.url === '/app/submit') {
    const body = new URLSearchParams(await readAll(req));
    received.push({ item: body.get('item'), headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><p id="saved">Saved ${body.get('item')}</p>`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found');
});

const gw: RunningGateway = await startGateway({
  users: [{ username: 'alice', password: 'alice-password' }],
  config: {
    session_cookie: true,
    login_redirect_url: '/app/page',
    logout_redirect_url: '/auth',
    // Logins fail on purpose below; lockouts have their own tests.
    login_lockout: { max_failures: 0 },
  },
  routes: `routes:\n  - prefix: /app\n    target: http://127.0.0.1:${backend.port}/app\n`,
});
const GW = gw.url.replace('localhost', '127.0.0.1');

/** Another origin on the same host (same site, other port): its form posts carry the cookie. */
const attacker = await listen((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<!doctype html><body onload="document.forms[0].submit()">
<form method="POST" action="${GW}/app/submit">
  <input type="hidden" name="item" value="forged">
  <input type="hidden" name="csrf_token" value="guess">
</form></body>`);
});

const { browser, close } = await launchBrowser(executable);
t.teardown(async () => {
  await close();
  await gw.stop();
  await backend.close();
  await attacker.close();
});

const page = await browser.newPage();

t.test('the login page is served, and a wrong password shows the error block', async (t) => {
  const res = await page.goto(`${GW}/auth`);
  t.equal(res?.status(), 200);
  t.equal(res?.headers()['cache-control'], 'no-store');
  mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, 'login-page.png') });
  await page.type('input[name="username"]', 'alice');
  await page.type('input[name="password"]', 'not-the-password');
  const [answer] = await Promise.all([
    page.waitForNavigation(),
    page.click('form [type="submit"]'),
  ]);
  t.equal(answer?.status(), 401);
  const text = (await page.evaluate('document.body.innerText')) as string;
  t.match(text, /Invalid username, password/, 'the error message is visible on the page');
  t.notMatch(await page.content(), /\{\{ ?error ?\}\}/, 'no placeholder left');
});

t.test('login sets an HttpOnly cookie and lands on the page with a CSRF token', async (t) => {
  await page.goto(`${GW}/auth`);
  await page.type('input[name="username"]', 'alice');
  await page.type('input[name="password"]', 'alice-password');
  const [landed] = await Promise.all([
    page.waitForNavigation(),
    page.click('form [type="submit"]'),
  ]);
  t.equal(landed?.status(), 200);
  t.equal(new URL(page.url()).pathname, '/app/page', 'redirected to login_redirect_url');
  const cookies = await browser.cookies();
  const session = cookies.find((c) => c.name === 'session_token');
  t.ok(session, 'the browser kept the session cookie');
  t.equal(session?.httpOnly, true);
  t.equal(session?.secure, true);
  t.equal(session?.sameSite, 'Strict');
  t.equal(session?.path, '/');
  const visible = (await page.evaluate('document.cookie')) as string;
  t.notMatch(visible, /session_token/, 'JavaScript cannot read it');
  const token = await page.$eval(
    'input[name="csrf_token"]',
    (e) => (e as unknown as { value: string }).value,
  );
  t.match(token, /^[A-Za-z0-9_-]{44}$/, 'the placeholder was replaced by a token');
});

t.test('the form posts through the gateway; a forged cross-origin post is refused', async (t) => {
  await page.type('input[name="item"]', 'apples');
  const [saved] = await Promise.all([page.waitForNavigation(), page.click('form [type="submit"]')]);
  t.equal(saved?.status(), 200);
  t.equal(await page.$eval('#saved', (e) => e.textContent), 'Saved apples');
  t.equal(received.at(-1)?.item, 'apples', 'the backend received the form');
  t.notOk(received.at(-1)?.headers.cookie?.includes('session_token'), 'without our cookie');

  const before = received.length;
  const forged = await browser.newPage();
  const posted = forged.waitForResponse(
    (r) => r.url() === `${GW}/app/submit` && r.request().method() === 'POST',
  );
  await forged.goto(`http://127.0.0.1:${attacker.port}/`);
  const refused = await posted;
  t.equal(refused.status(), 403, 'the browser posted, the gateway refused');
  t.match(await refused.text(), /CSRF_/, 'as a CSRF refusal');
  t.equal(received.length, before, 'the backend never saw the forged post');
  await forged.close();
});

t.test('logout revokes the session: the protected page sends the browser to log in', async (t) => {
  const res = await page.goto(`${GW}/logout`);
  t.equal(new URL(page.url()).pathname, '/auth', 'sent to logout_redirect_url');
  t.equal(res?.status(), 200);
  const cookies = await browser.cookies();
  t.notOk(
    cookies.some((c) => c.name === 'session_token'),
    'the cookie is gone',
  );
  const after = await page.goto(`${GW}/app/page`);
  t.equal(after?.status(), 200, 'the login page');
  const landed = new URL(page.url());
  t.equal(landed.pathname, '/auth', 'redirected to the login page');
  t.equal(landed.searchParams.get('rd'), '/app/page', 'with the page to come back to');
  t.equal(after?.request().redirectChain()[0]?.response()?.status(), 302);
});

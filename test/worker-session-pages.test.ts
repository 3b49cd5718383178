// The pieces of session-cookie mode's pages, one by one: the HTTPS rule's host test, what
// counts as a browser form post, the forwarded scheme of a trusted proxy, the built-in pages
// and their headers, and where a failed login's page comes from (file, route, built-in),
// with the route's page fetched, bounded and cached against a real upstream.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { parseConfig } from '../conf/parse.js';
import { ERROR_BLOCK_BEGIN, ERROR_BLOCK_END, renderErrorBlock } from '../shared/error-block.js';
import type { ConfigSnapshot } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import {
  BUILTIN_STYLE_SOURCE,
  builtinLoginPage,
  signedInPage,
  signedOutPage,
} from '../worker/builtin-pages.js';
import { forwardedHttps } from '../worker/client-address.js';
import { LoginPages, type Page } from '../worker/login-page.js';
import { builtinPageHeaders, isBrowserForm, operatorPageHeaders } from '../worker/page-answer.js';
import { PAGE_TTL_MS } from '../worker/route-page.js';
import { Runtime } from '../worker/runtime.js';
import { isLoopbackHost } from '../worker/session-login.js';
import type { Exchange } from '../worker/uws-io.js';
import { inProcessNode } from './helpers/edge-services.js';

const FILES = { config: '/etc/pa/config.json', routes: '/etc/pa/routes.yml' };
const SECRET = 's'.repeat(64);

t.test('isLoopbackHost: the hosts browsers treat as secure over plain HTTP', async (t) => {
  for (const host of [
    'localhost',
    'localhost:8080',
    'LOCALHOST',
    'localhost.',
    'app.localhost:3000',
    '127.0.0.1',
    '127.0.0.1:8080',
    '127.8.9.10',
    '[::1]',
    '[::1]:8080',
    '[0:0:0:0:0:0:0:1]:80',
  ]) {
    t.ok(isLoopbackHost(host), host);
  }
  for (const host of [
    'example.test',
    'localhost.example.test',
    'mylocalhost',
    '128.0.0.1',
    '10.0.0.1:8080',
    '[::2]',
    '[::ffff:127.0.0.1]',
    '0.0.0.0',
    '192.168.1.10',
  ]) {
    t.notOk(isLoopbackHost(host), host);
  }
});

function exchange(headers: string[]): Exchange {
  return { headers } as unknown as Exchange;
}

t.test('isBrowserForm: a urlencoded body and an Accept naming text/html', async (t) => {
  const form = ['content-type', 'application/x-www-form-urlencoded; charset=UTF-8'];
  const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
  t.ok(isBrowserForm(exchange([...form, 'accept', browser])), "a browser's Accept");
  t.ok(isBrowserForm(exchange([...form, 'accept', 'TEXT/HTML'])), 'case-insensitive');
  t.ok(
    isBrowserForm(exchange([...form, 'accept', 'application/json', 'accept', 'text/html'])),
    'any Accept line',
  );
  t.notOk(isBrowserForm(exchange(form)), 'no Accept: an API client');
  t.notOk(isBrowserForm(exchange([...form, 'accept', '*/*'])), "curl's */*");
  t.notOk(isBrowserForm(exchange([...form, 'accept', 'application/json'])));
  t.notOk(isBrowserForm(exchange([...form, 'accept', 'text/htmlx'])), 'not a prefix match');
  t.notOk(
    isBrowserForm(exchange(['content-type', 'application/json', 'accept', browser])),
    'a JSON body is an API call whatever it accepts',
  );
});

t.test('forwardedHttps: every hop a trusted proxy reports must be https', async (t) => {
  const xfp = (...values: string[]) => values.flatMap((v) => ['x-forwarded-proto', v]);
  const fwd = (...values: string[]) => values.flatMap((v) => ['forwarded', v]);
  t.ok(forwardedHttps(xfp('https')));
  t.ok(forwardedHttps(xfp('HTTPS')));
  t.ok(forwardedHttps(xfp('https, https')));
  t.ok(forwardedHttps(xfp('https', 'https')));
  t.notOk(forwardedHttps([]), 'nothing said: plain');
  t.notOk(forwardedHttps(xfp('http')));
  t.notOk(forwardedHttps(xfp('https, http')), 'a plain hop in the list');
  t.notOk(forwardedHttps(xfp('https', 'http')), 'a plain hop on another line');
  t.notOk(forwardedHttps(xfp('')), 'empty');
  t.notOk(forwardedHttps(xfp('wss')));
  t.ok(forwardedHttps(fwd('for=1.2.3.4;proto=https')), 'RFC 7239');
  t.ok(forwardedHttps(fwd('for=1.2.3.4;proto="https", proto=https;for=5.6.7.8')));
  t.notOk(forwardedHttps(fwd('for=1.2.3.4;proto=https, for=5.6.7.8')), 'a hop without proto');
  t.notOk(forwardedHttps(fwd('for=1.2.3.4;proto=http')));
  t.notOk(forwardedHttps(fwd('for=1.2.3.4')));
  t.notOk(
    forwardedHttps([...xfp('http'), ...fwd('proto=https')]),
    'X-Forwarded-Proto decides when present',
  );
});

t.test('the built-in login page: self-contained, accessible, with an error block', async (t) => {
  const page = builtinLoginPage({ totp: false });
  t.match(page, /^<!doctype html>\n<html lang="en">/);
  t.notMatch(page, /<script|<link|<img|src=|url\(|@import/i, 'no script, no external asset');
  // No action: the form posts to the page's own URL (`/auth`, with forward-auth's `rd` kept).
  t.match(page, /<form method="post">/);
  for (const [id, autocomplete] of [
    ['username', 'username'],
    ['password', 'current-password'],
  ]) {
    t.match(page, new RegExp(`<label for="${id}">`), `${id} has a label`);
    t.match(
      page,
      new RegExp(
        `<input id="${id}" name="${id}" [^>]*autocomplete="${autocomplete}"[^>]* required`,
      ),
    );
  }
  t.notMatch(page, /totp_code/, 'no code field without login_via_otp');
  const withCode = builtinLoginPage({ totp: true });
  t.match(withCode, /<label for="totp_code">/);
  t.match(withCode, /<input id="totp_code" name="totp_code" [^>]*autocomplete="one-time-code"/);
  t.notMatch(withCode, /id="totp_code"[^>]* required/, 'the code is optional');
  const shown = renderErrorBlock(page, 'Invalid <username> or password');
  t.match(
    shown,
    `${ERROR_BLOCK_BEGIN}\n\n<p class="error" id="login-error" role="alert">Invalid &lt;username&gt; or password</p>\n\n${ERROR_BLOCK_END}`,
  );
  t.match(page, /<!--\n<p class="error"/, 'commented out until rendered');
  const style = /<style>([\s\S]*)<\/style>/.exec(page)?.[1] ?? '';
  t.equal(
    BUILTIN_STYLE_SOURCE,
    `'sha256-${createHash('sha256').update(style).digest('base64')}'`,
    "the CSP hash is the style element's",
  );
  const signed = signedInPage('<b>al"ice</b>');
  t.match(signed, '<strong>&lt;b&gt;al&quot;ice&lt;/b&gt;</strong>', 'the name is escaped');
  t.match(signed, '<a href="/logout">');
  t.notMatch(signed, /<form/, 'links only: a form would be subject to form-action on redirect');
  const out = signedOutPage();
  t.match(out, '<a href="/auth">Sign in again</a>');
  t.equal(/<style>([\s\S]*)<\/style>/.exec(out)?.[1], style, 'the same style, the same hash');
});

function configOf(extra: Record<string, unknown>) {
  return parseConfig(
    { secret: SECRET, session_cookie: true, csrf_token: false, ...extra },
    { routes: [] },
    FILES,
  ).config;
}

t.test(
  'page headers: strict CSP for ours, framing and form targets for the operator',
  async (t) => {
    const built = new Map(builtinPageHeaders(configOf({})));
    t.equal(
      built.get('content-security-policy'),
      `default-src 'none'; style-src ${BUILTIN_STYLE_SOURCE}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
    t.equal(built.get('x-content-type-options'), 'nosniff');
    t.equal(built.get('referrer-policy'), 'same-origin');
    t.equal(built.get('x-frame-options'), 'DENY');
    const away = new Map(
      builtinPageHeaders(configOf({ login_redirect_url: 'https://app.test:8443/home?x=1' })),
    );
    t.match(
      away.get('content-security-policy'),
      "form-action 'self' https://app.test:8443;",
      "the login's redirect target may receive the form's navigation",
    );
    const local = new Map(builtinPageHeaders(configOf({ login_redirect_url: '/home' })));
    t.match(local.get('content-security-policy'), "form-action 'self';");
    const rd = configOf({ forward_auth: { redirect_hosts: ['app.test', 'admin.test:8443'] } });
    t.match(
      new Map(builtinPageHeaders(rd)).get('content-security-policy'),
      "form-action 'self' app.test admin.test:8443;",
      "a login's rd may send the browser to forward_auth.redirect_hosts",
    );
    t.equal(
      new Map(operatorPageHeaders(rd)).get('content-security-policy'),
      "form-action 'self' app.test admin.test:8443; frame-ancestors 'none'",
    );
    const operator = new Map(operatorPageHeaders(configOf({})));
    t.equal(operator.get('content-security-policy'), "form-action 'self'; frame-ancestors 'none'");
    t.equal(operator.get('x-content-type-options'), 'nosniff');
  },
);

const GOOD_PAGE = `<html><body>mine ${ERROR_BLOCK_BEGIN}<!--{{ error }}-->${ERROR_BLOCK_END}</body></html>`;

t.test('where a failed login is shown: file, else the public route, else built-in', async (t) => {
  let hits = 0;
  const seen: { url: string; accept: string | undefined; proto: string | undefined }[] = [];
  const upstream = createServer((req, res) => {
    hits++;
    seen.push({
      url: req.url ?? '',
      accept: req.headers.accept,
      proto: req.headers['x-forwarded-proto'] as string | undefined,
    });
    const path = (req.url ?? '').split('?')[0];
    if (path === '/site/login') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(GOOD_PAGE);
    } else if (path === '/site/big') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`${GOOD_PAGE}${' '.repeat(1024 * 1024)}`);
    } else if (path === '/site/json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    } else if (path === '/site/plain') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<p>no block</p>');
    } else if (path === '/site/slow') {
      setTimeout(() => res.end(GOOD_PAGE), 2_000);
    } else {
      res.writeHead(500);
      res.end();
    }
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const node = await inProcessNode();
  t.teardown(async () => {
    upstream.closeAllConnections();
    upstream.close();
    await node.close();
  });
  const routes = [
    { prefix: '/pub', target: `${origin}/site`, secure: false },
    { prefix: '/app', target: `${origin}/site` },
  ];
  const warnings: Record<string, unknown>[] = [];
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: (msg, fields) => warnings.push({ msg, ...fields }),
    error: () => {},
  };
  async function pagesFor(extra: Record<string, unknown>, file?: string) {
    const snapshot: ConfigSnapshot = {
      generation: 1,
      keyRing: { active: SECRET, verifyOnly: [] },
      configDir: '/virtual',
      dataDir: node.dataDir,
      files: FILES,
      raw: {
        config: {
          secret: SECRET,
          session_cookie: true,
          csrf_token: false,
          client_timeout: 500,
          ...extra,
        },
        routes: { routes },
      },
    };
    const rt = await Runtime.build(snapshot, node.services);
    return new LoginPages(rt.config, file, rt.routes, (p) => p === '/auth');
  }
  const failure = async (pages: LoginPages): Promise<Page> => await pages.failurePage(log);

  const builtin = await pagesFor({});
  t.match((await failure(builtin)).html, /<h1>Sign in<\/h1>/, 'nothing configured: built-in');
  t.equal(builtin.form, await failure(builtin), 'the same page as GET /auth');
  t.equal(hits, 0);

  const fromFile = await pagesFor({ logout_redirect_url: '/pub/login' }, GOOD_PAGE);
  t.equal((await failure(fromFile)).html, GOOD_PAGE, 'the file wins over the route');
  t.equal(fromFile.form.html, GOOD_PAGE, 'and is GET /auth');
  t.equal(hits, 0, 'the route is not asked');

  const fromRoute = await pagesFor({ logout_redirect_url: '/pub/login?lang=fr#top' });
  const [first, second] = await Promise.all([failure(fromRoute), failure(fromRoute)]);
  t.equal(first?.html, GOOD_PAGE, "the route's page");
  t.equal(second?.html, GOOD_PAGE, 'concurrent failures share one fetch');
  t.equal((await failure(fromRoute)).html, GOOD_PAGE);
  t.equal(hits, 1, `cached for ${PAGE_TTL_MS} ms`);
  t.same(seen[0], { url: '/site/login?lang=fr', accept: 'text/html', proto: 'http' });
  t.match(
    new Map(first?.headers).get('content-security-policy'),
    /^form-action/,
    "the operator's page gets the operator headers",
  );
  t.match(fromRoute.form.html, /<h1>Sign in<\/h1>/, 'GET /auth stays built-in');

  const unusable: [string, RegExp][] = [
    ['/pub/big', /larger than 1048576 bytes/],
    ['/pub/json', /not text\/html/],
    ['/pub/plain', /has no error block/],
    ['/pub/missing', /answered 500/],
    ['/pub/slow', /Timeout|Abort/i],
  ];
  for (const [url, reason] of unusable) {
    warnings.length = 0;
    const pages = await pagesFor({ logout_redirect_url: url });
    const page = await failure(pages);
    t.match(page.html, /<h1>Sign in<\/h1>/, `${url}: the built-in page`);
    t.match(
      new Map(page.headers).get('content-security-policy'),
      /^default-src 'none'/,
      `${url}: with its own headers`,
    );
    t.equal(warnings.length, 1, `${url}: logged once`);
    t.match(warnings[0], { url, route: '/pub', reason }, `${url}: why`);
    await failure(pages);
    t.equal(warnings.length, 1, `${url}: the failure is cached too`);
  }

  const before = hits;
  for (const url of ['/app/login', '/auth', 'https://elsewhere.test/login', '/nowhere']) {
    const pages = await pagesFor({ logout_redirect_url: url });
    t.match((await failure(pages)).html, /<h1>Sign in<\/h1>/, `${url}: built-in`);
  }
  t.equal(hits, before, 'secure routes, gateway paths and other sites are never fetched');
});

// CSRF placeholders in proxied HTML pages, through the real CLI: identity, chunked with a
// placeholder split between writes, gzip / x-gzip / deflate (both framings) / br bodies, what
// is left alone (not HTML, HEAD, 206, unknown codings, the feature off), the head of a
// rewritten page, a corrupt compressed body, and a slow client on a large compressed page.

import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { request } from 'node:http';
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  deflateRawSync,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateRawSync,
  inflateSync,
} from 'node:zlib';
import t, { type Test } from 'tap';
import { CSRF_TOKEN_LENGTH, CsrfTokens } from '../worker/csrf-token.js';
import { logged, startGateway, waitFor } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const SECRET = 'csrf-placeholder-test-secret-0123456789abcdef-0123456789abcdef-0123456789';
const PAGE =
  '<html><form><input name="csrf_token" value="{{ csrf_token }}"><p>{{csrf_token}}</p></form></html>';
const TOKEN_RE = /value="([A-Za-z0-9_-]*)"><p>([A-Za-z0-9_-]*)<\/p>/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `parts` with a pause between them, so each leaves as its own chunk. */
async function writeParts(res: ServerResponse, parts: readonly (string | Buffer)[]): Promise<void> {
  for (const [i, part] of parts.entries()) {
    if (i > 0) await sleep(15);
    res.write(part);
  }
  res.end();
}

/** Splits `bytes` into `n` nearly equal parts. */
function split(bytes: Buffer, n: number): Buffer[] {
  const size = Math.ceil(bytes.length / n);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

const ENCODERS: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => gzipSync(b),
  'x-gzip': (b) => gzipSync(b),
  deflate: (b) => deflateSync(b),
  'deflate-raw': (b) => deflateRawSync(b),
  br: (b) => brotliCompressSync(b),
};
const DECODERS: Record<string, (b: Buffer) => Buffer> = {
  gzip: gunzipSync,
  'x-gzip': gunzipSync,
  deflate: inflateSync,
  'deflate-raw': inflateRawSync,
  br: brotliDecompressSync,
};

/**
 * The large page of the backpressure test (made by that test): base64 of random bytes
 * compresses poorly, so the gzip body is about 30 MiB too.
 */
let BIG_PAGE = Buffer.alloc(0);
let BIG_GZIP = Buffer.alloc(0);
let bigWritten = 0;
function makeBigPage(): void {
  if (BIG_PAGE.length > 0) return;
  BIG_PAGE = Buffer.from(
    `<html><input value="{{ csrf_token }}">${randomBytes(30 * 1024 * 1024).toString('base64')}<p>{{csrf_token}}</p></html>`,
  );
  BIG_GZIP = gzipSync(BIG_PAGE, { level: 1 });
}
/** Answers to /html/stalled being held, and what lets them finish. */
let stalled = 0;
let release!: () => void;
const released = new Promise<void>((r) => {
  release = r;
});

/** The upstream's answer to /html/big was closed before it was all written. */
let bigCut = false;

const upstream = await startUpstream((req, res) => {
  const url = req.url ?? '';
  const head = {
    'content-type': 'text/html; charset=utf-8',
    etag: '"v1"',
    'accept-ranges': 'bytes',
    'cache-control': 'public, max-age=3600',
    'content-md5': 'Q2hlY2sgSW50ZWdyaXR5IQ==',
    expires: 'Thu, 01 Dec 2099 16:00:00 GMT',
    'last-modified': 'Tue, 01 Dec 2026 16:00:00 GMT',
  };
  if (url === '/html/length') {
    res.writeHead(200, { ...head, 'content-length': Buffer.byteLength(PAGE) });
    res.end(PAGE);
    return true;
  }
  if (url === '/html/split') {
    // Both placeholders cut in several places, one write each.
    res.writeHead(200, { 'content-type': 'TEXT/HTML' });
    void writeParts(res, [
      '<html><form><input name="csrf_token" value="{',
      '{ csrf',
      '_token ',
      '}',
      '}"><p>{{csrf_',
      'token}',
      '}</p></form></html>',
    ]);
    return true;
  }
  const coded = /^\/html\/coded\/([a-z-]+)$/.exec(url);
  if (coded) {
    const name = coded[1]!;
    const body = ENCODERS[name]!(Buffer.from(PAGE));
    const coding = name === 'deflate-raw' ? 'deflate' : name;
    res.writeHead(200, { ...head, 'content-encoding': coding });
    // One compressed byte per write at the start (a deflate body's framing is read from two).
    void writeParts(res, [body.subarray(0, 1), body.subarray(1, 2), ...split(body.subarray(2), 4)]);
    return true;
  }
  if (url === '/html/zstd' || url === '/html/stacked') {
    const coding = url === '/html/zstd' ? 'zstd' : 'gzip, br';
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': coding, etag: '"z"' });
    res.end(PAGE);
    return true;
  }
  if (url === '/html/partial') {
    res.writeHead(206, {
      'content-type': 'text/html',
      'content-range': `bytes 0-${PAGE.length - 1}/${PAGE.length * 2}`,
    });
    res.end(PAGE);
    return true;
  }
  if (url === '/plain') {
    res.writeHead(200, {
      'content-type': 'text/plain',
      etag: '"p"',
      'content-length': PAGE.length,
    });
    res.end(PAGE);
    return true;
  }
  if (url === '/html/empty-gzip') {
    res.writeHead(200, {
      'content-type': 'text/html',
      'content-encoding': 'gzip',
      'content-length': 0,
    });
    res.end();
    return true;
  }
  if (url === '/html/corrupt') {
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    res.end(Buffer.from('this is not gzip at all'));
    return true;
  }
  if (url === '/html/corrupt-late') {
    // A valid start, then garbage: the page is already on its way when the error shows.
    const good = gzipSync(Buffer.from(PAGE.repeat(2000)));
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    void writeParts(res, [good.subarray(0, good.length - 40), randomBytes(4096)]);
    return true;
  }
  if (url.startsWith('/html/truncated/')) {
    // A gzip body cut short, as a backend that died mid-body with a framing that still ends
    // cleanly: half of it (inside the deflate data), or missing only its end.
    const good = gzipSync(Buffer.from(PAGE.repeat(50)));
    const cut = url.slice('/html/truncated/'.length);
    const keep = cut === 'half' ? good.length >> 1 : good.length - Number(cut);
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    res.end(good.subarray(0, keep));
    return true;
  }
  if (url === '/html/stalled') {
    // The start of a gzip page, then nothing until the test releases it: the edge holds its
    // zlib streams open meanwhile.
    const body = gzipSync(Buffer.from(PAGE));
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    res.write(body.subarray(0, 10));
    stalled++;
    void released.then(() => res.end(body.subarray(10)));
    return true;
  }
  if (url === '/html/big') {
    bigWritten = 0;
    bigCut = false;
    res.on('close', () => {
      bigCut = !res.writableFinished;
    });
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    void (async () => {
      for (const part of split(BIG_GZIP, BIG_GZIP.length / 65536)) {
        if (res.destroyed) return;
        const ok = res.write(part);
        bigWritten += part.length;
        if (!ok) await new Promise((r) => res.once('drain', r));
      }
      res.end();
    })();
    return true;
  }
  return false;
});

const routes = `routes:
  - prefix: /app
    target: ${upstream.origin}
  - prefix: /pub
    target: ${upstream.origin}
    secure: false
`;
// One at a time: three starting at once on a loaded machine outlast the readiness wait.
const gw = await startGateway({
  routes,
  config: { secret: SECRET, session_cookie: true, num_instances: 1, client_timeout: 15_000 },
});
const noCsrf = await startGateway({
  routes,
  config: { secret: SECRET, session_cookie: true, csrf_token: false, num_instances: 1 },
});
const noCookie = await startGateway({ routes, config: { secret: SECRET, num_instances: 1 } });
t.teardown(async () => {
  await Promise.all([gw.stop(), noCsrf.stop(), noCookie.stop()]);
  await upstream.close();
});

interface Session {
  cookie: string;
  token: string;
  tokenId: string;
}

async function logIn(url: string): Promise<Session> {
  const res = await fetch(`${url}/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
  });
  const body = (await res.json()) as { token: string; token_id: string };
  const set = res.headers.getSetCookie().find((c) => c.startsWith('session_token='));
  return {
    cookie: set ? set.slice(0, set.indexOf(';')) : '',
    token: body.token,
    tokenId: body.token_id,
  };
}

const session = await logIn(gw.url);
const tokens = CsrfTokens.ofSecret(SECRET);

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with node:http (no decompression, headers as sent). */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The two token values a rewritten PAGE holds; both must be equal and valid for `tokenId`. */
function checkPage(t: Test, html: string, tokenId: string): string {
  const m = TOKEN_RE.exec(html);
  t.ok(m, `the page keeps its shape: ${html.slice(0, 200)}`);
  const [, first = '', second = ''] = m ?? [];
  t.equal(first.length, CSRF_TOKEN_LENGTH, 'a token replaced the spaced spelling');
  t.equal(second, first, 'the compact spelling got the same token');
  const check = tokens.verify(first, tokenId, Math.floor(Date.now() / 1000));
  t.ok(check.ok, `the token is valid for the session: ${JSON.stringify(check)}`);
  return first;
}

const cookie = { cookie: session.cookie };

t.test('an identity page: token bound to the session, head describes the new body', async (t) => {
  const res = await get(`${gw.url}/app/html/length`, cookie);
  t.equal(res.status, 200);
  const token = checkPage(t, res.body.toString(), session.tokenId);
  t.equal(res.headers['content-length'], undefined, 'no Content-Length: the length changed');
  t.equal(res.headers['transfer-encoding'], 'chunked');
  t.equal(
    res.headers['cache-control'],
    'private, no-store',
    'no cache may keep a page with a token',
  );
  for (const name of ['etag', 'accept-ranges', 'content-md5', 'expires']) {
    t.equal(res.headers[name], undefined, `${name} dropped`);
  }
  t.equal(res.headers['last-modified'], 'Tue, 01 Dec 2026 16:00:00 GMT', 'other fields pass');
  const again = await get(`${gw.url}/app/html/length`, cookie);
  t.not(checkPage(t, again.body.toString(), session.tokenId), token, 'a new token per page');
});

t.test('placeholders cut between chunks are replaced', async (t) => {
  const res = await get(`${gw.url}/app/html/split`, cookie);
  t.equal(res.status, 200);
  checkPage(t, res.body.toString(), session.tokenId);
});

for (const name of Object.keys(ENCODERS)) {
  t.test(`a ${name} page is decoded, rewritten and encoded again`, async (t) => {
    const res = await get(`${gw.url}/app/html/coded/${name}`, {
      ...cookie,
      'accept-encoding': 'gzip, deflate, br',
    });
    t.equal(res.status, 200);
    const coding = name === 'deflate-raw' ? 'deflate' : name;
    t.equal(res.headers['content-encoding'], coding, 'the same coding');
    t.equal(res.headers['content-length'], undefined);
    t.equal(res.headers['transfer-encoding'], 'chunked');
    t.equal(res.headers.etag, undefined);
    const decoded = DECODERS[name]!(res.body);
    checkPage(t, decoded.toString(), session.tokenId);
  });
}

t.test('a bearer session on a secure route binds the token to that session', async (t) => {
  const bearer = await logIn(gw.url);
  const res = await get(`${gw.url}/app/html/length`, { authorization: `Bearer ${bearer.token}` });
  t.equal(res.status, 200);
  checkPage(t, res.body.toString(), bearer.tokenId);
});

t.test('public routes: the cookie session if valid, else the empty string', async (t) => {
  const withCookie = await get(`${gw.url}/pub/html/length`, cookie);
  checkPage(t, withCookie.body.toString(), session.tokenId);
  const anonymous: Record<string, string>[] = [
    {},
    { cookie: 'session_token=forged' },
    { cookie: 'other=1' },
  ];
  for (const headers of anonymous) {
    const res = await get(`${gw.url}/pub/html/length`, headers);
    t.equal(res.status, 200);
    t.equal(
      res.body.toString(),
      PAGE.replaceAll('{{ csrf_token }}', '').replaceAll('{{csrf_token}}', ''),
      `${JSON.stringify(headers)}: no session, no token, no template left`,
    );
    t.equal(res.headers['cache-control'], 'private, no-store');
  }
});

t.test('what is left alone', async (t) => {
  const plain = await get(`${gw.url}/app/plain`, cookie);
  t.equal(plain.body.toString(), PAGE, 'text/plain: the placeholder stays');
  t.equal(plain.headers['content-length'], String(PAGE.length));
  t.equal(plain.headers.etag, '"p"');
  const partial = await get(`${gw.url}/app/html/partial`, cookie);
  t.equal(partial.status, 206);
  t.equal(partial.body.toString(), PAGE, '206: a part of a page is not rewritten');
  t.equal(partial.headers['content-range'], `bytes 0-${PAGE.length - 1}/${PAGE.length * 2}`);
  for (const path of ['/app/html/zstd', '/app/html/stacked']) {
    const res = await get(`${gw.url}${path}`, cookie);
    t.equal(res.body.toString(), PAGE, `${path}: a coding the gateway cannot undo passes as is`);
    t.equal(res.headers.etag, '"z"');
  }
  await get(`${gw.url}/app/html/zstd`, cookie);
  const reported = () =>
    logged(gw.output(), {
      message: 'HTML page passed without CSRF placeholders replaced: content coding not handled',
    });
  t.ok(await waitFor(() => reported().length === 2, 3000), 'logged');
  t.same(
    reported().map((l) => l.coding),
    ['zstd', 'gzip, br'],
    'once per coding',
  );
  const empty = await get(`${gw.url}/app/html/empty-gzip`, cookie);
  t.equal(empty.status, 200);
  t.equal(empty.body.length, 0, 'an empty compressed body stays empty');
});

t.test('HEAD: no body, the head a GET would get', async (t) => {
  const res = await get(`${gw.url}/app/html/length`, cookie, 'HEAD');
  t.equal(res.status, 200);
  t.equal(res.body.length, 0);
  t.equal(res.headers['content-length'], undefined, "the upstream's length would be wrong");
  t.equal(res.headers['cache-control'], 'private, no-store');
  t.equal(res.headers.etag, undefined);
  const plain = await get(`${gw.url}/app/plain`, cookie, 'HEAD');
  t.equal(plain.headers['content-length'], String(PAGE.length), 'not HTML: untouched');
});

t.test('Accept-Encoding upstream lists only codings the gateway can rewrite', async (t) => {
  const cases: [string, string][] = [
    ['gzip, deflate, br, zstd', 'gzip, deflate, br'],
    ['br;q=1.0, zstd;q=0.9, *;q=0.1', 'br;q=1.0'],
    ['zstd', 'identity'],
    ['gzip', 'gzip'],
  ];
  for (const [sent, seen] of cases) {
    const res = await fetch(`${gw.url}/app/echo`, {
      headers: { ...cookie, 'accept-encoding': sent },
    });
    const echo = (await res.json()) as { headers: Record<string, string> };
    t.equal(echo.headers['accept-encoding'], seen, sent);
  }
  const off = await fetch(`${noCsrf.url}/pub/echo`, { headers: { 'accept-encoding': 'zstd, br' } });
  const echo = (await off.json()) as { headers: Record<string, string> };
  t.equal(echo.headers['accept-encoding'], 'zstd, br', 'feature off: untouched');
});

t.test('feature off (csrf_token: false, or no session_cookie): pages untouched', async (t) => {
  for (const g of [noCsrf, noCookie]) {
    const s = await logIn(g.url);
    const res = await get(`${g.url}/app/html/length`, { authorization: `Bearer ${s.token}` });
    t.equal(res.body.toString(), PAGE);
    t.equal(res.headers['content-length'], String(PAGE.length));
    t.equal(res.headers.etag, '"v1"');
    t.equal(res.headers['cache-control'], 'public, max-age=3600');
  }
});

t.test('a corrupt compressed body: 502 before any byte, a cut after; logged', async (t) => {
  const early = await get(`${gw.url}/app/html/corrupt`, cookie);
  t.equal(early.status, 502);
  t.equal(JSON.parse(early.body.toString()).error, 'UPSTREAM_FAILED');
  const late = await get(`${gw.url}/app/html/corrupt-late`, cookie).then(
    () => 'complete',
    (err: Error & { code?: string }) => err.code ?? err.message,
  );
  t.not(late, 'complete', 'the client sees the page cut, never a complete page');
  // Cut inside the deflate data, in the last deflate bytes and the trailer, the whole trailer
  // (CRC-32 and size), the size alone, one byte. Whether the client sees a cut or a 502 depends
  // on whether re-encoded bytes had left when the decoder found the end missing (zlib works off
  // the loop): both are right, a complete 200 page never is.
  const cuts = ['half', '10', '8', '4', '1'];
  for (const cut of cuts) {
    const truncated = await get(`${gw.url}/app/html/truncated/${cut}`, cookie).then(
      (answer) => (answer.status === 200 ? 'complete' : `answered ${answer.status}`),
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    t.not(truncated, 'complete', `a gzip body cut short (${cut}) never passes as complete`);
    t.ok(truncated === 'answered 502' || !truncated.startsWith('answered'), truncated);
  }
  const failures = () =>
    logged(gw.output(), { message: 'request failed', code: 'UPSTREAM_FAILED' }).filter((l) =>
      String(l.cause).startsWith('corrupt gzip body from the upstream'),
    );
  t.ok(
    await waitFor(() => failures().length >= 2 + cuts.length, 3000),
    'each is logged with its cause',
  );
  const after = await get(`${gw.url}/app/html/length`, cookie);
  t.equal(after.status, 200, 'the edge serves on');
});

t.test('compressed pages rewritten at once are capped per edge: beyond, 503', async (t) => {
  // MAX_RECODED_BODIES (worker/recoded-body.ts) pages held open on the one edge.
  const held = Array.from({ length: 128 }, () => get(`${gw.url}/app/html/stalled`, cookie));
  t.ok(await waitFor(() => stalled >= 128, 10_000), `${stalled} pages held open`);
  let over: Answer | undefined;
  // The last streams open when their first bytes reach the edge: retry briefly until full.
  await waitFor(async () => {
    over = await get(`${gw.url}/app/html/coded/gzip`, cookie);
    return over.status === 503;
  }, 5_000);
  t.equal(over?.status, 503, 'one more page is refused');
  t.equal(JSON.parse(String(over?.body)).error, 'OVERLOADED');
  t.equal(over?.headers['retry-after'], '1');
  const plain = await get(`${gw.url}/app/html/length`, cookie);
  t.equal(plain.status, 200, 'an identity page needs no zlib state: served');
  release();
  const answers = await Promise.all(held);
  t.ok(
    answers.every((a) => a.status === 200),
    'the held pages all complete',
  );
  const after = await get(`${gw.url}/app/html/coded/gzip`, cookie);
  t.equal(after.status, 200, 'places freed: compressed pages are rewritten again');
});

t.test('a slow client on a large gzip page: the upstream waits, every byte arrives', async (t) => {
  makeBigPage();
  const received: Buffer[] = [];
  let receivedBytes = 0;
  const done = new Promise<{ headers: IncomingHttpHeaders }>((resolve, reject) => {
    const req = request(
      `${gw.url}/app/html/big`,
      { headers: { ...cookie, 'accept-encoding': 'gzip' }, agent: false },
      (res) => {
        res.pause();
        const stalled = async () => {
          // The client reads nothing: the upstream must stop being read. Buffers fill slowly on
          // a loaded machine: wait until the upstream's count holds still for a second.
          let first = -1;
          for (let i = 0; i < 20 && first !== bigWritten; i++) {
            first = bigWritten;
            await sleep(1000);
          }
          t.equal(bigWritten, first, `the upstream stalled at ${first} bytes`);
          t.ok(
            first > 0 && first < BIG_GZIP.length * 0.8,
            `long before the end (${BIG_GZIP.length})`,
          );
          res.on('data', (c: Buffer) => {
            received.push(c);
            receivedBytes += c.length;
          });
          res.on('end', () => resolve({ headers: res.headers }));
          res.resume();
        };
        res.on('error', reject);
        void stalled();
      },
    );
    req.on('error', reject);
    req.end();
  });
  const { headers } = await done;
  t.equal(headers['content-encoding'], 'gzip');
  t.ok(receivedBytes > 0);
  const page = gunzipSync(Buffer.concat(received), { finishFlush: constants.Z_SYNC_FLUSH });
  t.equal(page.length, BIG_PAGE.length - 16 - 14 + 2 * CSRF_TOKEN_LENGTH, 'every byte');
  const text = page.toString('latin1');
  const first = /value="([A-Za-z0-9_-]{44})"/.exec(text.slice(0, 100))?.[1] ?? '';
  t.ok(tokens.verify(first, session.tokenId, Math.floor(Date.now() / 1000)).ok, 'token valid');
  t.ok(text.endsWith(`<p>${first}</p></html>`), 'the last placeholder too');
  const middle = text.slice(20 + 44, -(3 + 44 + 11));
  const sent = BIG_PAGE.subarray(20 + 16, BIG_PAGE.length - (3 + 14 + 11)).toString('latin1');
  t.ok(middle === sent, 'the bytes in between are unchanged');
});

t.test(
  'a client gone in the middle of a compressed page: the upstream is dropped too',
  async (t) => {
    makeBigPage();
    await new Promise<void>((resolve, reject) => {
      const req = request(
        `${gw.url}/app/html/big`,
        { headers: { ...cookie, 'accept-encoding': 'gzip' }, agent: false },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', () => {});
      req.on('close', resolve);
      setTimeout(() => reject(new Error('no answer')), 20_000);
      req.end();
    });
    t.ok(await waitFor(() => bigCut, 10_000), 'the upstream connection was closed early');
    const after = await get(`${gw.url}/app/html/length`, cookie);
    t.equal(after.status, 200, 'the edge serves on');
    const finished = () => logged(gw.output(), { path: '/app/html/big', status: 499 });
    t.ok(
      await waitFor(() => finished().length === 1, 5000),
      'the request is over: logged once as 499',
    );
  },
);

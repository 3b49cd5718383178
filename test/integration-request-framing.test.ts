// RFC 9112 section 6 on the way in: a body's length must be unambiguous, or the bytes after it
// could be read as another request (request smuggling). Each case sends a request whose framing
// is wrong, with a second request right behind it in the same write: the first is refused (400
// or 501, connection closed), the second never reaches the upstream.
import t, { type Test } from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { type RawResult, rawExchange } from './helpers/raw-http.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const seen: string[] = [];
upstream.server.on('request', (req) => seen.push(`${req.method} ${req.url}`));
const gw: RunningGateway = await startGateway({
  routes: `routes:
  - prefix: /
    target: ${upstream.origin}
    secure: false
`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
const CHUNKED_BODY = `5\r\nhello\r\n0\r\n\r\n`;

type Case = [name: string, headers: string, body: string, code: string];

const CASES: Case[] = [
  [
    'two Content-Length, 5 then 46',
    'Content-Length: 5\r\nContent-Length: 46\r\n',
    'hello',
    'BAD_FRAMING',
  ],
  [
    'two Content-Length, 46 then 5',
    'Content-Length: 46\r\nContent-Length: 5\r\n',
    'hello',
    'BAD_FRAMING',
  ],
  [
    'two equal Content-Length',
    'Content-Length: 5\r\nContent-Length: 5\r\n',
    'hello',
    'BAD_FRAMING',
  ],
  ['Content-Length list 5, 5', 'Content-Length: 5, 5\r\n', 'hello', 'BAD_FRAMING'],
  ['Content-Length list 5, 46', 'Content-Length: 5, 46\r\n', 'hello', 'BAD_FRAMING'],
  ['Content-Length +5', 'Content-Length: +5\r\n', 'hello', 'BAD_FRAMING'],
  ['Content-Length -1', 'Content-Length: -1\r\n', 'hello', 'BAD_FRAMING'],
  ['Content-Length 5a', 'Content-Length: 5a\r\n', 'hello', 'BAD_FRAMING'],
  ['Content-Length 0x5', 'Content-Length: 0x5\r\n', 'hello', 'BAD_FRAMING'],
  ['Content-Length empty', 'Content-Length:\r\n', 'hello', 'BAD_FRAMING'],
  ['Content-Length huge', 'Content-Length: 99999999999999999999\r\n', 'hello', 'BAD_FRAMING'],
  ['Transfer-Encoding gzip', 'Transfer-Encoding: gzip\r\n', CHUNKED_BODY, 'BAD_FRAMING'],
  ['Transfer-Encoding identity', 'Transfer-Encoding: identity\r\n', CHUNKED_BODY, 'BAD_FRAMING'],
  ['Transfer-Encoding foo', 'Transfer-Encoding: foo\r\n', CHUNKED_BODY, 'BAD_FRAMING'],
  [
    'Transfer-Encoding chunked, gzip',
    'Transfer-Encoding: chunked, gzip\r\n',
    CHUNKED_BODY,
    'BAD_FRAMING',
  ],
  [
    'Transfer-Encoding chunked, chunked',
    'Transfer-Encoding: chunked, chunked\r\n',
    CHUNKED_BODY,
    'BAD_FRAMING',
  ],
  ['Transfer-Encoding xchunked', 'Transfer-Encoding: xchunked\r\n', CHUNKED_BODY, 'BAD_FRAMING'],
  [
    'Transfer-Encoding chunked;q=1',
    'Transfer-Encoding: chunked;q=1\r\n',
    CHUNKED_BODY,
    'BAD_FRAMING',
  ],
  ['Transfer-Encoding empty', 'Transfer-Encoding:\r\n', CHUNKED_BODY, 'BAD_FRAMING'],
  ['Transfer-Encoding Chunked', 'Transfer-Encoding: Chunked\r\n', CHUNKED_BODY, 'BAD_FRAMING'],
  [
    'two Transfer-Encoding, gzip then chunked',
    'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n',
    CHUNKED_BODY,
    'TRANSFER_CODING_NOT_SUPPORTED',
  ],
  [
    'two Transfer-Encoding, chunked then gzip',
    'Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n',
    CHUNKED_BODY,
    'BAD_FRAMING',
  ],
  [
    'Transfer-Encoding gzip, chunked',
    'Transfer-Encoding: gzip, chunked\r\n',
    CHUNKED_BODY,
    'TRANSFER_CODING_NOT_SUPPORTED',
  ],
  [
    'Transfer-Encoding and an empty Content-Length',
    'Transfer-Encoding: chunked\r\nContent-Length:\r\n',
    CHUNKED_BODY,
    'BAD_FRAMING',
  ],
];

/**
 * The request was refused: by the gateway (its status and code), or by uWS itself, which answers
 * some malformed framings with its own bodiless 400/505 before or after the handler ran.
 */
function refused(t: Test, name: string, result: RawResult, code: string): void {
  const first = result.responses[0];
  if (first !== undefined) {
    t.ok(first.status >= 400, `${name}: refused (${first.status})`);
    if (first.body.length > 0) {
      t.equal(JSON.parse(first.body.toString()).error, code, `${name}: code`);
      t.equal(first.status, code === 'BAD_FRAMING' ? 400 : 501, `${name}: status`);
    }
    t.equal(result.responses.length, 1, `${name}: one answer only`);
  }
  t.ok(result.closed, `${name}: the connection is closed`);
}

t.test('ambiguous framing is refused and nothing after it is served', async (t) => {
  for (const [name, headers, body, code] of CASES) {
    const request = `POST /framing HTTP/1.1\r\nHost: x\r\n${headers}\r\n${body}`;
    // Either the refusal arrives, or (a request was already buffered behind it) uWS drops the
    // connection before answering: both end the exchange; nothing is served after it.
    refused(t, name, await rawExchange(gw.port, [request + SMUGGLED], { waitMs: 1500 }), code);
  }
  t.notOk(seen.includes('GET /smuggled'), 'the smuggled request never reached the upstream');
  t.notOk(seen.includes('POST /framing'), 'no ambiguous request reached the upstream');
});

t.test('framing is judged first: another fault in the same request does not hide it', async (t) => {
  for (const [name, extra] of [
    ['two Host headers', 'Host: b.test\r\n'],
    ['an overlong method', ''],
    ['a bad path', ''],
  ] as const) {
    const method = name === 'an overlong method' ? 'X'.repeat(40) : 'POST';
    const path = name === 'a bad path' ? '/a;b' : '/framing';
    const request =
      `${method} ${path} HTTP/1.1\r\nHost: x\r\n${extra}` +
      'Content-Length: 5\r\nContent-Length: 46\r\n\r\nhello';
    refused(
      t,
      name,
      await rawExchange(gw.port, [request + SMUGGLED], { waitMs: 1500 }),
      'BAD_FRAMING',
    );
  }
  t.notOk(seen.includes('GET /smuggled'));
});

t.test('ambiguous framing alone gets its answer', async (t) => {
  for (const [name, headers, body, code] of CASES) {
    const request = `POST /framing HTTP/1.1\r\nHost: x\r\n${headers}\r\n${body}`;
    const result = await rawExchange(gw.port, [request], { waitMs: 1500 });
    t.ok(result.responses[0] !== undefined, `${name}: answered`);
    refused(t, name, result, code);
  }
  t.notOk(seen.includes('POST /framing'));
});

t.test('well-framed requests, and requests after them, are served', async (t) => {
  const cases: [string, string][] = [
    ['Content-Length', 'Content-Length: 5\r\n\r\nhello'],
    ['Content-Length with leading zeros', 'Content-Length: 005\r\n\r\nhello'],
    ['chunked', `Transfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}`],
  ];
  for (const [name, rest] of cases) {
    const result = await rawExchange(
      gw.port,
      [`POST /ok HTTP/1.1\r\nHost: x\r\n${rest}`, 'GET /after HTTP/1.1\r\nHost: x\r\n\r\n'],
      { sequential: true },
    );
    t.same(
      result.responses.map((r) => r.status),
      [200, 200],
      `${name}: both answered`,
    );
    const echo = JSON.parse(result.responses[0]?.body.toString() ?? '{}') as { bodyBytes: number };
    t.equal(echo.bodyBytes, 5, `${name}: the body went upstream whole`);
  }
});

t.test('Host: exactly one, well formed', async (t) => {
  for (const [name, headers] of [
    ['two Host headers', 'Host: a.test\r\nHost: b.test\r\n'],
    ['an empty Host', 'Host:\r\n'],
    ['a Host with a path', 'Host: a.test/x\r\n'],
    ['a Host with a space', 'Host: a.test evil\r\n'],
    ['a Host with a bad port', 'Host: a.test:8x\r\n'],
  ] as const) {
    const result = await rawExchange(gw.port, [`GET /host HTTP/1.1\r\n${headers}\r\n`]);
    t.equal(result.responses[0]?.status, 400, name);
  }
  for (const host of ['a.test', 'a.test:8080', '[::1]:8080', '127.0.0.1']) {
    const result = await rawExchange(gw.port, [`GET /host HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
    t.equal(result.responses[0]?.status, 200, host);
    const echo = JSON.parse(result.responses[0]?.body.toString() ?? '{}') as {
      headers: Record<string, string>;
    };
    t.equal(echo.headers['x-forwarded-host'], host);
  }
  // The edge remembers the last Host it accepted (request-checks.ts): a bad value right after
  // a good one, on the same connection or another, and near misses of it, are still judged.
  const alternating = [
    ['a.test', 200],
    ['a.test/x', 400],
    ['a.test', 200],
    ['a.test evil', 400],
    ['a.test', 200],
    ['a.test:8x', 400],
    ['a.tes', 200],
    ['a.test"', 400],
    ['a.test', 200],
    ['a.test%', 200],
    ['a.test<', 400],
  ] as const;
  const oneConnection = await rawExchange(
    gw.port,
    alternating.map(([host]) => `GET /host HTTP/1.1\r\nHost: ${host}\r\n\r\n`),
    { sequential: true },
  );
  t.same(
    oneConnection.responses.map((r) => r.status),
    alternating.map(([, status]) => status),
    'one connection: each Host judged',
  );
  for (const [host, status] of alternating) {
    const result = await rawExchange(gw.port, [`GET /host HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
    t.equal(result.responses[0]?.status, status, `${host}: ${status}`);
  }
});

t.test('a head read in several parts is bounded by max_header_bytes, not ~4 KiB', async (t) => {
  // max_header_bytes is 16384 by default; uWS alone refuses a split head over ~4 KiB (431).
  const line = 'GET /split HTTP/1.1\r\nHost: x\r\n';
  const fits = await rawExchange(
    gw.port,
    [`${line}X-A: ${'a'.repeat(5000)}\r\n`, `X-B: ${'b'.repeat(5000)}\r\n\r\n`],
    { gapMs: 50 },
  );
  t.equal(fits.responses[0]?.status, 200, 'a 10 KiB head in two reads passes');
  const over = await rawExchange(
    gw.port,
    [`${line}X-A: ${'a'.repeat(9000)}\r\n`, `X-B: ${'b'.repeat(9000)}\r\n\r\n`],
    { gapMs: 50 },
  );
  t.equal(over.responses[0]?.status, 431, 'an 18 KiB head in two reads is refused');
});

t.test('a raw "#" in the path is refused, "%23" is a literal', async (t) => {
  const raw = await rawExchange(gw.port, ['GET /public#/../admin HTTP/1.1\r\nHost: x\r\n\r\n']);
  t.equal(raw.responses[0]?.status, 400);
  const encoded = await rawExchange(gw.port, ['GET /a%23b HTTP/1.1\r\nHost: x\r\n\r\n']);
  t.equal(encoded.responses[0]?.status, 200);
  t.equal(JSON.parse(encoded.responses[0]?.body.toString() ?? '{}').url, '/a%23b');
});

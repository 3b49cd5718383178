// Attack on the upstream header records of worker/h1-client.ts (HeaderRecord: an object whose
// prototype is an empty object without a prototype) through a real gateway: names that are
// members of Object.prototype in any case, numeric names, 150 distinct names, repeats, names
// differing only in case, trailers with the same names. The client must get exactly the
// upstream's relayed lines (nothing invented, inherited or dropped that should pass), hop-by-hop
// still dropped, framing unchanged; the route features that read or edit the head (cache: false,
// CSRF placeholders, CORS, Vary) and the RateLimit line still do their part with such names.
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { type HostileScript, startHostileUpstream } from './helpers/hostile-upstream.js';
import { bodyText, type RawAnswer, rawAnswer, valuesOf } from './helpers/raw-answer.js';
import { rawExchange } from './helpers/raw-http.js';
import { routesYaml } from './helpers/routes-yaml.js';

const APP = 'https://app.test';

/** Header lines an upstream sends with these names (as written, case and all) and values. */
const HOSTILE: readonly [string, string][] = [
  ['__proto__', 'p1'],
  ['__PROTO__', 'p2'],
  ['constructor', 'c1'],
  ['Constructor', 'c2'],
  ['toString', 'ts'],
  ['valueOf', 'vo'],
  ['hasOwnProperty', 'ho'],
  ['isPrototypeOf', 'ip'],
  ['__defineGetter__', 'dg'],
  ['__lookupSetter__', 'ls'],
  ['propertyIsEnumerable', 'pe'],
  ['toLocaleString', 'tl'],
  ['0', 'zero'],
  ['1', 'one'],
  ['4294967294', 'max-index'],
  ['4294967295', 'not-an-index'],
  ['-1', 'minus'],
  ['length', 'len'],
  ['prototype', 'proto-word'],
  ['X-Dup', 'a'],
  ['x-dup', 'b'],
  ['X-DUP', 'c'],
];

/** What the client must see of HOSTILE: every line, its name lower-cased, sorted. */
const RELAYED = HOSTILE.map(([n, v]) => `${n.toLowerCase()}: ${v}`).sort();

/** Hop-by-hop lines an upstream may send: none reaches the client. */
const HOP = [
  'Connection: X-Secret-Hop, constructor-hop',
  'Keep-Alive: timeout=5',
  'Proxy-Connection: keep-alive',
  'TE: trailers',
  'Trailer: __proto__',
  'Upgrade: h2c',
  'X-Secret-Hop: dropped',
  'constructor-hop: dropped',
];

const lines = (list: readonly [string, string][]) =>
  list.map(([n, v]) => `${n}: ${v}\r\n`).join('');
const MANY = Array.from({ length: 150 }, (_, i) => [`X-Many-${i}`, `v${i}`] as [string, string]);

function answer(path: string): HostileScript {
  const head = lines(HOSTILE);
  const page = '<html><p>{{ csrf_token }}</p></html>';
  const chunks: Record<string, string> = {
    '/pub/names': `HTTP/1.1 200 OK\r\n${head}${HOP.join('\r\n')}\r\nCoNtEnT-LeNgTh: 2\r\n\r\nok`,
    '/pub/many': `HTTP/1.1 200 OK\r\n${lines(MANY)}${head}content-length: 4\r\n\r\nmany`,
    '/pub/chunked':
      `HTTP/1.1 200 OK\r\n${head}TRANSFER-ENCODING: chunked\r\n\r\n` +
      `3\r\nabc\r\n0\r\n${head}content-length: 99\r\nx-trailer-only: t\r\n\r\n`,
    '/pub/two-lengths': `HTTP/1.1 200 OK\r\nconstructor: x\r\nContent-Length: 2\r\nCONTENT-LENGTH: 3\r\n\r\nok`,
    '/pub/length-and-te':
      'HTTP/1.1 200 OK\r\n__proto__: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    '/pub/same-lengths': `HTTP/1.1 200 OK\r\nconstructor: x\r\nContent-Length: 2\r\ncontent-LENGTH: 2\r\n\r\nok`,
    '/pub/no-content': `HTTP/1.1 204 No Content\r\n${head}\r\n`,
    '/pub/not-modified': `HTTP/1.1 304 Not Modified\r\n${head}ETag: "e"\r\n\r\n`,
    '/nc/names': `HTTP/1.1 200 OK\r\n${head}Cache-Control: max-age=3600\r\nPragma: x\r\nExpires: Thu, 01 Jan 2099 00:00:00 GMT\r\ncontent-length: 2\r\n\r\nok`,
    '/pub/page': `HTTP/1.1 200 OK\r\n${head}Content-Type: text/html\r\nETag: "e"\r\nExpires: x\r\nCache-Control: public\r\ncontent-length: ${page.length}\r\n\r\n${page}`,
    '/pub/listed': `HTTP/1.1 200 OK\r\n${head}Connection: __proto__, CONSTRUCTOR, tostring, 0\r\nx-kept: k\r\ncontent-length: 2\r\n\r\nok`,
    '/pub/interim': `HTTP/1.1 103 Early Hints\r\n${head}link: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nx-final: f\r\ncontent-length: 2\r\n\r\nok`,
    '/pub/plain': 'HTTP/1.1 200 OK\r\nx-plain: p\r\ncontent-length: 2\r\n\r\nok',
    '/pub/cors': `HTTP/1.1 200 OK\r\n${head}Access-Control-Allow-Origin: *\r\nACCESS-CONTROL-ALLOW-CREDENTIALS: true\r\nAccess-Control-Expose-Headers: X-Dup\r\nVary: Accept\r\nVARY: Cookie\r\ncontent-length: 2\r\n\r\nok`,
  };
  const text = chunks[path.startsWith('/pub/head') ? '/pub/names' : path];
  if (text === undefined)
    return { chunks: ['HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n'] };
  return { chunks: [text] };
}

const upstream = await startHostileUpstream((req) => answer(req.target));
const gw = await startGateway({
  config: {
    num_instances: 1,
    session_cookie: true,
    cors_origins: [APP],
    ratelimit_proxy: { requests_per_second: 1000, burst: 1000 },
  },
  routes: routesYaml(upstream.origin, [
    { prefix: '/pub', secure: false },
    { prefix: '/nc', secure: false, cache: false },
  ]),
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

/** One request on its own connection, `Connection: close`. */
function ask(path: string, method = 'GET', extra = ''): Promise<RawAnswer> {
  return rawAnswer(
    gw.port,
    `${method} ${path} HTTP/1.1\r\nHost: gw\r\n${extra}Connection: close\r\n\r\n`,
  );
}

/** The lines the gateway or uWS write themselves (or framing), for the comparisons below. */
const OWN =
  /^(server|date|content-length|transfer-encoding|connection|ratelimit|vary|access-control-[a-z-]+|cache-control|pragma|expires): /i;

function relayedOf(a: RawAnswer): string[] {
  return a.lines.filter((l) => !OWN.test(l)).sort();
}

t.test('member and numeric names: every line relayed once, lower-case, nothing else', async (t) => {
  const a = await ask('/pub/names');
  t.equal(a.status, 200);
  t.same(relayedOf(a), RELAYED);
  t.equal(a.body.toString(), 'ok', 'the length in odd case frames the body');
  t.same(valuesOf(a, 'transfer-encoding'), []);
  t.same(valuesOf(a, 'content-length'), ['2']);
  t.same(valuesOf(a, 'server'), ['ProxyAuth'], 'one server, the gateway’s');
  for (const hop of [
    'keep-alive',
    'proxy-connection',
    'te',
    'trailer',
    'upgrade',
    'x-secret-hop',
  ]) {
    t.same(valuesOf(a, hop), [], `${hop} dropped`);
  }
  t.same(valuesOf(a, 'constructor-hop'), [], 'a name the Connection header lists is dropped');
  t.same(valuesOf(a, 'ratelimit').length, 1, 'one RateLimit');
  t.match(valuesOf(a, 'ratelimit')[0], /^"proxy";r=\d+;t=\d+$/);
  t.same(valuesOf(a, 'vary'), ['Origin'], 'one Vary');
});

t.test('HEAD: the same relayed lines, no body', async (t) => {
  const a = await ask('/pub/head', 'HEAD');
  t.equal(a.status, 200);
  t.same(relayedOf(a), RELAYED);
  t.same(valuesOf(a, 'content-length'), ['2']);
  t.equal(a.body.length, 0);
});

t.test('150 distinct names and the hostile ones: all of them pass', async (t) => {
  const a = await ask('/pub/many');
  t.equal(a.status, 200);
  const expected = [...MANY.map(([n, v]) => `${n.toLowerCase()}: ${v}`), ...RELAYED].sort();
  t.same(relayedOf(a), expected);
  t.equal(a.body.toString(), 'many');
});

t.test(
  'a chunked answer whose trailers repeat the names: body whole, no trailer in the head',
  async (t) => {
    const a = await ask('/pub/chunked');
    t.equal(a.status, 200);
    t.same(relayedOf(a), RELAYED, 'the head’s lines only');
    t.same(valuesOf(a, 'x-trailer-only'), []);
    t.same(valuesOf(a, 'content-length'), [], 'the trailer’s length is no header');
    t.same(valuesOf(a, 'transfer-encoding'), ['chunked']);
    t.equal(a.body.toString('latin1'), '3\r\nabc\r\n0\r\n\r\n', 'the chunks, no trailer relayed');
  },
);

t.test('framing checks still see Content-Length beside member names', async (t) => {
  t.equal((await ask('/pub/two-lengths')).status, 502, 'two different lengths');
  t.equal((await ask('/pub/length-and-te')).status, 502, 'a length with chunked');
  const same = await ask('/pub/same-lengths');
  t.equal(same.status, 200, 'the same length twice');
  // Held as a list by the client, the length is not taken as known: the body goes chunked.
  t.equal(bodyText(same), 'ok');
  t.same(valuesOf(same, 'constructor'), ['x']);
});

t.test('204 and 304 keep the names', async (t) => {
  const nc = await ask('/pub/no-content');
  t.equal(nc.status, 204);
  t.same(relayedOf(nc), RELAYED);
  const nm = await ask('/pub/not-modified');
  t.equal(nm.status, 304);
  t.same(relayedOf(nm), [...RELAYED, 'etag: "e"'].sort());
  t.equal(nm.body.length, 0);
});

t.test('cache: false replaces the cache fields beside member names', async (t) => {
  const a = await ask('/nc/names');
  t.equal(a.status, 200);
  t.same(relayedOf(a), RELAYED);
  t.same(valuesOf(a, 'cache-control'), ['no-store']);
  t.same(valuesOf(a, 'pragma'), ['no-cache']);
  t.same(valuesOf(a, 'expires'), ['0']);
});

t.test('a page with placeholders: rewritten, its stale fields gone, the names kept', async (t) => {
  const a = await ask('/pub/page');
  t.equal(a.status, 200);
  t.same(relayedOf(a), [...RELAYED, 'content-type: text/html'].sort(), 'no ETag');
  t.same(valuesOf(a, 'cache-control'), ['private, no-store']);
  t.same(valuesOf(a, 'expires'), []);
  t.notMatch(a.body.toString('latin1'), /\{\{/, 'the placeholder is replaced');
});

t.test(
  'CORS replaces the upstream’s Access-Control-* and merges Vary, names present',
  async (t) => {
    const a = await ask('/pub/cors', 'GET', `Origin: ${APP}\r\n`);
    t.equal(a.status, 200);
    t.same(relayedOf(a), RELAYED);
    t.same(valuesOf(a, 'access-control-allow-origin'), [APP]);
    t.same(valuesOf(a, 'access-control-allow-credentials'), ['true']);
    t.same(valuesOf(a, 'vary'), ['Accept, Cookie, Origin']);
    t.same(
      valuesOf(a, 'access-control-expose-headers').sort(),
      ['Retry-After, RateLimit, RateLimit-Policy, WWW-Authenticate', 'X-Dup'].sort(),
      'the gateway’s and the upstream’s own expose list',
    );
    t.equal(valuesOf(a, 'ratelimit').length, 1);
  },
);

t.test(
  'names a Connection header lists are dropped, members of Object.prototype too',
  async (t) => {
    const a = await ask('/pub/listed');
    t.equal(a.status, 200);
    const gone = new Set(['__proto__', 'constructor', 'tostring', '0']);
    t.same(
      relayedOf(a),
      [...RELAYED.filter((l) => !gone.has(l.slice(0, l.indexOf(':')))), 'x-kept: k'].sort(),
    );
  },
);

t.test('an interim answer’s names do not reach the final one', async (t) => {
  const a = await ask('/pub/interim');
  t.equal(a.status, 200);
  t.same(relayedOf(a), ['x-final: f']);
});

t.test('one upstream connection, member names then none: nothing carried over', async (t) => {
  // Keep-alive on both sides: the later answers come on the same upstream connection.
  const paths = ['/pub/names', '/pub/plain', '/pub/many', '/pub/plain', '/pub/names', '/pub/plain'];
  const before = upstream.connections.length;
  const res = await rawExchange(
    gw.port,
    paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: gw\r\n\r\n`),
    { sequential: true, waitMs: 1500 },
  );
  t.same(
    res.responses.map((r) => r.status),
    paths.map(() => 200),
  );
  for (const [i, r] of res.responses.entries()) {
    if (paths[i] !== '/pub/plain') continue;
    const names = [...r.headers.keys()].filter((n) => !OWN.test(`${n}: `)).sort();
    t.same(names, ['x-plain'], `answer ${i}: its own name only`);
  }
  t.ok(upstream.connections.length - before <= 1, 'at most one upstream connection for all');
});

import t from 'tap';
import { addOwnHeadLine, addResponseHeader, type Exchange, Head } from '../worker/uws-io.js';

/*
 * worker/uws-io.ts builds every answer's head (gateway answers and proxied ones) as one string
 * for one uWS writeStatus call. The bytes must be those separate writeHeader calls wrote: the
 * gateway's values as UTF-8, relayed upstream values as their latin1 bytes.
 */

/** What writeStatus was given, as bytes (uWS writes a string as UTF-8). */
function written(head: Head): Buffer {
  let arg: unknown;
  head.write({
    writeStatus(v: unknown) {
      arg = v;
      return this;
    },
  } as never);
  return typeof arg === 'string' ? Buffer.from(arg, 'utf8') : Buffer.from(arg as Uint8Array);
}

const exchange = (fields: Partial<Exchange>): Exchange =>
  ({ cors: undefined, headLines: '', headLinesAscii: true, ...fields }) as Exchange;

t.test('an ASCII head is the status line and CRLF-joined lines, as a string', async (t) => {
  const head = new Head('200 OK');
  head.relayed('content-type', 'text/plain');
  head.add('cache-control', 'no-store');
  t.equal(
    written(head).toString('latin1'),
    '200 OK\r\nserver: ProxyAuth\r\ncontent-type: text/plain\r\ncache-control: no-store',
  );
  t.ok(head.ascii);
});

t.test('relayed values keep their latin1 bytes, gateway values go as UTF-8', async (t) => {
  const head = new Head('200 OK');
  head.relayed('x-latin1', 'caf\u00e9');
  head.add('x-gateway', 'zo\u00eb \u65e5');
  head.relayed('x-raw-utf8', 'caf\u00c3\u00a9');
  head.add('x-plain', 'ok');
  const bytes = written(head);
  t.notOk(head.ascii);
  t.ok(
    bytes.includes(
      Buffer.from([
        0x78, 0x2d, 0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0x3a, 0x20, 0x63, 0x61, 0x66, 0xe9, 0x0d,
      ]),
    ),
    'one byte 0xe9',
  );
  t.ok(
    bytes.includes(
      Buffer.concat([
        Buffer.from('x-gateway: '),
        Buffer.from('zo\u00eb \u65e5', 'utf8'),
        Buffer.from('\r\n'),
      ]),
    ),
    'UTF-8 of the gateway value',
  );
  t.ok(
    bytes.includes(Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0d])),
    'relayed UTF-8 bytes unchanged',
  );
  t.ok(bytes.toString('latin1').endsWith('\r\nx-plain: ok'));
});

t.test('a gateway value alone with chars above 0x7f: the head still goes as bytes', async (t) => {
  const head = new Head('302 Found');
  head.add('location', '/login?next=%2F\u00e9');
  t.same(
    written(head),
    Buffer.from('302 Found\r\nserver: ProxyAuth\r\nlocation: /login?next=%2F\u00e9', 'utf8'),
  );
});

t.test('decoration: Vary, the CORS headers, then the pipeline headers, in order', async (t) => {
  const head = new Head('200 OK');
  const ex = exchange({ cors: [['access-control-allow-origin', 'https://a.test']] });
  addOwnHeadLine(ex, '\r\nratelimit: "p";r=9;t=60');
  addResponseHeader(ex, 'set-cookie', 'a=1');
  head.decoration(ex, 'Accept-Encoding, Origin');
  t.equal(
    written(head).toString('latin1'),
    '200 OK\r\nserver: ProxyAuth\r\nvary: Accept-Encoding, Origin\r\n' +
      'access-control-allow-origin: https://a.test\r\nratelimit: "p";r=9;t=60\r\nset-cookie: a=1',
  );
  const plain = new Head('200 OK');
  plain.decoration(exchange({}), 'Origin');
  t.equal(written(plain).toString('latin1'), '200 OK\r\nserver: ProxyAuth', 'no CORS: no Vary');
});

t.test('a gateway value with a control char is dropped, never written', async (t) => {
  for (const bad of [
    '/app\r\nx-injected: yes',
    'a\nb',
    'a\rb',
    'a\0b',
    'a\x7fb',
    'a\x1bb',
    '\u00e9\r\n',
  ]) {
    const head = new Head('303 See Other');
    head.add('location', bad);
    head.add('x-after', 'kept');
    t.equal(
      written(head).toString('latin1'),
      '303 See Other\r\nserver: ProxyAuth\r\nx-after: kept',
      JSON.stringify(bad),
    );
  }
  const tab = new Head('200 OK');
  tab.add('x-tab', 'a\tb');
  t.equal(
    written(tab).toString('latin1'),
    '200 OK\r\nserver: ProxyAuth\r\nx-tab: a\tb',
    'HTAB is fine',
  );
});

t.test('pipeline headers: checked and encoded when added, appended as they are', async (t) => {
  for (const bad of ['/app\r\nx-injected: yes', 'a\nb', 'a\rb', 'a\0b', 'a\x7fb', '\u00e9\r\n']) {
    const ex = exchange({});
    addResponseHeader(ex, 'x-proxyauth-redirect', bad);
    addResponseHeader(ex, 'x-after', 'kept');
    const head = new Head('401 Unauthorized');
    head.decoration(ex, 'Origin');
    t.equal(
      written(head).toString('latin1'),
      '401 Unauthorized\r\nserver: ProxyAuth\r\nx-after: kept',
      `dropped: ${JSON.stringify(bad)}`,
    );
    t.ok(head.ascii);
  }
  const ex = exchange({});
  addResponseHeader(ex, 'x-proxyauth-redirect', '/login?next=%2F\u00e9\u65e5');
  addOwnHeadLine(ex, '\r\nratelimit: "proxy";r=1;t=1');
  t.notOk(ex.headLinesAscii);
  const head = new Head('401 Unauthorized');
  head.decoration(ex, 'Origin');
  t.notOk(head.ascii, 'a non-ASCII pipeline value makes the head go as bytes');
  t.same(
    written(head),
    Buffer.from(
      '401 Unauthorized\r\nserver: ProxyAuth\r\nx-proxyauth-redirect: /login?next=%2F\u00e9\u65e5' +
        '\r\nratelimit: "proxy";r=1;t=1',
      'utf8',
    ),
    'its UTF-8 bytes, once',
  );
});

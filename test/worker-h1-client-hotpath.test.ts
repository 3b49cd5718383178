import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import type { Dispatcher } from 'undici';
import { H1Pool, type H1PoolOptions, KNOWN_RESPONSE_HEADERS } from '../worker/h1-client.js';

/*
 * Attacks on the h1 client's hot-path shortcuts (worker/h1-client.ts): the Keep-Alive hint
 * remembered across answers in one module-level cache, and request headers checked with table
 * loops and lower-cased only when they hold upper case. What it makes of hostile answers is in
 * test/helpers/conformance-cases.ts.
 */

interface Upstream {
  server: Server;
  port: number;
  sockets: Socket[];
  heads: string[];
}

/** A raw server answering every request head with `answer`. */
function upstream(answer: string): Promise<Upstream> {
  return scripted([answer]);
}

function pool(port: number, extra: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool({
    origin: `http://127.0.0.1:${port}`,
    keepAlive: true,
    maxIdle: 8,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    connectTimeoutMs: 2000,
    keepAliveTimeoutMs: 300,
    keepAliveMaxMs: 60_000,
    ...extra,
  });
}

interface Outcome {
  status: number;
  error: (Error & { code?: string }) | undefined;
  started: boolean;
}

function send(p: H1Pool, options: Partial<Dispatcher.DispatchOptions> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { status: 0, error: undefined, started: false };
    p.dispatch(
      { method: 'GET', path: '/', headers: [], ...options } as Dispatcher.DispatchOptions,
      {
        onRequestStart() {
          out.started = true;
        },
        onResponseStart(_c, status) {
          out.status = status;
        },
        onResponseEnd: () => resolve(out),
        onResponseError(_c, err) {
          out.error = err;
          resolve(out);
        },
      },
    );
  });
}

const hinted = (hint: string): string =>
  `HTTP/1.1 200 OK\r\nkeep-alive: ${hint}\r\ncontent-length: 2\r\n\r\nok`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test(
  'Keep-Alive hints of two upstreams, alternating: each connection follows its own',
  async (t) => {
    const short = await upstream(hinted('timeout=1'));
    const long = await upstream(hinted('timeout=60'));
    const zero = await upstream(hinted('timeout=0'));
    t.teardown(() => {
      short.server.close();
      long.server.close();
      zero.server.close();
    });
    const pools = [pool(short.port), pool(long.port), pool(zero.port)];
    t.teardown(() => Promise.all(pools.map((p) => p.destroy())));
    for (let i = 0; i < 4; i++) {
      for (const p of pools) t.equal((await send(p)).status, 200);
    }
    t.equal(short.sockets.length, 4, 'timeout=1: no safe idle time, never reused');
    t.equal(zero.sockets.length, 4, 'timeout=0: never reused');
    t.equal(long.sockets.length, 1, 'timeout=60: one connection for all');
    // Past keepAliveTimeoutMs (300 ms): the hint of 59 s keeps the idle connection.
    await sleep(700);
    t.equal((await send(pools[1]!)).status, 200);
    t.equal(long.sockets.length, 1, 'timeout=60: still reused after 700 ms idle');
  },
);

t.test('request header values with controls or chars above 0xff are refused unsent', async (t) => {
  const up = await upstream('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  const bad = [
    '\u0100',
    '\u2028',
    '\ud83d\ude00',
    '\ud83d',
    '\r',
    '\n',
    '\0',
    '\x7f',
    '\x1f',
    '\v',
  ];
  for (const c of bad) {
    for (const value of [c, `a${c}`, `${c}a`, `a${c}b`]) {
      const out = await send(p, { headers: ['x-a', value] });
      // Code points in the message: a raw U+2028 would end a line of the TAP stream.
      const shown = [...value].map((ch) => ch.codePointAt(0)!.toString(16)).join(' ');
      t.equal(out.error?.code, 'UND_ERR_INVALID_ARG', shown);
      t.notOk(out.started, 'onRequestStart not called');
    }
  }
  t.equal(up.heads.length, 0, 'nothing reached the upstream');
  const good = await send(p, { headers: ['X-A', '\t\x20~\x80\xff\t'] });
  t.equal(good.status, 200, 'HTAB, visible ASCII, space and obs-text pass');
  t.match(up.heads[0], /\r\nX-A: \t ~\x80\xff\t(?:\r\n|$)/, 'written as given, latin1');
});

t.test('client-owned names given in upper or mixed case are still refused', async (t) => {
  const up = await upstream('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  for (const name of [
    'Host',
    'HOST',
    'Connection',
    'Keep-Alive',
    'Transfer-Encoding',
    'TRANSFER-ENCODING',
    'Upgrade',
    'Expect',
    'TE',
    'Trailer',
    'Proxy-Connection',
  ]) {
    const out = await send(p, { headers: [name, name === 'Expect' ? '100-continue' : 'x'] });
    t.equal(out.error?.code, 'UND_ERR_INVALID_ARG', name);
    t.notOk(out.started, `${name}: onRequestStart not called`);
  }
  const twice = await send(p, {
    method: 'POST',
    headers: ['Content-Length', '2', 'content-length', '2'],
    body: 'ab',
  });
  t.equal(twice.error?.code, 'UND_ERR_INVALID_ARG', 'Content-Length and content-length: refused');
  const mismatch = await send(p, { method: 'POST', headers: ['CONTENT-LENGTH', '3'], body: 'ab' });
  t.equal(mismatch.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'CONTENT-LENGTH is read');
  t.equal(up.heads.length, 0, 'nothing reached the upstream');
  const given = await send(p, { method: 'POST', headers: ['Content-Length', '2'], body: 'ab' });
  t.equal(given.status, 200);
  t.equal(up.heads.length, 1);
  t.notMatch(up.heads[0], /\r\ncontent-length:/, 'no second, client-written content-length');
  t.match(up.heads[0], /\r\nContent-Length: 2(?:\r\n|$)/);
});

/** A raw server answering the n-th request head with the n-th of `answers` (then the last). */
async function scripted(answers: string[]): Promise<Upstream> {
  const up: Upstream = { server: createServer(), port: 0, sockets: [], heads: [] };
  up.server.on('connection', (socket: Socket) => {
    up.sockets.push(socket);
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        up.heads.push(buf.slice(0, end));
        buf = buf.slice(end + 4);
        socket.write(
          Buffer.from(answers[Math.min(up.heads.length, answers.length) - 1]!, 'latin1'),
        );
      }
    });
  });
  up.server.listen(0, '127.0.0.1');
  await once(up.server, 'listening');
  up.port = (up.server.address() as { port: number }).port;
  return up;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  error: (Error & { code?: string }) | undefined;
}

function fetchOne(p: H1Pool): Promise<Answer> {
  return new Promise((resolve) => {
    const out: Answer = { status: 0, headers: {}, body: '', error: undefined };
    p.dispatch({ method: 'GET', path: '/', headers: [] } as Dispatcher.DispatchOptions, {
      onResponseStart(_c, status, headers) {
        out.status = status;
        out.headers = { ...headers };
      },
      onResponseData(_c, chunk) {
        out.body += chunk.toString('latin1');
      },
      onResponseEnd: () => resolve(out),
      onResponseError(_c, err) {
        out.error = err;
        resolve(out);
      },
    });
  });
}

const cases = (name: string): string[] => [
  name,
  name.toUpperCase(),
  name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()),
  [...name].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c)).join(''),
];

t.test('known response header names are read in place, in any letter case', async (t) => {
  // worker/h1-client.ts matches common names against constants instead of slicing and
  // lower-casing them: every spelling must still land on the lower-case key, framing included.
  const answers: string[] = [];
  const expected: [string, string][] = [];
  for (const name of KNOWN_RESPONSE_HEADERS) {
    if (['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(name))
      continue;
    for (const spelled of cases(name)) {
      answers.push(`HTTP/1.1 200 OK\r\n${spelled}:  v-${spelled} \r\ncontent-length: 2\r\n\r\nok`);
      expected.push([name, `v-${spelled}`]);
    }
  }
  const up = await scripted(answers);
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  for (const [name, value] of expected) {
    const out = await fetchOne(p);
    t.equal(out.headers[name], value, `${value.slice(2)} is ${name}`);
    t.same(Object.keys(out.headers).sort(), ['content-length', name].sort());
  }
  t.equal(up.sockets.length, 1, 'one connection for every answer');
});

t.test('framing names in any letter case frame the answer', async (t) => {
  const answers: string[] = [];
  for (const cl of cases('content-length')) {
    answers.push(`HTTP/1.1 200 OK\r\n${cl}: 3\r\n\r\nabc`);
  }
  for (const te of cases('transfer-encoding')) {
    answers.push(`HTTP/1.1 200 OK\r\n${te}: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
  }
  const up = await scripted(answers);
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  for (let i = 0; i < answers.length; i++) {
    const out = await fetchOne(p);
    t.equal(out.body, 'abc', answers[i]!.split('\r\n')[1]!);
  }
  t.equal(up.sockets.length, 1, 'every answer framed exactly: the connection was reused');
  // Both framings at once, in any spelling: refused (response smuggling).
  for (const [cl, te] of [
    ['CONTENT-LENGTH', 'transfer-encoding'],
    ['content-length', 'Transfer-Encoding'],
    ['Content-Length', 'TRANSFER-ENCODING'],
  ]) {
    const both = await scripted([
      `HTTP/1.1 200 OK\r\n${cl}: 3\r\n${te}: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
    ]);
    const q = pool(both.port);
    const out = await fetchOne(q);
    t.equal(out.error?.code, 'HPE_UNEXPECTED_CONTENT_LENGTH', `${cl} with ${te}`);
    await q.destroy();
    both.server.close();
  }
  // Connection: close in any spelling ends the connection.
  const closing = await scripted([
    'HTTP/1.1 200 OK\r\nCONNECTION: close\r\ncontent-length: 2\r\n\r\nok',
  ]);
  t.teardown(() => closing.server.close());
  const q = pool(closing.port);
  t.teardown(() => q.destroy());
  for (let i = 0; i < 3; i++) t.equal((await fetchOne(q)).status, 200);
  t.equal(closing.sockets.length, 3, 'CONNECTION: close honoured');
});

t.test('near misses of known names: no byte other than a letter folds', async (t) => {
  // Each name is changed in one byte (or one byte added or removed): the result is refused when
  // it is not a token (RFC 9110 section 5.6.2), else it is a header of its own name. Never the
  // known name: only A-Z fold to a-z.
  const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const answers: string[] = [];
  const expect: [string, string | undefined][] = [];
  const add = (raw: string) => {
    answers.push(`HTTP/1.1 200 OK\r\n${raw}: x\r\ncontent-length: 2\r\n\r\nok`);
    expect.push([raw, TCHAR.test(raw) ? raw.toLowerCase() : undefined]);
  };
  for (const name of KNOWN_RESPONSE_HEADERS) {
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      const at = (ch: number) => name.slice(0, i) + String.fromCharCode(ch) + name.slice(i + 1);
      // Bit flips: 7 (latin1, 0x80 and up), 6, 5 ('-' 0x2d becomes CR 0x0d), 0.
      // (A letter's bit 5 is its case: the case tests above.)
      const letter = c >= 0x61 && c <= 0x7a;
      for (const bit of letter ? [0x80, 0x40, 0x01] : [0x80, 0x40, 0x20, 0x01]) add(at(c ^ bit));
      if (c === 0x2d) for (const ch of [0x5f, 0x2e, 0x20, 0x09, 0x00]) add(at(ch));
    }
    add(`${name}x`);
    add(`x${name}`);
    add(name.slice(0, -1));
  }
  const up = await scripted(answers);
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  let refused = 0;
  for (const [raw, key] of expect) {
    const out = await fetchOne(p);
    const shown = [...raw]
      .map((ch) => (ch > ' ' && ch <= '~' ? ch : `\\x${ch.charCodeAt(0).toString(16)}`))
      .join('');
    if (key === undefined) {
      t.equal(out.error?.code, 'HPE_INVALID_HEADER_TOKEN', `${shown}: refused`);
      refused++;
    } else {
      t.equal(out.headers[key], 'x', `${shown}: its own name`);
      t.same(Object.keys(out.headers).sort(), ['content-length', key].sort(), `${shown}: only`);
    }
  }
  t.ok(refused > 300, `${refused} near misses refused`);
  t.ok(expect.length - refused > 300, `${expect.length - refused} read as other names`);
});

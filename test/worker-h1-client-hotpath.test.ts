import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import type { Dispatcher } from 'undici';
import { H1Pool, type H1PoolOptions } from '../worker/h1-client.js';

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
async function upstream(answer: string): Promise<Upstream> {
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
        socket.write(answer);
      }
    });
  });
  up.server.listen(0, '127.0.0.1');
  await once(up.server, 'listening');
  up.port = (up.server.address() as { port: number }).port;
  return up;
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

import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import t from 'tap';
import type { Dispatcher } from 'undici';
import { H1Pool, type H1PoolOptions } from '../worker/h1-client.js';
import { upstreamError } from '../worker/upstream-error.js';
import { discardBody, upstreamRequest } from '../worker/upstream-request.js';
import { makeCertAuthority } from './helpers/cert-authority.js';

/*
 * Pool behaviours of the gateway's own client (worker/h1-client.ts) beyond parsing: idle
 * connections, the upstream's Keep-Alive hint, backpressure through an upstream close, close and
 * destroy, and the request helper. What it accepts from an upstream is in
 * test/upstream-client-conformance.test.ts.
 */

interface Upstream {
  server: Server;
  port: number;
  /** Every connection accepted, in order. */
  sockets: Socket[];
  /** Request heads read, in order. */
  heads: string[];
}

/** A raw server answering every request head with `answer(head, socket)`. */
async function upstream(answer: (head: string, socket: Socket) => void): Promise<Upstream> {
  const sockets: Socket[] = [];
  const heads: string[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        heads.push(head);
        answer(head, socket);
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return { server, port, sockets, heads };
}

function pool(port: number, extra: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool({
    origin: `http://127.0.0.1:${port}`,
    keepAlive: true,
    maxIdle: 8,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    connectTimeoutMs: 2000,
    keepAliveTimeoutMs: 4000,
    keepAliveMaxMs: 60_000,
    ...extra,
  });
}

interface Outcome {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  error: (Error & { code?: string }) | undefined;
  started: boolean;
}

/** Dispatches and collects; `onData` may pause through the controller. */
function send(
  p: H1Pool,
  options: Partial<Dispatcher.DispatchOptions> = {},
  onData?: (c: Dispatcher.DispatchController, chunk: Buffer) => void,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = {
      status: 0,
      headers: {},
      body: Buffer.alloc(0),
      error: undefined,
      started: false,
    };
    const chunks: Buffer[] = [];
    p.dispatch(
      { method: 'GET', path: '/', headers: [], ...options } as Dispatcher.DispatchOptions,
      {
        onRequestStart() {
          out.started = true;
        },
        onResponseStart(_c, status, headers) {
          out.status = status;
          out.headers = headers;
        },
        onResponseData(c, chunk) {
          chunks.push(Buffer.from(chunk));
          onData?.(c, chunk);
        },
        onResponseEnd() {
          out.body = Buffer.concat(chunks);
          resolve(out);
        },
        onResponseError(_c, err) {
          out.error = err;
          out.body = Buffer.concat(chunks);
          resolve(out);
        },
      },
    );
  });
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

t.test('a keep-alive connection is reused; the request head is what the pool writes', async (t) => {
  const up = await upstream((_h, s) => s.write(OK));
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  const a = await send(p, { headers: ['x-a', '1'] });
  const b = await send(p, { headers: ['x-a', '2'] });
  t.equal(a.body.toString(), 'ok');
  t.equal(b.body.toString(), 'ok');
  t.equal(up.sockets.length, 1, 'one connection for two requests');
  t.equal(
    up.heads[0],
    `GET / HTTP/1.1\r\nhost: 127.0.0.1:${up.port}\r\nconnection: keep-alive\r\nx-a: 1`,
  );
});

t.test('at most maxIdle idle connections are kept', async (t) => {
  const up = await upstream((_h, s) => setTimeout(() => s.write(OK), 30));
  t.teardown(() => up.server.close());
  const p = pool(up.port, { maxIdle: 2 });
  t.teardown(() => p.destroy());
  await Promise.all([send(p), send(p), send(p), send(p), send(p)]);
  t.equal(up.sockets.length, 5, 'five requests at once: five connections');
  await new Promise((r) => setTimeout(r, 100));
  const open = up.sockets.filter((s) => !s.destroyed && s.readyState === 'open');
  t.equal(open.length, 2, 'two kept, three closed');
  await send(p);
  t.equal(up.sockets.length, 5, 'the next request takes a kept one');
});

t.test(
  'keepAlive false: every request on its own connection, with connection: close',
  async (t) => {
    const up = await upstream((_h, s) => s.write(OK));
    t.teardown(() => up.server.close());
    const p = pool(up.port, { keepAlive: false });
    t.teardown(() => p.destroy());
    await send(p);
    await send(p);
    t.equal(up.sockets.length, 2);
    t.match(up.heads[0], /\r\nconnection: close(?:\r\n|$)/);
  },
);

t.test('a short Keep-Alive hint is honoured; idle connections expire', async (t) => {
  const up = await upstream((h, s) =>
    s.write(
      h.includes('x-short')
        ? 'HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok'
        : OK,
    ),
  );
  t.teardown(() => up.server.close());
  const p = pool(up.port, { keepAliveTimeoutMs: 300 });
  t.teardown(() => p.destroy());
  await send(p, { headers: ['x-short', '1'] });
  await send(p);
  t.equal(up.sockets.length, 2, 'timeout=1 leaves no safe idle time: not reused');
  await new Promise((r) => setTimeout(r, 900));
  t.ok(
    up.sockets.every((s) => s.destroyed || s.readableEnded),
    'the idle connection was closed after keepAliveTimeoutMs',
  );
});

t.test('paused on a body the upstream then closes: every byte arrives, then the end', async (t) => {
  // A pattern that shows any reordering (a prime period, not a power of two).
  const big = Buffer.alloc(512 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  const up = await upstream((_h, s) => {
    s.write(`HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: ${big.length}\r\n\r\n`);
    s.end(big);
  });
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  let paused = false;
  const out = await send(p, {}, (c) => {
    if (paused) return;
    paused = true;
    c.pause();
    // Resumed long after the upstream closed.
    setTimeout(() => c.resume(), 300);
  });
  t.equal(out.error, undefined);
  t.equal(out.body.length, big.length, 'the whole body');
  t.ok(out.body.equals(big), 'in order');
});

t.test('paused on every piece, resumed on the next turn: every byte in order', async (t) => {
  const big = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  const up = await upstream((_h, s) => {
    // Chunked, many chunks per read: a pause lands mid-read (the rest waits in the client) while
    // the socket holds more.
    s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
    for (let at = 0; at < big.length; at += 4096) {
      s.write(
        Buffer.concat([Buffer.from('1000\r\n'), big.subarray(at, at + 4096), Buffer.from('\r\n')]),
      );
    }
    s.write('0\r\n\r\n');
  });
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  const out = await send(p, {}, (c) => {
    c.pause();
    setImmediate(() => c.resume());
  });
  t.equal(out.error, undefined);
  t.equal(out.body.length, big.length, 'the whole body');
  t.ok(out.body.equals(big), 'in order');
});

t.test('a body delimited by the close is complete at the close', async (t) => {
  const up = await upstream((_h, s) => s.end('HTTP/1.1 200 OK\r\n\r\nuntil close'));
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  const out = await send(p);
  t.equal(out.body.toString(), 'until close');
  t.equal(out.error, undefined);
});

t.test('streamed request bodies: chunked without a length, as is with one', async (t) => {
  const bodies: string[] = [];
  const server = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const text = buf.toString('latin1');
      if (
        text.includes('transfer-encoding: chunked')
          ? text.endsWith('0\r\n\r\n')
          : /\r\n\r\nabcdef$/.test(text)
      ) {
        bodies.push(text.slice(text.indexOf('\r\n\r\n') + 4));
        buf = Buffer.alloc(0);
        s.write(OK);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const p = pool((server.address() as { port: number }).port);
  t.teardown(() => p.destroy());
  await send(p, { method: 'POST', body: Readable.from([Buffer.from('abc'), Buffer.from('def')]) });
  await send(p, {
    method: 'POST',
    headers: ['content-length', '6'],
    body: Readable.from([Buffer.from('abc'), Buffer.from('def')]),
  });
  t.same(bodies, ['3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n', 'abcdef']);
  const long = await send(p, {
    method: 'POST',
    headers: ['content-length', '4'],
    body: Readable.from([Buffer.from('abcdef')]),
  });
  t.equal(long.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'more than declared: refused');
});

t.test('Buffer bodies of every size leave byte-exact behind their head', async (t) => {
  // At most 64 KiB the head and body are copied into one buffer (one write); above, corked.
  let received = Buffer.alloc(0);
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(
        /content-length: (\d+)/.exec(received.subarray(0, end).toString())?.[1],
      );
      if (received.length >= end + 4 + length) socket.write(OK);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const p = pool((server.address() as { port: number }).port);
  t.teardown(() => p.destroy());
  for (const size of [1, 1024, 4097, 64 * 1024, 64 * 1024 + 1, 1024 * 1024]) {
    received = Buffer.alloc(0);
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 7 + size) & 0xff;
    // A latin1 header value: its bytes go as they are, in the joined buffer as in a string write.
    const out = await send(p, {
      method: 'PUT',
      path: '/x',
      headers: ['x-name', 'caf\u00e9'],
      body,
    });
    t.equal(out.status, 200, `${size} B: answered`);
    const head = `PUT /x HTTP/1.1\r\nhost: 127.0.0.1:${(server.address() as { port: number }).port}\r\nconnection: keep-alive\r\nx-name: caf\u00e9\r\ncontent-length: ${size}\r\n\r\n`;
    t.ok(
      received.equals(Buffer.concat([Buffer.from(head, 'latin1'), body])),
      `${size} B: the upstream got exactly the head and the body`,
    );
  }
});

t.test('invalid request options fail before anything is written', async (t) => {
  const up = await upstream((_h, s) => s.write(OK));
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  for (const options of [
    { headers: ['x-a', 'a\r\nx-injected: 1'] },
    { headers: ['x a', '1'] },
    { headers: ['transfer-encoding', 'chunked'] },
    { headers: ['connection', 'close'] },
    { headers: ['host', 'elsewhere'] },
    { path: '/a b' },
    { path: '/a\nb' },
    { method: 'GE T' },
  ]) {
    const out = await send(p, options as Partial<Dispatcher.DispatchOptions>);
    t.equal(out.error?.code, 'UND_ERR_INVALID_ARG', JSON.stringify(options));
    t.notOk(out.started, 'onRequestStart not called');
  }
  t.equal(up.heads.length, 0, 'nothing reached the upstream');
});

t.test('connection refused: onRequestStart never runs; the code is ECONNREFUSED', async (t) => {
  const up = await upstream(() => {});
  const port = up.port;
  up.server.close();
  await once(up.server, 'close');
  const p = pool(port);
  const out = await send(p);
  t.equal(out.error?.code, 'ECONNREFUSED');
  t.notOk(out.started);
  await p.destroy();
});

t.test('close waits for requests in flight; destroy fails them', async (t) => {
  const up = await upstream((h, s) => {
    if (h.includes('x-slow')) setTimeout(() => s.write(OK), 200);
  });
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  const slow = send(p, { headers: ['x-slow', '1'] });
  await new Promise((r) => setTimeout(r, 20));
  const closed = p.close();
  const late = await send(p);
  t.equal(late.error?.code, 'UND_ERR_CLOSED', 'no new request after close');
  t.equal((await slow).body.toString(), 'ok', 'the request in flight finished');
  await closed;

  const q = pool(up.port);
  const hung = send(q, { headers: ['x-hang', '1'] });
  await new Promise((r) => setTimeout(r, 50));
  await q.destroy();
  t.equal((await hung).error?.code, 'UND_ERR_DESTROYED');
});

t.test('timeouts: head and body, with undici codes', async (t) => {
  const up = await upstream((h, s) => {
    if (h.includes('x-body')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
  });
  t.teardown(() => up.server.close());
  const p = pool(up.port, { headersTimeoutMs: 300, bodyTimeoutMs: 300 });
  t.teardown(() => p.destroy());
  const started = Date.now();
  const head = await send(p);
  t.equal(head.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
  t.ok(Date.now() - started < 1500, 'within the sweep slack');
  const body = await send(p, { headers: ['x-body', '1'] });
  t.equal(body.error?.code, 'UND_ERR_BODY_TIMEOUT');
  t.equal(body.body.toString(), 'abc', 'what came before was relayed');
});

t.test('upstreamRequest: head, streamed body, abort by signal', async (t) => {
  const up = await upstream((h, s) => {
    if (h.includes('x-hang')) return;
    s.write('HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5\r\n\r\nhello');
  });
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  const res = await upstreamRequest(p, { method: 'GET', path: '/', headers: { accept: 'x' } });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'text/html');
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  t.equal(Buffer.concat(chunks).toString(), 'hello');
  const again = await upstreamRequest(p, { method: 'GET', path: '/', headers: {} });
  await discardBody(again.body);
  t.equal(up.sockets.length, 1, 'the connection was reused after the body was read');
  await t.rejects(
    upstreamRequest(p, {
      method: 'GET',
      path: '/',
      headers: { 'x-hang': '1' },
      signal: AbortSignal.timeout(100),
    }),
    { name: 'TimeoutError' },
  );
});

t.test(
  'https origins: verified against the route CA, refused without it, sessions resumed',
  async (t) => {
    const pki = await makeCertAuthority(t.testdir({}));
    const resumed: boolean[] = [];
    const server = createTlsServer(pki.server, (socket) => {
      resumed.push(socket.isSessionReused());
      socket.on('data', () => {
        // One request per connection: the next one needs a new handshake.
        socket.end('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok');
      });
      socket.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const port = (server.address() as { port: number }).port;
    const make = (tls: H1PoolOptions['tls']) => {
      const p = new H1Pool({
        origin: `https://127.0.0.1:${port}`,
        tls,
        keepAlive: true,
        maxIdle: 4,
        headersTimeoutMs: 2000,
        bodyTimeoutMs: 2000,
        connectTimeoutMs: 2000,
        keepAliveTimeoutMs: 4000,
        keepAliveMaxMs: 60_000,
      });
      t.teardown(() => p.destroy());
      return p;
    };
    const trusted = make({
      secureContext: createSecureContext({ ca: readFileSync(pki.caFile) }),
      rejectUnauthorized: true,
    });
    t.equal((await send(trusted)).body.toString(), 'ok', 'the route CA verifies the upstream');
    const second = await send(trusted);
    t.equal(second.body.toString(), 'ok', String(second.error?.code ?? second.error?.message));
    t.same(resumed.slice(-2), [false, true], 'the second connection resumed the TLS session');
    const untrusted = await send(make(undefined));
    t.ok(untrusted.error, "Node's default roots do not know the test CA");
    t.equal(
      upstreamError(untrusted.error).code,
      'UPSTREAM_TLS_FAILED',
      String(untrusted.error?.code),
    );
    t.notOk(untrusted.started, 'nothing was sent');
    const unverified = await send(make({ secureContext: undefined, rejectUnauthorized: false }));
    t.equal(unverified.body.toString(), 'ok', 'tls_verify: false');
  },
);

t.test('paused in onResponseStart: no body byte until resumed', async (t) => {
  const up = await upstream((_h, s) =>
    s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'),
  );
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  const events: string[] = [];
  await new Promise<void>((resolve) => {
    p.dispatch({ method: 'GET', path: '/', headers: [] } as Dispatcher.DispatchOptions, {
      onResponseStart(c) {
        events.push('start');
        c.pause();
        setTimeout(() => {
          events.push('resume');
          c.resume();
        }, 50);
      },
      onResponseData(_c, chunk) {
        events.push(`data ${chunk.toString()}`);
      },
      onResponseEnd() {
        events.push('end');
        resolve();
      },
      onResponseError(_c, err) {
        events.push(`error ${String(err)}`);
        resolve();
      },
    });
  });
  t.same(events, ['start', 'resume', 'data hello', 'end']);
});

t.test('header records: every name is an own value, nothing is inherited', async (t) => {
  // The record has no Object.prototype behind it: names of its members are plain headers,
  // and an absent one reads undefined (worker/h1-client.ts HeaderRecord).
  // Names are lower-cased: of Object.prototype's members, these two can be header names.
  const members = ['__proto__', 'constructor'];
  const head = members.map((n, i) => `${n}: v${i}\r\n`).join('');
  const up = await upstream((h, s) => {
    if (h.startsWith('GET /plain')) s.write(OK);
    else if (h.startsWith('GET /trailers')) {
      s.write(
        `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n${head}constructor: again\r\n\r\n`,
      );
    } else s.write(`HTTP/1.1 200 OK\r\n${head}content-length: 2\r\n\r\nok`);
  });
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  const named = await send(p, { path: '/named' });
  t.equal(named.body.toString(), 'ok');
  for (const [i, n] of members.entries()) {
    t.ok(Object.hasOwn(named.headers, n), `${n} is own`);
    t.equal(named.headers[n], `v${i}`, `${n} is the upstream's value`);
  }
  t.same(Object.keys(named.headers).sort(), [...members, 'content-length'].sort());
  const keys: string[] = [];
  for (const k in named.headers) keys.push(k);
  t.same(keys.sort(), [...members, 'content-length'].sort(), 'for-in sees the same names');

  const plain = await send(p, { path: '/plain' });
  for (const n of [...members, 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf']) {
    t.equal(plain.headers[n], undefined, `absent ${n} reads undefined`);
    t.notOk(n in plain.headers, `absent ${n} is not in`);
  }
  t.equal(Object.getPrototypeOf(Object.getPrototypeOf(plain.headers)), null);

  const trailers: Record<string, unknown>[] = [];
  await new Promise<void>((resolve) => {
    p.dispatch({ method: 'GET', path: '/trailers', headers: [] } as Dispatcher.DispatchOptions, {
      onResponseEnd(_c, tr) {
        trailers.push(tr as Record<string, unknown>);
        resolve();
      },
      onResponseError() {
        resolve();
      },
    });
  });
  t.equal(trailers.length, 1);
  t.same(trailers[0]!.constructor, ['v1', 'again'], 'a repeated member name is a list');
  t.equal(trailers[0]!.__proto__, 'v0');
  t.equal(trailers[0]!.toString, undefined);
});

t.test('a head with names outside the known ones: every header kept, in order', async (t) => {
  // Known names go in a record with hidden classes; the first other name moves the record to a
  // dictionary (worker/h1-client.ts dictionaryOf): nothing may be lost in the move.
  let n = 0;
  const up = await upstream((_h, s) => {
    n++;
    s.write(
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n' +
        `x-meta-${n}: m${n}\r\netag: "e"\r\nX-Meta-${n}: again\r\ncontent-length: 2\r\n\r\nok`,
    );
  });
  t.teardown(() => up.server.close());
  const p = pool(up.port);
  t.teardown(() => p.destroy());
  for (let i = 1; i <= 3; i++) {
    const r = await send(p);
    t.equal(r.body.toString(), 'ok');
    t.same(Object.keys(r.headers), [
      'content-type',
      'set-cookie',
      `x-meta-${i}`,
      'etag',
      'content-length',
    ]);
    t.same(r.headers['set-cookie'], ['a=1', 'b=2'], 'a list made before the move survives it');
    t.same(r.headers[`x-meta-${i}`], [`m${i}`, 'again']);
    t.equal(r.headers.etag, '"e"');
    t.equal(r.headers.constructor, undefined);
  }
});

// How answers come back from upstreams that do legal but unusual things: interim answers, HEAD
// with a length, answers before the upload ended, keep-alive connections that died while idle.
import { request } from 'node:http';
import t from 'tap';
import { type RunningGateway, startGateway, waitFor } from './helpers/gateway.js';
import { parseResponses, rawConnection, rawExchange } from './helpers/raw-http.js';
import { answer, startScriptedUpstream } from './helpers/scripted-upstream.js';
import { startUpstream } from './helpers/upstream.js';

const HEAD_LENGTH = 1234;

const scripted = await startScriptedUpstream((req) => {
  const [, kind, arg] = req.path.split('/');
  switch (kind) {
    case 'interim': {
      const hint = arg === '103' ? 'link: </style.css>; rel=preload\r\n' : '';
      const interim = arg === '100x2' ? '100 Continue' : `${arg} Whatever`;
      const first = `HTTP/1.1 ${interim}\r\n${hint}\r\n`;
      const final =
        req.method === 'HEAD'
          ? `HTTP/1.1 200 OK\r\ncontent-length: ${HEAD_LENGTH}\r\n\r\n`
          : answer('200 OK', 'final');
      if (arg === '100x2') return { parts: [first, first, final], gapMs: 20 };
      if (arg === '103then100') {
        const hints = 'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n';
        return { parts: [hints, 'HTTP/1.1 100 Continue\r\n\r\n', final], gapMs: 20 };
      }
      if (arg === '100lf') return { parts: ['HTTP/1.1 100 Continue\n\n', final], gapMs: 20 };
      if (arg === '100split')
        return { parts: ['HTTP/1.1 1', '00 Continue\r', '\n\r\n', final], gapMs: 20 };
      return { parts: [first, final], gapMs: 20 };
    }
    case 'head':
      return { parts: [`HTTP/1.1 200 OK\r\ncontent-length: ${HEAD_LENGTH}\r\n\r\n`] };
    case 'stale':
      // Serves the first request of each connection, then drops the connection when the next
      // one arrives: what a pooled connection the upstream closed while idle looks like.
      return req.indexOnConnection === 0
        ? { parts: [answer('200 OK', `served on ${req.connection}`)] }
        : { after: 'destroy' };
    case 'dead':
      return { after: 'destroy' };
    case 'short':
      // Announces 100 bytes, sends 9, closes: the answer cannot be completed.
      return { parts: ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n123456789'], after: 'end' };
    case 'early':
      return {
        parts: [answer('413 Payload Too Large', 'too big', { 'content-type': 'text/plain' })],
        readBody: false,
        after: arg === 'fin' ? 'end' : 'keep',
      };
    default:
      return { parts: [answer('200 OK', 'default')] };
  }
});
// Like a Node backend that refuses an upload at once without reading it.
const echo = await startUpstream((req, res) => {
  if (req.url !== '/refuse-upload') return false;
  res.writeHead(413, { 'content-type': 'text/plain' });
  res.end('too big');
  return true;
});

const gw: RunningGateway = await startGateway({
  // Generous: under a parallel test run a 4 MiB upload can outlast a few seconds; nothing
  // here tests the timeout itself.
  config: { client_timeout: 15_000 },
  routes: `routes:
  - prefix: /s
    target: ${scripted.origin}
    secure: false
  - prefix: /e
    target: ${echo.origin}
    secure: false
`,
});
t.teardown(async () => {
  await gw.stop();
  await scripted.close();
  await echo.close();
});

t.test('interim answers never end or break an exchange', async (t) => {
  for (const arg of ['100', '100x2', '100split', '102', '103', '103then100', '100lf']) {
    for (const method of ['GET', 'HEAD', 'POST']) {
      const body = method === 'POST' ? 'a=1' : '';
      const head =
        `${method} /s/interim/${arg} HTTP/1.1\r\nHost: x\r\n` +
        (body ? `content-type: text/plain\r\ncontent-length: ${body.length}\r\n` : '') +
        '\r\n';
      // The exchange, then another request on the same client connection.
      const result = await rawExchange(
        gw.port,
        [head + body, 'GET /s/next HTTP/1.1\r\nHost: x\r\n\r\n'],
        { methods: [method, 'GET'], sequential: true, waitMs: 1000 },
      );
      const [first, second] = result.responses;
      t.equal(first?.status, 200, `${method} after ${arg}: the final status`);
      if (method === 'HEAD') {
        t.equal(first?.headers.get('content-length')?.[0], String(HEAD_LENGTH));
      } else {
        t.equal(first?.body.toString(), 'final', `${method} after ${arg}: the final body`);
      }
      t.equal(second?.status, 200, `${method} after ${arg}: the connection still works`);
    }
  }
});

t.test('a proxied HEAD with a length leaves the client connection usable', async (t) => {
  const result = await rawExchange(
    gw.port,
    [
      'HEAD /s/head HTTP/1.1\r\nHost: x\r\n\r\n',
      'HEAD /s/head HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /s/after HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    { methods: ['HEAD', 'HEAD', 'GET'], sequential: true },
  );
  t.same(
    result.responses.map((r) => r.status),
    [200, 200, 200],
    'all three answered on one connection',
  );
  t.equal(result.responses[0]?.headers.get('content-length')?.[0], String(HEAD_LENGTH));
  t.equal(result.responses[0]?.body.length, 0);
  t.equal(result.responses[2]?.body.toString(), 'default');
  t.equal(result.rest.length, 0, 'no stray bytes');
});

function uploadWithNodeHttp(
  path: string,
  bytes: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gw.port,
        method: 'POST',
        path,
        headers: { 'content-length': bytes },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 97);
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

t.test('an upstream that answers before the upload ended reaches the client', async (t) => {
  const size = 4 * 1024 * 1024;
  for (const path of ['/e/refuse-upload', '/s/early/keep', '/s/early/fin']) {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', body: Buffer.alloc(size, 97) });
      t.equal(res.status, 413, `${path} (fetch #${i}): the upstream's status`);
      t.equal(await res.text(), 'too big', `${path} (fetch #${i}): the upstream's body`);
      const viaHttp = await uploadWithNodeHttp(path, size);
      t.same(viaHttp, { status: 413, body: 'too big' }, `${path} (node:http #${i})`);
    }
    // A client that waits for 100 Continue before sending the body.
    const result = await rawExchange(gw.port, [
      `POST ${path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${size}\r\n\r\n`,
      Buffer.alloc(256 * 1024, 97),
    ]);
    const final = result.responses.find((r) => r.status >= 200);
    t.equal(final?.status, 413, `${path} (Expect: 100-continue)`);
    t.equal(final?.body.toString(), 'too big');
  }
});

t.test('a chunked answer that must close the connection keeps its framing', async (t) => {
  // The refused upload's answer is chunked (Node's default) and announces connection: close.
  const result = await rawExchange(gw.port, [
    'POST /e/refuse-upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n',
    Buffer.alloc(64 * 1024, 97),
  ]);
  const res = result.responses[0];
  t.equal(res?.status, 413);
  t.equal(res?.headers.get('transfer-encoding')?.[0], 'chunked');
  t.equal(res?.headers.get('connection')?.[0], 'close');
  t.equal(res?.body.toString(), 'too big', 'the chunked body parses whole');
  t.equal(result.rest.length, 0, 'nothing after the last chunk');
});

t.test('a request on a pooled connection the upstream dropped is retried once', async (t) => {
  // Warm the pool: each connection serves one request, then dies when reused.
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${gw.url}/s/stale`);
    t.equal(res.status, 200, `GET #${i}`);
    t.match(await res.text(), /^served on \d+$/);
  }
  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
    const res = await fetch(`${gw.url}/s/stale`, { method });
    t.equal(res.status, 200, `${method} on a stale pooled connection: retried`);
  }
  const before = scripted.requests.length;
  const dead = await fetch(`${gw.url}/s/dead`);
  t.equal(dead.status, 502, 'an upstream that always drops the connection: 502');
  t.equal(((await dead.json()) as { error: string }).error, 'UPSTREAM_FAILED');
  t.equal(
    scripted.requests.slice(before).filter((r) => r.path === '/dead').length,
    2,
    'tried twice, not more',
  );
});

t.test(
  'an upstream that dies mid-body: the client is cut, the log blames the upstream',
  async (t) => {
    const result = await rawExchange(gw.port, ['GET /s/short HTTP/1.1\r\nHost: x\r\n\r\n']);
    t.ok(result.closed, 'the client connection is cut (the only honest signal left)');
    t.equal(result.responses.length, 0, 'no complete answer');
    t.match(result.rest.toString(), /^HTTP\/1\.1 200 OK/, 'the head had gone out');
    t.ok(
      await waitFor(() => gw.output().includes('"path":"/s/short","status":502'), 5_000),
      'logged as 502, not as a client abort (499)',
    );
    t.match(gw.output(), /"path":"\/s\/short","status":502[^\n]*"code":"UPSTREAM_FAILED"/);
    t.match(
      gw.output(),
      /"code":"UPSTREAM_FAILED"[^\n]*"message":"request failed"|"message":"request failed"[^\n]*"code":"UPSTREAM_FAILED"/,
    );
  },
);

t.test('a request with a body that reached the upstream is not sent twice', async (t) => {
  for (const method of ['POST', 'PUT', 'PATCH']) {
    const before = scripted.requests.length;
    const res = await fetch(`${gw.url}/s/dead`, { method, body: 'once' });
    const attempts = scripted.requests.slice(before).filter((r) => r.method === method).length;
    t.equal(attempts, 1, `${method}: one attempt`);
    t.equal(res.status, 502, `${method}: 502`);
  }
});

t.test('draining: a chunked answer says connection: close and keeps its framing', async (t) => {
  const local: RunningGateway = await startGateway({
    routes: `routes:\n  - prefix: /e\n    target: ${echo.origin}\n    secure: false\n`,
  });
  t.teardown(() => local.stop());
  const socket = await rawConnection(local.port);
  let data = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    data = Buffer.concat([data, d]);
  });
  socket.write('GET /e/chunked/1000 HTTP/1.1\r\nHost: x\r\n\r\n');
  t.ok(await waitFor(() => parseResponses(data, ['GET']).responses.length === 1, 3000));
  local.proc.kill('SIGTERM');
  // The edge is draining (it stops listening at once); the open connection may still ask.
  await new Promise((r) => setTimeout(r, 100));
  socket.write('GET /e/chunked/70000 HTTP/1.1\r\nHost: x\r\n\r\n');
  t.ok(await waitFor(() => parseResponses(data, ['GET', 'GET']).responses.length === 2, 3000));
  const { responses, rest } = parseResponses(data, ['GET', 'GET']);
  t.equal(responses[1]?.status, 200);
  t.equal(responses[1]?.headers.get('connection')?.[0], 'close');
  t.equal(responses[1]?.body.length, 70000, 'the whole chunked body');
  t.equal(rest.length, 0, 'nothing after the last chunk');
  socket.destroy();
});

t.test('a GET with a body goes upstream on a connection used once', async (t) => {
  const result = await rawExchange(gw.port, [
    'GET /e/with-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
  ]);
  t.equal(result.responses[0]?.status, 200);
  const echo = JSON.parse(result.responses[0]?.body.toString() ?? '{}') as {
    bodyBytes: number;
    headers: Record<string, string>;
  };
  t.equal(echo.bodyBytes, 5, 'the body is forwarded');
  t.equal(echo.headers.connection, 'close', 'and the upstream connection is not reused');
  const plain = await rawExchange(gw.port, ['GET /e/no-body HTTP/1.1\r\nHost: x\r\n\r\n']);
  const plainEcho = JSON.parse(plain.responses[0]?.body.toString() ?? '{}') as {
    headers: Record<string, string>;
  };
  t.equal(plainEcho.headers.connection, 'keep-alive', 'without a body it is kept alive');
});

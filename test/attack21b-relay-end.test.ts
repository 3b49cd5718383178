// Attacks on the relay's one-read end() (worker/upstream-relay.ts onResponseData, uws-io.ts
// endProxiedWith): paused clients with pipelined requests, clients gone mid-answer, HEAD,
// bodies longer or shorter than their Content-Length, uploads still streaming, Connection: close.
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { startHostileUpstream } from './helpers/hostile-upstream.js';
import { parseResponses, pausedClient, rawExchange } from './helpers/raw-http.js';
import { routesYaml } from './helpers/routes-yaml.js';

function bodyOf(size: number): Buffer {
  const body = Buffer.alloc(size, 0x61);
  for (let i = 0; i < size; i += 997) body[i] = 0x30 + (i % 10);
  return body;
}

/** An answer in one piece: a head announcing `announced` bytes, then `sent` bytes of body. */
function answer(announced: number, sent: number): Buffer {
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${announced}\r\n\r\n`),
    bodyOf(sent),
  ]);
}

const up = await startHostileUpstream((req) => {
  const [, kind = '', arg = '0'] = req.target.split('/');
  const size = Number(arg);
  switch (kind) {
    case 'size':
      return { chunks: [answer(size, size)], after: 'keep' };
    case 'long':
      // Announces `size`, sends 2 more bytes in the same read.
      return { chunks: [answer(size, size + 2)], after: 'end' };
    case 'short':
      return { chunks: [answer(size + 5, size)], after: 'end' };
    case 'early':
      // Answers before the upload is read.
      return { chunks: [answer(size, size)], after: 'hang', readBody: false };
    default:
      return { chunks: ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'], after: 'keep' };
  }
});

/**
 * Collects what `socket` reads and whether `event` came; `done(ms)` waits up to `ms` for it,
 * then destroys the socket and parses what it read.
 */
function readUntil(socket: Socket, event: 'close' | 'end') {
  const chunks: Buffer[] = [];
  const reading = {
    seen: false,
    async done(ms: number) {
      const deadline = Date.now() + ms;
      while (!reading.seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      socket.destroy();
      return parseResponses(Buffer.concat(chunks), []);
    },
  };
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on(event, () => {
    reading.seen = true;
  });
  socket.on('error', () => {});
  return reading;
}

const gw: RunningGateway = await startGateway({
  config: { num_instances: 1 },
  routes: routesYaml(up.origin, [
    { prefix: '/h', path: '', secure: false },
    { prefix: '/nc', path: '', secure: false, cache: false },
  ]),
});
t.teardown(async () => {
  await gw.stop();
  await up.close();
});

t.test('one keep-alive connection, a client paused on each answer: every body whole', async (t) => {
  // Pipelined requests are refused by design (README): each request goes once the last answer
  // was read whole, after the client sat paused while the answer was written.
  const sizes = [60000, 1, 50000, 16384, 3, 60000, 2, 65000, 1024, 60000];
  const client = await pausedClient(gw.port);
  for (const size of sizes) {
    const request = `GET /h/size/${size} HTTP/1.1\r\nhost: x\r\n\r\n`;
    const { responses, rest } = await client.ask(request, 150, 3000);
    t.ok(responses[0]?.body.equals(bodyOf(size)), `${size} B: intact`);
    t.equal(rest.length, 0, `${size} B: nothing more`);
  }
  client.close();
});

t.test('clients gone right after the request or mid-answer: later requests served', async (t) => {
  for (let i = 0; i < 10; i++) {
    const socket = connect({ host: '127.0.0.1', port: gw.port });
    await new Promise((r) => socket.once('connect', r));
    socket.write('GET /h/size/60000 HTTP/1.1\r\nhost: x\r\n\r\n');
    if (i % 2 === 0) socket.destroy();
    else socket.once('data', () => socket.destroy());
  }
  await new Promise((r) => setTimeout(r, 200));
  const res = await rawExchange(gw.port, ['GET /h/size/60000 HTTP/1.1\r\nhost: x\r\n\r\n']);
  t.ok(res.responses[0]?.body.equals(bodyOf(60000)));
});

t.test('HEAD: no body bytes', async (t) => {
  const res = await rawExchange(
    gw.port,
    ['HEAD /h/size/5 HTTP/1.1\r\nhost: x\r\n\r\n', 'GET /h/plain HTTP/1.1\r\nhost: x\r\n\r\n'],
    { methods: ['HEAD', 'GET'], sequential: true },
  );
  t.same(
    res.responses.map((r) => r.status),
    [200, 200],
  );
  t.equal(res.responses[0]?.headers.get('content-length')?.[0], '5');
  t.equal(res.responses[1]?.body.toString(), 'ok');
  t.equal(res.rest.length, 0);
});

t.test('a body longer than its length: only the length relayed', async (t) => {
  const res = await rawExchange(
    gw.port,
    ['GET /h/long/10 HTTP/1.1\r\nhost: x\r\n\r\n', 'GET /h/plain HTTP/1.1\r\nhost: x\r\n\r\n'],
    { sequential: true },
  );
  t.equal(res.responses[0]?.body.length, 10);
  t.ok(res.responses[0]?.body.equals(bodyOf(12).subarray(0, 10)));
  t.equal(res.responses[1]?.body.toString(), 'ok', `rest: ${JSON.stringify(res.rest.toString())}`);
});

t.test('a short body: the client connection is cut', async (t) => {
  const res = await rawExchange(gw.port, ['GET /h/short/10 HTTP/1.1\r\nhost: x\r\n\r\n'], {
    waitMs: 1500,
  });
  t.equal(res.responses.length, 0);
  t.ok(res.closed);
});

t.test('an upload still streaming when the answer comes: answer whole, then close', async (t) => {
  const socket = connect({ host: '127.0.0.1', port: gw.port });
  await new Promise((r) => socket.once('connect', r));
  const reading = readUntil(socket, 'close');
  const total = 2_000_000;
  socket.write(`POST /h/early/40000 HTTP/1.1\r\nhost: x\r\ncontent-length: ${total}\r\n\r\n`);
  const piece = Buffer.alloc(65536, 0x62);
  let sent = 0;
  while (sent < total && !reading.seen) {
    const n = Math.min(piece.length, total - sent);
    if (!socket.write(piece.subarray(0, n))) await new Promise((r) => setTimeout(r, 5));
    sent += n;
    await new Promise((r) => setImmediate(r));
  }
  const { responses } = await reading.done(4000);
  t.equal(responses[0]?.status, 200);
  t.ok(responses[0]?.body.equals(bodyOf(40000)), 'answer intact');
  t.equal(responses[0]?.headers.get('connection')?.[0], 'close');
  t.comment(`sent ${sent}, closed ${reading.seen}`);
});

t.test('Connection: close with a paused client: the whole body, then FIN', async (t) => {
  const socket = connect({ host: '127.0.0.1', port: gw.port });
  await new Promise((r) => socket.once('connect', r));
  socket.pause();
  socket.write('GET /h/size/60000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  await new Promise((r) => setTimeout(r, 500));
  const reading = readUntil(socket, 'end');
  socket.resume();
  const { responses, rest } = await reading.done(3000);
  t.ok(responses[0]?.body.equals(bodyOf(60000)));
  t.ok(reading.seen, 'FIN');
  t.equal(rest.length, 0);
});

t.test('a cache: false route: the edited head, then the body whole', async (t) => {
  const res = await rawExchange(
    gw.port,
    [
      'GET /nc/size/40000 HTTP/1.1\r\nhost: x\r\n\r\n',
      'GET /nc/size/7 HTTP/1.1\r\nhost: x\r\n\r\n',
    ],
    { sequential: true },
  );
  t.equal(res.responses.length, 2);
  for (const [i, size] of [40000, 7].entries()) {
    const r = res.responses[i];
    t.equal(r?.headers.get('cache-control')?.[0], 'no-store');
    t.same(r?.headers.get('content-length'), [String(size)]);
    t.ok(r?.body.equals(bodyOf(size)), `${size} B: intact`);
  }
  t.equal(res.rest.length, 0);
});

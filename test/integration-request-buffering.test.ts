// Request bodies declared at most BUFFERED_BODY_BYTES long are read whole before the upstream
// is asked (worker/proxy-handler.ts); longer and chunked bodies stream. Observed from a raw
// upstream that records every byte it receives and when.
import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { BUFFERED_BODY_BYTES } from '../worker/proxy-handler.js';
import { login, startGateway } from './helpers/gateway.js';
import { parseResponses, rawConnection } from './helpers/raw-http.js';

/** Everything one upstream connection received, in arrival order. */
interface Received {
  bytes: Buffer;
  /** Sizes of the reads, in order: how the request arrived. */
  reads: number[];
}

const received: Received[] = [];

/**
 * Answers each request once its body is complete (Content-Length or chunked) with
 * `got <n> bytes <expect header or ->`, keep-alive.
 */
const upstream = createServer((socket: Socket) => {
  const seen: Received = { bytes: Buffer.alloc(0), reads: [] };
  received.push(seen);
  let pending = Buffer.alloc(0);
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    seen.bytes = Buffer.concat([seen.bytes, chunk]);
    seen.reads.push(chunk.length);
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = pending.subarray(0, end).toString('latin1').toLowerCase();
      const length = /\r\ncontent-length: (\d+)/.exec(head)?.[1];
      let bodyEnd: number;
      let bodyBytes: number;
      if (length !== undefined) {
        bodyBytes = Number(length);
        bodyEnd = end + 4 + bodyBytes;
        if (pending.length < bodyEnd) return;
      } else if (head.includes('\r\ntransfer-encoding: chunked')) {
        const last = pending.indexOf('\r\n0\r\n\r\n', end);
        if (last === -1) return;
        bodyEnd = last + 7;
        bodyBytes = -1;
      } else {
        bodyEnd = end + 4;
        bodyBytes = 0;
      }
      const expect = /\r\nexpect: ([^\r]*)/.exec(head)?.[1] ?? '-';
      pending = pending.subarray(bodyEnd);
      const answer = `got ${bodyBytes} bytes ${expect}`;
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${answer.length}\r\n\r\n${answer}`);
    }
  });
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;

const gw = await startGateway({
  routes: `routes:\n  - prefix: /up\n    target: ${origin}\n`,
});
const token = await login(gw.url);
t.teardown(async () => {
  await gw.stop();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Bytes every upstream connection received so far. */
const upstreamBytes = () => received.reduce((sum, r) => sum + r.bytes.length, 0);

function head(extra: string): string {
  return `POST /up/x HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer ${token}\r\n${extra}\r\n`;
}

/** Reads one whole answer from `socket` (up to `ms`). */
async function answerOf(socket: Socket, ms = 5000) {
  let data = Buffer.alloc(0);
  const onData = (d: Buffer) => {
    data = Buffer.concat([data, d]);
  };
  socket.on('data', onData);
  const deadline = Date.now() + ms;
  while (parseResponses(data, []).responses.length === 0 && Date.now() < deadline) await sleep(10);
  socket.off('data', onData);
  return parseResponses(data, []).responses[0];
}

/** Sends a head and part of the body, waits, and reports what the upstream got meanwhile. */
async function partial(declared: number, sent: number, extraHeaders = '') {
  const before = upstreamBytes();
  const socket = await rawConnection(gw.port);
  socket.on('error', () => {});
  socket.write(head(`content-length: ${declared}\r\n${extraHeaders}`));
  socket.write(Buffer.alloc(sent, 0x61));
  await sleep(400);
  return { socket, upstreamGot: upstreamBytes() - before };
}

t.test('a small body is read whole before the upstream sees anything', async (t) => {
  const { socket, upstreamGot } = await partial(1000, 400);
  t.equal(upstreamGot, 0, 'no byte reached the upstream while the body was incomplete');
  socket.write(Buffer.alloc(600, 0x61));
  const answer = await answerOf(socket);
  t.equal(answer?.status, 200);
  t.equal(answer?.body.toString(), 'got 1000 bytes -', 'the whole body, once');
  socket.destroy();
});

t.test('the head and a small body reach the upstream in one read', async (t) => {
  const socket = await rawConnection(gw.port);
  // A fresh upstream connection: the first read on it is this request.
  const connections = received.length;
  const body = Buffer.alloc(1024, 0x62);
  socket.write(Buffer.concat([Buffer.from(head(`content-length: ${body.length}\r\n`)), body]));
  const answer = await answerOf(socket);
  t.equal(answer?.body.toString(), 'got 1024 bytes -');
  socket.destroy();
  const fresh = received.slice(connections);
  if (fresh.length > 0) {
    const first = fresh[0]!;
    const requestBytes = first.bytes.indexOf('\r\n\r\n') + 4 + body.length;
    t.equal(first.reads[0], requestBytes, 'the first read holds the head and the whole body');
  } else {
    // A kept connection: the request is the tail of its bytes; still one read.
    const conn = received.find((r) => r.bytes.subarray(-body.length).equals(body));
    t.ok(conn, 'the body reached the upstream');
    const lastRead = conn!.reads.at(-1)!;
    t.ok(lastRead > body.length, `the last read (${lastRead} B) holds the head and the body`);
  }
});

t.test('a client that leaves mid-body: nothing reaches the upstream', async (t) => {
  const { socket, upstreamGot } = await partial(2000, 1000);
  t.equal(upstreamGot, 0);
  const before = upstreamBytes();
  socket.destroy();
  await sleep(300);
  t.equal(upstreamBytes() - before, 0, 'still nothing after the client left');
  // The edge is fine: the next request is served.
  const res = await fetch(`${gw.url}/up/y`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: 'hello',
  });
  t.equal(res.status, 200);
  t.equal(await res.text(), 'got 5 bytes -');
});

t.test('the limit: exactly BUFFERED_BODY_BYTES is buffered, one byte more streams', async (t) => {
  t.equal(BUFFERED_BODY_BYTES, 16 * 1024, 'the documented limit');
  const atLimit = await partial(BUFFERED_BODY_BYTES, 1000);
  t.equal(atLimit.upstreamGot, 0, 'at the limit: buffered');
  atLimit.socket.write(Buffer.alloc(BUFFERED_BODY_BYTES - 1000, 0x61));
  t.equal((await answerOf(atLimit.socket))?.body.toString(), `got ${BUFFERED_BODY_BYTES} bytes -`);
  atLimit.socket.destroy();

  const over = await partial(BUFFERED_BODY_BYTES + 1, 1000);
  t.ok(over.upstreamGot >= 1000, `one byte over: streamed (${over.upstreamGot} B already)`);
  over.socket.write(Buffer.alloc(BUFFERED_BODY_BYTES + 1 - 1000, 0x61));
  t.equal((await answerOf(over.socket))?.body.toString(), `got ${BUFFERED_BODY_BYTES + 1} bytes -`);
  over.socket.destroy();
});

t.test('a chunked body streams, whatever its size', async (t) => {
  const before = upstreamBytes();
  const socket = await rawConnection(gw.port);
  socket.write(head('transfer-encoding: chunked\r\n'));
  socket.write('5\r\nhello\r\n');
  await sleep(400);
  t.ok(upstreamBytes() - before > 0, 'the head and the first chunk left before the end');
  socket.write('0\r\n\r\n');
  t.equal((await answerOf(socket))?.body.toString(), 'got -1 bytes -');
  socket.destroy();
});

t.test('Expect: 100-continue on a small body: 100 from the gateway, then the body', async (t) => {
  const socket = await rawConnection(gw.port);
  let data = '';
  socket.on('data', (d: Buffer) => {
    data += d.toString('latin1');
  });
  socket.write(head('content-length: 11\r\nexpect: 100-continue\r\n'));
  const deadline = Date.now() + 3000;
  while (!data.includes('\r\n\r\n') && Date.now() < deadline) await sleep(10);
  t.match(data, /^HTTP\/1\.1 100 Continue\r\n/, 'the client is told to go on');
  socket.write('hello world');
  while (!data.includes('got ') && Date.now() < deadline + 2000) await sleep(10);
  t.match(data, /got 11 bytes -$/, 'the body arrived; Expect is not forwarded');
  socket.destroy();
});

t.test('several small POSTs on one client connection, back to back', async (t) => {
  const socket = await rawConnection(gw.port);
  for (let i = 1; i <= 20; i++) {
    const body = 'x'.repeat(i * 100);
    socket.write(`${head(`content-length: ${body.length}\r\n`)}${body}`);
    const answer = await answerOf(socket);
    t.equal(answer?.body.toString(), `got ${body.length} bytes -`, `request ${i}`);
  }
  socket.destroy();
});

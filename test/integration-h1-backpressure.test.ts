// The own upstream client (worker/h1-client.ts) under a client that reads slowly: every byte of
// the upstream's answer reaches the client, in order, whatever the framing and however the
// answer's bytes are cut into reads.
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { login, type RunningGateway, startGateway } from './helpers/gateway.js';
import { rawConnection } from './helpers/raw-http.js';

const BODY = 8 * 1024 * 1024;
/** Small chunks: one read of the upstream's bytes holds many of them. */
const PIECE = 1000;

function body(): Buffer {
  const b = Buffer.alloc(BODY);
  for (let i = 0; i < BODY; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
  return b;
}
const EXPECTED = body();
const EXPECTED_SHA = createHash('sha256').update(EXPECTED).digest('hex');

/** The body as chunked framing, PIECE bytes per chunk. */
function chunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < data.length; at += PIECE) {
    const piece = data.subarray(at, Math.min(at + PIECE, data.length));
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}
const CHUNKED = chunked(EXPECTED);

// A raw upstream: /chunked answers with the body in PIECE-byte chunks, /length with a
// Content-Length, both written in 64 KiB writes with backpressure.
const sockets = new Set<Socket>();
const upstream = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  let buf = '';
  socket.on('data', async (d: Buffer) => {
    buf += d.toString('latin1');
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) return;
    const target = buf.split(' ')[1] ?? '';
    buf = buf.slice(end + 4);
    const isChunked = target.endsWith('/chunked');
    const head = isChunked
      ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'
      : `HTTP/1.1 200 OK\r\ncontent-length: ${BODY}\r\n\r\n`;
    const payload = Buffer.concat([Buffer.from(head), isChunked ? CHUNKED : EXPECTED]);
    for (let at = 0; at < payload.length; at += 64 * 1024) {
      if (socket.destroyed) return;
      if (!socket.write(payload.subarray(at, at + 64 * 1024)))
        await new Promise((r) => socket.once('drain', r));
    }
  });
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;

const gw: RunningGateway = await startGateway({
  config: { client_timeout: 30_000 },
  routes: `routes:\n  - prefix: /up\n    target: ${origin}\n`,
});
const token = await login(gw.url);
t.teardown(async () => {
  await gw.stop();
  for (const s of sockets) s.destroy();
  upstream.close();
});

/**
 * GET `path` on a raw connection whose reading stops for `stallMs` after every `burst` bytes:
 * the gateway's socket to the client fills, and the relay pauses the upstream connection many
 * times. Resolves with the decoded body.
 */
async function slowGet(path: string, burst: number, stallMs: number): Promise<Buffer> {
  const socket = await rawConnection(gw.port);
  socket.setNoDelay(true);
  socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n\r\n`);
  const chunks: Buffer[] = [];
  let sinceStall = 0;
  // Nothing read at first: the kernel's buffers fill, then uWS's, and the relay pauses.
  socket.pause();
  setTimeout(() => socket.resume(), 300);
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      sinceStall += d.length;
      if (isComplete(Buffer.concat(chunks))) {
        socket.destroy();
        resolve();
        return;
      }
      if (sinceStall >= burst) {
        sinceStall = 0;
        socket.pause();
        setTimeout(() => socket.resume(), stallMs);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
  return decode(Buffer.concat(chunks));
}

function isComplete(raw: Buffer): boolean {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = raw.subarray(0, end).toString('latin1').toLowerCase();
  const cl = /content-length: (\d+)/.exec(head);
  if (cl) return raw.length - end - 4 >= Number(cl[1]);
  return raw.subarray(raw.length - 5).toString() === '0\r\n\r\n';
}

/** The body of one response (Content-Length or chunked); throws on broken framing. */
function decode(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`no head in ${raw.length} bytes`);
  const head = raw.subarray(0, end).toString('latin1').toLowerCase();
  const rest = raw.subarray(end + 4);
  if (!head.includes('transfer-encoding: chunked')) return rest;
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = rest.indexOf('\r\n', at);
    const size = eol === -1 ? 0 : Number.parseInt(rest.subarray(at, eol).toString('latin1'), 16);
    // A cut or broken body: what came so far (the length check then fails).
    if (size === 0 || Number.isNaN(size)) return Buffer.concat(parts);
    parts.push(rest.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

t.test('a chunked answer to a slow reader arrives whole and in order', async (t) => {
  const got = await slowGet('/up/chunked', 256 * 1024, 5);
  t.equal(got.length, BODY, 'every byte');
  t.equal(sha(got), EXPECTED_SHA, 'in order');
});

t.test('an answer with a length to a slow reader arrives whole and in order', async (t) => {
  const got = await slowGet('/up/length', 256 * 1024, 5);
  t.equal(got.length, BODY, 'every byte');
  t.equal(sha(got), EXPECTED_SHA, 'in order');
});

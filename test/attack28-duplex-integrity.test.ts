// The pause protocol (worker/uws-io.ts pauseBody/unblock): while an answer's write waits for
// the client, the upload is read on and its pause is applied at the drain. Whatever the order
// of pauses, resumes and drains, the body the upstream reads must be the client's, byte for
// byte, and the answer must not stall. The upstream here answers while it reads the body in
// bursts (8 MiB streamed as the body comes), and ends its answer with the SHA-256 of the body
// it read; the client checks it against what it sent.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { patternChunk, startUpstream } from './helpers/upstream.js';

const MIB = 1024 * 1024;
const ANSWER = 8 * MIB;
const upstream = await startUpstream((req, res) => {
  if (req.url !== '/duplex-hash') return false;
  res.writeHead(200, { 'content-length': ANSWER });
  const hash = createHash('sha256');
  let offset = 0;
  let bodyDone = false;
  let waiting = false;
  // Up to ANSWER - 64 bytes while the body comes, then the body's hash (64 hex chars).
  const write = (): void => {
    waiting = false;
    while (offset < ANSWER - 64) {
      const n = Math.min(64 * 1024, ANSWER - 64 - offset);
      const ok = res.write(patternChunk(offset, n));
      offset += n;
      if (!ok) {
        waiting = true;
        return void res.once('drain', write);
      }
    }
    if (bodyDone) res.end(hash.digest('hex'));
  };
  let pieces = 0;
  req.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    // Bursts: a pause now and then, the reader's backpressure on the gateway's stream.
    if (++pieces % 3 === 0) {
      req.pause();
      setTimeout(() => req.resume(), pieces % 2);
    }
  });
  req.on('end', () => {
    bodyDone = true;
    if (!waiting) write();
  });
  write();
  return true;
});
const gw = await startGateway({
  config: { num_instances: 1, client_timeout: 20_000 },
  routes: ['routes:', '  - prefix: /u', `    target: ${upstream.origin}`, '    secure: false'].join(
    '\n',
  ),
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

interface Round {
  chunked: boolean;
  close: boolean;
  size: number;
  /** The client reads its answer in bursts (pausing its socket) rather than at once. */
  slowReader: boolean;
}

function round(r: Round, body: Buffer): Promise<{ hash: string; got: number; how: string }> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1');
    const bufs: Buffer[] = [];
    let got = 0;
    let settled = false;
    const finish = (how: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(bufs).toString('latin1');
      resolve({ hash: all.slice(-64), got, how });
    };
    const timer = setTimeout(() => finish('stalled'), 8_000);
    let headEnd = -1;
    let headText = '';
    socket.on('data', (d: Buffer) => {
      if (headEnd < 0) {
        headText += d.toString('latin1');
        headEnd = headText.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        d = Buffer.from(headText.slice(headEnd + 4), 'latin1');
      }
      got += d.length;
      bufs.push(d.subarray(Math.max(0, d.length - 64)));
      if (bufs.length > 4) bufs.splice(0, bufs.length - 4);
      if (got >= ANSWER) finish('whole');
      else if (r.slowReader && Math.random() < 0.05) {
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      }
    });
    socket.on('end', () => finish('fin'));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'error'));
    const lines = [
      'POST /u/duplex-hash HTTP/1.1',
      'Host: x',
      r.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${r.size}`,
    ];
    if (r.close) lines.push('Connection: close');
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    let sent = 0;
    const pump = (): void => {
      while (sent < r.size && !socket.destroyed) {
        // Uneven pieces: 1 byte to 200 KiB.
        const n = Math.min(r.size - sent, 1 + ((sent * 7919) % (200 * 1024)));
        const piece = body.subarray(sent, sent + n);
        sent += n;
        const data = r.chunked
          ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
          : piece;
        if (!socket.write(data)) return void socket.once('drain', pump);
      }
      if (r.chunked && !socket.destroyed) socket.write('0\r\n\r\n');
    };
    pump();
  });
}

t.test('the upstream reads the body whole beside a streamed answer, in any order', async (t) => {
  const body = Buffer.allocUnsafe(20 * MIB);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
  let failed = 0;
  const rounds = 24;
  for (let i = 0; i < rounds; i++) {
    const r: Round = {
      chunked: i % 2 === 0,
      close: i % 4 >= 2,
      size: [20 * MIB, 17 * 1024, 3 * MIB + 7][i % 3]!,
      slowReader: i % 8 >= 4,
    };
    const want = createHash('sha256').update(body.subarray(0, r.size)).digest('hex');
    const got = await round(r, body);
    if (got.got !== ANSWER || got.hash !== want) {
      failed++;
      t.comment(
        `round ${i} ${JSON.stringify(r)}: ${got.how} ${got.got} bytes, hash ok: ${got.hash === want}`,
      );
    }
  }
  t.equal(failed, 0, `${rounds} rounds: every answer whole, every body intact upstream`);
  t.notMatch(gw.output(), /uncaught|TypeError|Invalid access|must not be accessed/i);
});

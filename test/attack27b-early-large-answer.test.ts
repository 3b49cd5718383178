// Attack on the streamed body's 16 KiB queue (worker/uws-io.ts requestBodyStream): an upstream
// that answers a large body at once, before it read the upload, while the client keeps sending
// and reads the answer. Once the queue is full the client socket is paused; the answer must
// still reach the client whole (uWS's pause stops the socket's events both ways).
import { connect } from 'node:net';
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const gw = await startGateway({
  config: { num_instances: 1, client_timeout: 15_000 },
  routes: `routes:\n  - prefix: /u\n    target: ${upstream.origin}\n    secure: false\n`,
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

/** Sends a POST with `upload` bytes and reads the answer: the bytes of its body, or a timeout. */
function exchange(path: string, upload: number, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1');
    let received = 0;
    let headEnd = -1;
    let head = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`timeout after ${received} bytes received`);
    }, ms);
    socket.on('data', (data: Buffer) => {
      if (headEnd < 0) {
        head += data.toString('latin1');
        headEnd = head.indexOf('\r\n\r\n');
        if (headEnd >= 0) received = head.length - headEnd - 4;
      } else received += data.length;
      const length = /content-length: (\d+)/i.exec(head)?.[1];
      if (length !== undefined && received >= Number(length)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(`${head.slice(0, 12)} ${received}`);
      }
    });
    socket.on('error', () => undefined);
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${upload}\r\nConnection: close\r\n\r\n`,
    );
    const piece = Buffer.alloc(16 * 1024, 97);
    let sent = 0;
    const pump = (): void => {
      while (sent < upload) {
        const n = Math.min(piece.length, upload - sent);
        sent += n;
        if (!socket.write(piece.subarray(0, n))) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

const ANSWER = 8 * 1024 * 1024;
for (const upload of [16 * 1024 + 1, 200 * 1024, 4 * 1024 * 1024]) {
  t.test(`an 8 MiB answer before a ${upload}-byte upload was read arrives whole`, async (t) => {
    const got = await exchange(`/u/bytes/${ANSWER}`, upload, 10_000);
    t.equal(got, `HTTP/1.1 200 ${ANSWER}`);
  });
}

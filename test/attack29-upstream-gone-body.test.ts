// attack29: a streamed body whose upstream failed mid-upload. The client gets its 502 (with
// `connection: close`), but uWS reads the rest of the body (the answer did not close), and the
// body stream was left by its reader (h1-client detached on the failure) and is past finish
// (its count released): what bounds what it queues?
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import t from 'tap';
import { rssGrowthDuring } from './helpers/body-pressure.js';
import { startGateway } from './helpers/gateway.js';

const MIB = 1024 * 1024;
const SIZE = 64 * MIB;

// An upstream that reads 1 MiB of the body, then resets the connection.
const sockets = new Set<Socket>();
const resetter = createServer((socket) => {
  sockets.add(socket);
  let got = 0;
  socket.on('error', () => undefined);
  socket.on('close', () => sockets.delete(socket));
  socket.on('data', (d: Buffer) => {
    got += d.length;
    if (got > MIB) socket.resetAndDestroy();
  });
});
await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', resolve));
const port = (resetter.address() as AddressInfo).port;

const ROUTES = [
  'routes:',
  '  - prefix: /r',
  `    target: http://127.0.0.1:${port}`,
  '    secure: false',
].join('\n');
// One edge per case: the heap the first case grew would hide the second's growth.
let gw = await startGateway({
  config: { num_instances: 1, client_timeout: 20_000 },
  routes: ROUTES,
});
t.teardown(async () => {
  await gw.stop();
  for (const socket of sockets) socket.destroy();
  resetter.close();
});

/** Uploads SIZE bytes, reading the answer (a well-behaved client). */
function upload(chunked: boolean): Promise<{ sent: number; answer: string; how: string }> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1');
    let sent = 0;
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ sent, answer, how: 'open' });
    }, 15_000);
    const over = (how: string): void => {
      clearTimeout(timer);
      resolve({ sent, answer, how });
    };
    socket.on('error', (e: NodeJS.ErrnoException) => over(e.code ?? 'error'));
    socket.on('close', () => over('closed'));
    const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${SIZE}`;
    socket.write(`POST /r/x HTTP/1.1\r\nHost: x\r\n${framing}\r\n\r\n`);
    const piece = Buffer.alloc(256 * 1024, 97);
    const framed = chunked
      ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
      : piece;
    const pump = (): void => {
      while (sent < SIZE && !socket.destroyed) {
        sent += piece.length;
        if (!socket.write(framed)) return void socket.once('drain', pump);
      }
      if (sent >= SIZE && !socket.destroyed) {
        if (chunked) socket.write('0\r\n\r\n');
        // The whole body went: the client waits a little for the close, then leaves.
        setTimeout(() => socket.destroy(), 1_000);
      }
    };
    pump();
  });
}

for (const chunked of [false, true]) {
  t.test(
    `upstream reset mid-body (${chunked ? 'chunked' : 'content-length'}): the rest of the body is not queued`,
    async (t) => {
      if (chunked) {
        t.notMatch(gw.output(), /uncaught|TypeError|Invalid access/i);
        await gw.stop();
        gw = await startGateway({
          config: { num_instances: 1, client_timeout: 20_000 },
          routes: ROUTES,
        });
      }
      const growth = await rssGrowthDuring(gw.edges[0]!, () => upload(chunked));
      const { result: outcome, beforeKiB: before, peakKiB: peak, grownMiB: grown } = growth;
      t.comment(
        `sent ${outcome.sent >> 20} MiB, ${outcome.how}, answer ${JSON.stringify(outcome.answer.slice(0, 40))}`,
      );
      t.match(outcome.answer, /^HTTP\/1\.1 502/);
      t.ok(grown < 32, `edge RSS peak +${grown.toFixed(0)} MiB (${before} -> ${peak} KiB)`);
    },
  );
}

t.test('the edge is alive and threw nothing', async (t) => {
  t.notMatch(gw.output(), /uncaught|TypeError|Invalid access/i);
  const res = await fetch(`${gw.url}/health`).catch(() => undefined);
  t.ok(res !== undefined);
});

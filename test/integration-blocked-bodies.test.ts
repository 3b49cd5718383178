// Bodies read while their answers wait, bounded per edge (worker/uws-io.ts
// EDGE_BLOCKED_BODY_BYTES). uWS reads a client's socket while an answer waits for it to drain, so
// a client that uploads fast and does not read its answer, to an upstream that does not read the
// body, makes the edge queue what it sends. One connection is cut past 64 MiB; before the edge's
// bound, eight of them made one edge hold 8 x 64 MiB.
import { connect } from 'node:net';
import t from 'tap';
import { rssGrowthDuring, startSilentUpstream } from './helpers/body-pressure.js';
import { startGateway } from './helpers/gateway.js';

const MIB = 1024 * 1024;
const CLIENTS = 8;
const SIZE = 96 * MIB;

// An upstream that never reads its socket: every connection gets an 8 MiB answer at once.
const silent = await startSilentUpstream(8 * MIB);

const gw = await startGateway({
  config: { num_instances: 1, client_timeout: 20_000 },
  routes: [
    'routes:',
    '  - prefix: /n',
    `    target: http://127.0.0.1:${silent.port}`,
    '    secure: false',
  ].join('\n'),
});
t.teardown(async () => {
  await gw.stop();
  silent.close();
});

/** Uploads `SIZE` bytes as fast as the edge takes them, never reading the answer. */
function upload(): Promise<{ sent: number; how: string }> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1');
    socket.pause();
    let sent = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ sent, how: 'open' });
    }, 10_000);
    const over = (how: string): void => {
      clearTimeout(timer);
      resolve({ sent, how });
    };
    socket.on('error', (e: NodeJS.ErrnoException) => over(e.code ?? 'error'));
    socket.on('close', () => over('closed'));
    socket.write(`POST /n/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${SIZE}\r\n\r\n`);
    const piece = Buffer.alloc(256 * 1024, 97);
    const pump = (): void => {
      while (sent < SIZE && !socket.destroyed) {
        sent += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

t.test(
  `${CLIENTS} clients uploading without reading: the edge holds at most its bound`,
  async (t) => {
    const growth = await rssGrowthDuring(gw.edges[0]!, () =>
      Promise.all(Array.from({ length: CLIENTS }, upload)),
    );
    const { result: outcomes, beforeKiB: before, peakKiB: peak, grownMiB: grown } = growth;
    t.comment(`sent before the cut: ${outcomes.map((o) => `${o.sent >> 20} MiB`).join(', ')}`);
    // A connection may also stay open, its body read and dropped: when uWS took the whole answer
    // into its buffer, the upstream's answer is over and the rest of the upload goes nowhere
    // (h1-client). It holds no queue; the client leaves after 10 s here.
    t.ok(outcomes.filter((o) => o.how !== 'open').length >= 4, 'most connections cut');
    // Measured: +280-300 MiB with the bound (256 MiB of queues and their Buffers' overhead); 8 x
    // 64 MiB without it.
    t.ok(grown < 400, `edge RSS peak +${grown.toFixed(0)} MiB (${before} -> ${peak} KiB)`);
    t.ok(
      outcomes.filter((o) => o.sent < 60 * MIB).length >= 2,
      'some connections cut before their own 64 MiB',
    );
  },
);

t.test('the edge serves after, and said why it cut', async (t) => {
  const res = await fetch(`${gw.url}/n/x`);
  t.equal(res.status, 200);
  await res.arrayBuffer();
  t.notMatch(gw.output(), /uncaught|TypeError|Invalid access/i);
  // The edge's bound is the edge's state, not the client's fault: logged and answered as such.
  t.match(gw.output(), /"code":"OVERLOADED"[^\n]*"message":"request failed"/);
  t.match(gw.output(), /"status":503[^\n]*"code":"OVERLOADED"/);
});

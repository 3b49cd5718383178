// attack29: does the edge's bound on bodies read while their answers wait (256 MiB,
// EDGE_BLOCKED_BODY_BYTES) hold against 16 clients each below its own 64 MiB bound, with chunked
// framing in 64 KiB chunks, that read a little of their answer now and then (so `blocked` toggles
// and the count of each is taken anew)? Unbounded, they would make the edge hold 16 x 48 MiB.
import { connect } from 'node:net';
import t from 'tap';
import { rssGrowthDuring, startSilentUpstream } from './helpers/body-pressure.js';
import { startGateway } from './helpers/gateway.js';

const MIB = 1024 * 1024;
const CLIENTS = 16;
const SIZE = 48 * MIB;

// An upstream that never reads: every connection gets an 8 MiB answer at once.
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

function upload(): Promise<{ sent: number; how: string }> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1');
    socket.pause();
    let sent = 0;
    // A sip of the answer every 300 ms: the answer's writes succeed now and then.
    const sipper = setInterval(() => socket.read(64 * 1024), 300);
    const timer = setTimeout(() => over('open'), 10_000);
    function over(how: string): void {
      clearTimeout(timer);
      clearInterval(sipper);
      socket.destroy();
      resolve({ sent, how });
    }
    socket.on('error', (e: NodeJS.ErrnoException) => over(e.code ?? 'error'));
    socket.on('close', () => over('closed'));
    socket.write('POST /n/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const piece = Buffer.alloc(64 * 1024, 97);
    const framed = Buffer.concat([Buffer.from('10000\r\n'), piece, Buffer.from('\r\n')]);
    const pump = (): void => {
      while (sent < SIZE && !socket.destroyed) {
        sent += piece.length;
        if (!socket.write(framed)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

t.test(
  `${CLIENTS} chunked clients sipping their answers: the edge holds about its bound`,
  async (t) => {
    const growth = await rssGrowthDuring(gw.edges[0]!, () =>
      Promise.all(Array.from({ length: CLIENTS }, upload)),
    );
    const { result: outcomes, beforeKiB: before, peakKiB: peak, grownMiB: grown } = growth;
    t.comment(
      `sent: ${outcomes.map((o) => `${o.sent >> 20}${o.how === 'open' ? '' : '*'}`).join(', ')} MiB (* cut)`,
    );
    t.comment(`edge RSS peak +${grown.toFixed(0)} MiB (${before} -> ${peak} KiB)`);
    // The integration test measured +280-300 MiB for 256 MiB of queues (8 clients, 256 KiB writes).
    t.ok(grown < 420, `edge RSS peak +${grown.toFixed(0)} MiB, not 16 x 48`);
    t.notMatch(gw.output(), /uncaught|TypeError|Invalid access/i);
    const cuts = gw
      .output()
      .split('\n')
      .filter((l) => /"status":503[^\n]*"code":"OVERLOADED"/.test(l));
    t.comment(`503 OVERLOADED: ${cuts.length}`);
    t.ok(cuts.length >= 1, 'the edge bound cut some');
    t.notMatch(gw.output(), /integration-test-secret|a{64}/, 'no secret in the output');
  },
);

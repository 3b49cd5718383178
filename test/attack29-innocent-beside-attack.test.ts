// attack29: a well-behaved upload beside attackers holding the edge's shared bound
// (EDGE_BLOCKED_BODY_BYTES). The innocent client reads its answer (slowly, steadily) and its
// upstream reads the body (slowly, steadily) while answering; attackers upload to an upstream that
// never reads and never read their answers, each stopping short of its own 64 MiB bound, and keep
// their connections open. Is the innocent cut as the edge "overloaded"?
import { readFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import t from 'tap';
import { startGateway } from './helpers/gateway.js';

const MIB = 1024 * 1024;
const sockets = new Set<Socket>();
function track(socket: Socket): void {
  sockets.add(socket);
  socket.on('error', () => undefined);
  socket.on('close', () => sockets.delete(socket));
}

// The attackers' upstream: never reads, answers 8 MiB at once.
const silent = createServer((socket) => {
  track(socket);
  socket.pause();
  socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${8 * MIB}\r\n\r\n`);
  socket.end(Buffer.alloc(8 * MIB, 98));
});
// The innocent's upstream: answers at once, 1 MiB every 100 ms (16 MiB), and reads the body at
// about the same pace (256 KiB every 25 ms).
const INNOCENT_BODY = 16 * MIB;
const paced = createServer((socket) => {
  track(socket);
  let got = 0;
  let headDone = false;
  socket.pause();
  const reader = setInterval(() => {
    let n = 0;
    while (n < 256 * 1024) {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) break;
      n += chunk.length;
    }
    got += n;
    if (!headDone && got > 0) {
      headDone = true;
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${16 * MIB}\r\n\r\n`);
      let sent = 0;
      const writer = setInterval(() => {
        socket.write(Buffer.alloc(MIB, 99));
        sent++;
        if (sent === 16) clearInterval(writer);
      }, 100);
      socket.on('close', () => clearInterval(writer));
    }
  }, 25);
  socket.on('close', () => clearInterval(reader));
});
for (const s of [silent, paced]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
const port = (s: typeof silent): number => (s.address() as AddressInfo).port;

const gw = await startGateway({
  config: { num_instances: 1, client_timeout: 30_000 },
  routes: [
    'routes:',
    '  - prefix: /n',
    `    target: http://127.0.0.1:${port(silent)}`,
    '    secure: false',
    '  - prefix: /p',
    `    target: http://127.0.0.1:${port(paced)}`,
    '    secure: false',
  ].join('\n'),
});
t.teardown(async () => {
  await gw.stop();
  for (const socket of sockets) socket.destroy();
  silent.close();
  paced.close();
});

/** Uploads `size` of a longer body without reading the answer, then holds the connection. */
function attacker(size: number): Promise<{ sent: number; socket: Socket; cut: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1');
    track(socket);
    socket.pause();
    let sent = 0;
    let cut = false;
    socket.on('close', () => {
      cut = true;
    });
    socket.write(`POST /n/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * MIB}\r\n\r\n`);
    const piece = Buffer.alloc(MIB, 97);
    const pump = (): void => {
      while (sent < size && !socket.destroyed) {
        sent += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
      // All of it in the kernel's buffers: give the edge time to read it.
      setTimeout(() => resolve({ sent, socket, cut }), 1_500);
    };
    pump();
  });
}

/** The innocent: sends its body as fast as it is taken, reads the answer at ~4 MiB/s. */
function innocent(): Promise<{ status: string; got: number; how: string }> {
  return new Promise((resolve) => {
    const socket = connect(gw.port, '127.0.0.1');
    track(socket);
    socket.pause();
    let got = 0;
    let head = '';
    const reader = setInterval(() => {
      let n = 0;
      while (n < 200 * 1024) {
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) break;
        if (head === '') head = chunk.subarray(0, 12).toString('latin1');
        n += chunk.length;
      }
      got += n;
      if (got >= 16 * MIB) over('complete');
    }, 50);
    const timer = setTimeout(() => over('timeout'), 20_000);
    function over(how: string): void {
      clearInterval(reader);
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: head, got, how });
    }
    socket.on('close', () => over('closed'));
    socket.write(`POST /p/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${INNOCENT_BODY}\r\n\r\n`);
    let sent = 0;
    const piece = Buffer.alloc(256 * 1024, 97);
    const pump = (): void => {
      while (sent < INNOCENT_BODY && !socket.destroyed) {
        sent += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

t.test('alone, the innocent upload completes', async (t) => {
  const r = await innocent();
  t.equal(r.how, 'complete', `${r.status} ${r.got >> 20} MiB`);
});

t.test('beside attackers holding ~255 MiB, the innocent upload completes', async (t) => {
  const rss = async (): Promise<number> =>
    Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${gw.edges[0]}/status`, 'utf8'))?.[1]) >> 10;
  const before = await rss();
  const held = await Promise.all(Array.from({ length: 5 }, () => attacker(51 * MIB)));
  t.comment(
    `attackers sent ${held.map((h) => h.sent >> 20).join(', ')} MiB, cut: ${held.filter((h) => h.cut).length}`,
  );
  t.comment(`edge RSS ${before} -> ${await rss()} MiB with the attackers held`);
  const r = await innocent();
  t.equal(r.how, 'complete', `innocent: ${r.how}, ${r.status} ${r.got >> 20} MiB`);
  for (const h of held) h.socket.destroy();
  const overloaded = gw
    .output()
    .split('\n')
    .filter((l) => /OVERLOADED/.test(l) && /"status":503/.test(l));
  t.comment(
    `503 OVERLOADED in the access log: ${overloaded.length}; ${overloaded.map((l) => /"path":"[^"]*"/.exec(l)?.[0]).join(' ')}`,
  );
  t.notMatch(gw.output(), /uncaught|TypeError|Invalid access/i);
});

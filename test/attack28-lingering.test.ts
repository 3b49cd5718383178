// Attacks on the lingering close (worker/uws-io.ts linger) and the edge's drain around it.
// - uWS closes after an answer when the request's first Connection value is 5 chars long
//   (`close`, but also `xxxxx`): the gateway must linger then too, or the kernel resets the
//   connection and the answer's tail is lost (measured before: 4.3-5.6 of 8 MiB, ECONNRESET).
// - A drain (SIGTERM, a roll) while an answer's end is held must wait for it: before, the edge
//   exited 250 ms into the drain and the client got a 401's head without its body, or 8.32 of
//   8 MiB.
// - Bytes pipelined behind a body the gateway lingers on are never served.
// - A client that goes away while the gateway lingers leaves no error behind.
import { connect } from 'node:net';
import t from 'tap';
import { startGateway } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const seen: string[] = [];
const upstream = await startUpstream((req) => {
  seen.push(`${req.method} ${req.url}`);
  return false;
});
const routes = [
  'routes:',
  '  - prefix: /u',
  `    target: ${upstream.origin}`,
  '    secure: false',
  '  - prefix: /s',
  `    target: ${upstream.origin}`,
].join('\n');
const gw = await startGateway({ config: { num_instances: 1, client_timeout: 20_000 }, routes });
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});

const MIB = 1024 * 1024;
const CRLF = Buffer.from('\r\n');

interface Got {
  status: string;
  /** Body bytes after the head (0 when the head never ended). */
  body: number;
  /** The answer's Content-Length, if it had one. */
  length: number | undefined;
  /** How the connection ended: fin, an error code, or timeout. */
  closed: string;
  raw: string;
}

interface Send {
  port?: number;
  head: string;
  /** Body bytes to send (in 64 KiB pieces, chunked when `chunked`). */
  size: number;
  chunked?: boolean;
  /** Sent right after the body (a pipelined request). */
  after?: string;
  /** Called once the head and body (or its first `size` bytes) were handed to the socket. */
  sent?: (socket: ReturnType<typeof connect>) => void;
  /** Do not send the chunked body's last chunk. */
  open?: boolean;
  ms?: number;
}

/** Sends a request and reads everything until the connection ends (or `ms`). */
function send(req: Send): Promise<Got> {
  return new Promise((resolve) => {
    const socket = connect(req.port ?? gw.port, '127.0.0.1');
    const bufs: Buffer[] = [];
    let closed = 'timeout';
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(bufs).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const head = end < 0 ? raw : raw.slice(0, end);
      const length = /\r\ncontent-length: (\d+)/i.exec(head)?.[1];
      resolve({
        status: raw.slice(9, 12),
        body: end < 0 ? 0 : raw.length - end - 4,
        length: length === undefined ? undefined : Number(length),
        closed,
        raw,
      });
    };
    const timer = setTimeout(finish, req.ms ?? 10_000);
    socket.on('data', (d: Buffer) => bufs.push(d));
    socket.on('end', () => {
      closed = 'fin';
      finish();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      closed = e.code ?? 'error';
      finish();
    });
    socket.on('close', finish);
    socket.write(req.head);
    const piece = Buffer.alloc(64 * 1024, 97);
    let sent = 0;
    const pump = (): void => {
      while (sent < req.size && !socket.destroyed) {
        const n = Math.min(piece.length, req.size - sent);
        sent += n;
        const data = req.chunked
          ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece.subarray(0, n), CRLF])
          : piece.subarray(0, n);
        if (!socket.write(data)) return void socket.once('drain', pump);
      }
      if (socket.destroyed) return;
      if (req.chunked && !req.open) socket.write('0\r\n\r\n');
      if (req.after !== undefined) socket.write(req.after);
      req.sent?.(socket);
    };
    pump();
  });
}

function head(method: string, path: string, lines: string[]): string {
  return `${method} ${path} HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}

const framing = (chunked: boolean, size: number): string =>
  chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${size}`;

// uWS marks a request "close after the answer" when its first Connection value is 5 chars
// long, whatever they are (uwebsockets 3.0.6 compares the length only).
for (const connection of ['xxxxx', 'Close', '  close  ']) {
  for (const chunked of [false, true]) {
    t.test(
      `Connection: ${JSON.stringify(connection)}, ${chunked ? 'chunked' : 'Content-Length'} upload: an 8 MiB answer arrives whole`,
      async (t) => {
        for (let i = 0; i < 2; i++) {
          const got = await send({
            head: head('POST', `/u/bytes/${8 * MIB}`, [
              `Connection: ${connection}`,
              framing(chunked, 24 * MIB),
            ]),
            size: 24 * MIB,
            chunked,
          });
          t.equal(got.status, '200');
          t.equal(got.body, 8 * MIB, `whole (${got.body} bytes, ${got.closed})`);
          t.equal(got.closed, 'fin', 'then closed, not reset');
        }
      },
    );
  }
}

// What a client pipelines behind a body the gateway lingers on is never served: the gateway
// answers it on the next turn, and uWS drops a connection whose answer is pending.
const SMUGGLED = 'GET /u/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
for (const connection of ['close', 'keep-alive, close', 'xxxxx']) {
  for (const chunked of [false, true]) {
    for (const path of ['/u/status/201', '/s/x', '/nowhere', `/u/bytes/${MIB}`]) {
      // uWS keeps a `keep-alive, close` connection open after the answer (it closes only on a
      // 5-byte first value): a request that arrives after the held end was written is served,
      // as before lingering existed (README uWS limits). Caught once on a CI run: a todo.
      const todo =
        connection === 'keep-alive, close'
          ? 'uWS keeps the connection open: a request arriving after the answer is served'
          : false;
      t.test(
        `Connection: ${connection}, ${chunked ? 'chunked' : 'Content-Length'} POST ${path} then a pipelined request: never served`,
        { todo },
        async (t) => {
          seen.length = 0;
          const got = await send({
            head: head('POST', path, [`Connection: ${connection}`, framing(chunked, 2 * MIB)]),
            size: 2 * MIB,
            chunked,
            after: SMUGGLED,
            ms: 3_000,
          });
          t.notMatch(got.raw, /"url":"\/smuggled"/, 'no answer from upstream to it');
          t.notOk(
            seen.some((s) => s.includes('smuggled')),
            `upstream never saw it (${seen.join(', ')})`,
          );
        },
      );
    }
  }
}

// Answers without a body on the wire (HEAD, 204, 304, the gateway's HEAD refusal) end their
// head at the release of a lingering close: the head whole, then the close.
for (const [method, path, status] of [
  // (A proxied HEAD with a large body is answered 502 with or without lingering: not here.)
  ['POST', '/u/status/204', '204'],
  ['POST', '/u/status/304', '304'],
  ['HEAD', '/s/x', '401'],
] as const) {
  t.test(
    `${method} ${path} with a 24 MiB upload and Connection: close: the head whole`,
    async (t) => {
      const got = await send({
        head: head(method, path, ['Connection: close', `Content-Length: ${24 * MIB}`]),
        size: 24 * MIB,
      });
      t.equal(got.status, status);
      t.ok(
        got.raw.includes('\r\n\r\n'),
        `the head ended: ${JSON.stringify(got.raw.slice(0, 200))}`,
      );
      t.equal(got.body, 0, 'nothing after it');
      t.equal(got.closed, 'fin', 'then closed, not reset');
    },
  );
}

t.test('a client that goes away while the gateway lingers leaves no error behind', async (t) => {
  const cases = [
    { path: '/s/x', close: 'close' },
    { path: `/u/bytes/${8 * MIB}`, close: 'close' },
    { path: `/u/chunked/${8 * MIB}`, close: 'Close' },
    { path: '/u/status/204', close: 'close' },
  ];
  await Promise.all(
    cases.map(({ path, close }, i) =>
      send({
        head: head(i % 2 ? 'HEAD' : 'POST', path, [
          `Connection: ${close}`,
          framing(i % 2 === 0, 64 * MIB),
        ]),
        size: MIB,
        chunked: i % 2 === 0,
        open: true,
        // Gone before the gateway's second of silence is over.
        sent: (socket) => setTimeout(() => socket.destroy(), 300 + i * 100),
        ms: 3_000,
      }),
    ),
  );
  // Past the silence and a tick of the linger's interval.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const res = await fetch(`${gw.url}/u/status/200`);
  t.equal(res.status, 200);
  await res.arrayBuffer();
  t.notMatch(gw.output(), /uncaught|TypeError|Invalid access|must not be accessed/i);
});

// A drain (SIGTERM, a roll) waits for the answers whose end is held: the client that stopped
// sending its body gets its answer after a second of silence, not a cut.
t.test('a drain waits for the answers held by a lingering close', async (t) => {
  const g2 = await startGateway({ config: { num_instances: 1, client_timeout: 20_000 }, routes });
  t.teardown(() => g2.stop());
  const opened: Promise<void>[] = [];
  const answers = ['/s/x', `/u/bytes/${8 * MIB}`, `/u/chunked/${8 * MIB}`].map((path) => {
    let ready!: () => void;
    opened.push(new Promise<void>((resolve) => (ready = resolve)));
    return send({
      port: g2.port,
      head: head('POST', path, ['Connection: close', `Content-Length: ${64 * MIB}`]),
      size: MIB,
      // The answer has begun: its end is held while the gateway waits for the rest.
      sent: () => setTimeout(ready, 300),
      ms: 8_000,
    });
  });
  await Promise.all(opened);
  process.kill(g2.edges[0]!, 'SIGTERM');
  const [refusal, sized, chunked] = await Promise.all(answers);
  t.equal(refusal!.status, '401');
  t.equal(refusal!.body, refusal!.length, `the 401 whole: ${JSON.stringify(refusal!.raw)}`);
  t.equal(sized!.status, '200');
  t.equal(sized!.body, 8 * MIB, `the 8 MiB answer whole (${sized!.body}, ${sized!.closed})`);
  t.equal(chunked!.status, '200');
  t.ok(chunked!.raw.endsWith('\r\n0\r\n\r\n'), `the chunked answer whole (${chunked!.closed})`);
});

import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import type { Dispatcher } from 'undici';
import type { H1Pool, H1PoolOptions } from '../worker/h1-client.js';
import { testPool } from './helpers/h1-pool.js';

/*
 * Regressions found by attacking the own upstream client (worker/h1-client.ts) as a hostile
 * upstream and a demanding handler would; the gateway-level attacks are in
 * test/integration-h1-*.test.ts.
 */

async function listen(
  onSocket: (socket: Socket) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

function pool(port: number, extra: Partial<H1PoolOptions> = {}): H1Pool {
  return testPool(`http://127.0.0.1:${port}`, extra);
}

/** 2 MB in 1000-byte chunks: one read of the upstream's bytes holds many chunks. */
function chunkedAnswer(): { data: Buffer; wire: Buffer } {
  const data = Buffer.alloc(2_000_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
  const parts = [Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n')];
  for (let at = 0; at < data.length; at += 1000)
    parts.push(Buffer.from('3e8\r\n'), data.subarray(at, at + 1000), Buffer.from('\r\n'));
  parts.push(Buffer.from('0\r\n\r\n'));
  return { data, wire: Buffer.concat(parts) };
}

t.test(
  'a handler that pauses on every piece and resumes from a macrotask gets every byte in order',
  async (t) => {
    const { data, wire } = chunkedAnswer();
    const up = await listen((s) => s.once('data', () => s.write(wire)));
    t.teardown(() => up.server.close());
    for (const [name, later] of [
      ['setImmediate', (f: () => void) => setImmediate(f)],
      ['setTimeout', (f: () => void) => setTimeout(f, 0)],
    ] as const) {
      const p = pool(up.port);
      const got: Buffer[] = [];
      const error = await new Promise<Error | undefined>((resolve) =>
        p.dispatch({ method: 'GET', path: '/', headers: [] } as Dispatcher.DispatchOptions, {
          onResponseData(c, chunk) {
            got.push(Buffer.from(chunk));
            c.pause();
            later(() => c.resume());
          },
          onResponseEnd: () => resolve(undefined),
          onResponseError: (_c, err) => resolve(err),
        }),
      );
      t.equal(error, undefined, `${name}: no error`);
      t.ok(Buffer.concat(got).equals(data), `${name}: every byte, in order`);
      await p.destroy();
    }
  },
);

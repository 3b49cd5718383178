import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import { GatewayError } from '../shared/errors.js';
import { upstreamError } from '../worker/upstream-error.js';
import { parseForwardProxy, tunnelConnector } from '../worker/upstream-proxy.js';

/** A fake proxy that runs `script` on each connection, with what the client wrote so far. */
async function fakeProxy(script: (socket: Socket, head: () => string) => void): Promise<Server> {
  const server = createServer((socket) => {
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
    });
    socket.on('error', () => {});
    script(socket, () => head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

function tunnel(server: Server, timeoutMs = 2000, auth = ''): Promise<Error | null> {
  const { port } = server.address() as AddressInfo;
  const proxy = parseForwardProxy(`http://${auth}127.0.0.1:${port}`);
  const connect = tunnelConnector(proxy, undefined, timeoutMs);
  return new Promise((resolve) =>
    connect({ hostname: 'backend.test', protocol: 'https:', port: '8443' }, (err, socket) => {
      socket?.destroy();
      resolve(err);
    }),
  );
}

t.test('CONNECT names the target, with the proxy credentials, and refusals are 502', async (t) => {
  let seen = '';
  const server = await fakeProxy((socket, head) => {
    socket.once('data', () =>
      setTimeout(() => {
        seen = head();
        socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
      }, 10),
    );
  });
  const err = await tunnel(server, 2000, 'gw:s%3Acret@');
  t.match(seen, /^CONNECT backend\.test:8443 HTTP\/1\.1\r\nHost: backend\.test:8443\r\n/);
  t.match(seen, `Proxy-Authorization: Basic ${Buffer.from('gw:s:cret').toString('base64')}\r\n`);
  t.ok(err instanceof GatewayError);
  t.equal(upstreamError(err).code, 'UPSTREAM_PROXY_FAILED');
  t.match(String((err as GatewayError).cause), /answered 407 to CONNECT backend\.test:8443/);
  t.notMatch(String((err as GatewayError).cause), /gw|cret/, 'no credentials in the cause');
});

t.test("the proxy's answer is bounded (16 KiB)", async (t) => {
  const server = await fakeProxy((socket) => {
    socket.once('data', () => socket.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`));
  });
  const err = await tunnel(server);
  t.equal(upstreamError(err).code, 'UPSTREAM_PROXY_FAILED');
  t.match(String((err as GatewayError).cause), /answer too large/);
});

t.test('a proxy that never answers: the setup times out (504)', async (t) => {
  const server = await fakeProxy(() => {});
  const started = Date.now();
  const err = await tunnel(server, 300);
  t.equal(upstreamError(err).code, 'UPSTREAM_TIMEOUT');
  t.ok(Date.now() - started < 2000, 'within the bound');
});

t.test('a proxy that closes before answering, or answers garbage', async (t) => {
  const closes = await fakeProxy((socket) => socket.once('data', () => socket.end()));
  t.equal(upstreamError(await tunnel(closes)).code, 'UPSTREAM_PROXY_FAILED');
  const garbage = await fakeProxy((socket) =>
    socket.once('data', () => socket.write('nonsense\r\n\r\n')),
  );
  const err = await tunnel(garbage);
  t.match(String((err as GatewayError).cause), /answered garbage/);
});

t.test('after a 200 the TLS handshake runs through the tunnel', async (t) => {
  // Not a TLS server: the handshake fails, with a TLS code, not a proxy failure.
  const server = await fakeProxy((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
      socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    });
  });
  const err = await tunnel(server);
  t.ok(err);
  t.equal(upstreamError(err).code, 'UPSTREAM_TLS_FAILED', String((err as { code?: string }).code));
});

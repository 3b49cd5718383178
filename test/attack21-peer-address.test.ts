// The client address on the real CLI after peerAddress (worker/uws-io.ts) remembers the last
// address read: keep-alive connections from different source addresses, interleaved request by
// request on one edge, must each see their own address in X-Forwarded-For and the access log.
// A dual-stack (`::`) listener gives IPv4 clients as mapped addresses, IPv6 clients as ::1.
import { connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { logged, type RunningGateway, startGatewaysOver, waitFor } from './helpers/gateway.js';
import { parseResponses } from './helpers/raw-http.js';
import { routesYaml } from './helpers/routes-yaml.js';
import { type Echo, startUpstream } from './helpers/upstream.js';

const upstream = await startUpstream();
const options = (host: string) => ({
  // One edge: every request below passes through the same module-level cache.
  config: { num_instances: 1, host },
  routes: routesYaml(upstream.origin, [{ prefix: '/echo', path: '', secure: false }]),
});
const [dual, v4] = await startGatewaysOver(t, upstream, [options('::'), options('127.0.0.1')]);

/** A keep-alive client connection from `localAddress` to `host`. */
interface Client {
  socket: Socket;
  data: Buffer;
}

async function client(gw: RunningGateway, host: string, localAddress: string): Promise<Client> {
  const socket = connect({ host, port: gw.port, localAddress });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, data: Buffer.alloc(0) };
}

let seq = 0;

/** One GET on `c`: the X-Forwarded-For the upstream saw and the path, for the log. */
async function get(c: Client): Promise<{ xff: unknown; path: string }> {
  const path = `/echo/a21-${++seq}`;
  c.socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
  const res = await new Promise<Buffer>((resolve) => {
    const onData = (d: Buffer) => {
      c.data = Buffer.concat([c.data, d]);
      const { responses, rest } = parseResponses(c.data, ['GET']);
      if (responses[0] === undefined) return;
      c.socket.off('data', onData);
      c.data = rest;
      resolve(responses[0].body);
    };
    c.socket.on('data', onData);
  });
  const echo = JSON.parse(res.toString()) as Echo;
  return { xff: echo.headers['x-forwarded-for'], path };
}

async function loggedIp(gw: RunningGateway, path: string): Promise<unknown> {
  const find = () => logged(gw.output(), { type: 'access', path })[0];
  await waitFor(() => find() !== undefined, 5_000);
  return find()?.ip;
}

/** Requests round-robin over `clients` (`rounds` each): every one must see its own address. */
async function interleave(
  t: Test,
  gw: RunningGateway,
  clients: [Client, string][],
  rounds: number,
): Promise<void> {
  const seen: [string, unknown, string][] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [c, want] of clients) {
      const { xff, path } = await get(c);
      seen.push([want, xff, path]);
    }
  }
  for (const [want, xff, path] of seen) {
    t.equal(xff, want, `X-Forwarded-For of ${path}`);
    t.equal(await loggedIp(gw, path), want, `access log ip of ${path}`);
  }
  for (const [c] of clients) c.socket.destroy();
}

t.test('dual-stack listener: 127.0.0.1, 127.0.0.2 and ::1 interleaved', async (t) => {
  const clients: [Client, string][] = [
    [await client(dual, '127.0.0.1', '127.0.0.1'), '127.0.0.1'],
    [await client(dual, '127.0.0.1', '127.0.0.2'), '127.0.0.2'],
    [await client(dual, '::1', '::1'), '::1'],
    [await client(dual, '127.0.0.1', '127.0.0.2'), '127.0.0.2'],
    [await client(dual, '127.0.0.1', '127.0.1.2'), '127.0.1.2'],
  ];
  await interleave(t, dual, clients, 3);
});

t.test('IPv4 listener: 127.0.0.1 and 127.0.0.2 interleaved, repeats in between', async (t) => {
  const a = await client(v4, '127.0.0.1', '127.0.0.1');
  const b = await client(v4, '127.0.0.1', '127.0.0.2');
  const c = await client(v4, '127.0.0.1', '127.0.2.1');
  const order: [Client, string][] = [
    [a, '127.0.0.1'],
    [a, '127.0.0.1'],
    [b, '127.0.0.2'],
    [c, '127.0.2.1'],
    [b, '127.0.0.2'],
    [a, '127.0.0.1'],
  ];
  await interleave(t, v4, order, 2);
});

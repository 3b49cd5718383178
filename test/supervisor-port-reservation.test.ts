import { createServer, type Server } from 'node:net';
import t from 'tap';
import { formatAddress, reservePort } from '../supervisor/port-reservation.js';

function listen(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));
const portOf = (server: Server) => (server.address() as { port: number }).port;

t.test('port 0 picks a free port and holds it until released', async (t) => {
  const held = await reservePort('127.0.0.1', 0);
  t.ok(held.port > 0);
  await t.rejects(listen(held.port, '127.0.0.1'), { code: 'EADDRINUSE' }, 'held exclusively');
  await held.release();
  const after = await listen(held.port, '127.0.0.1');
  t.equal(portOf(after), held.port, 'free again after release');
  await close(after);
});

t.test('a port someone listens on is refused, overlaps included', async (t) => {
  const other = await listen(0, '127.0.0.1');
  t.teardown(() => close(other));
  const port = portOf(other);
  await t.rejects(reservePort('127.0.0.1', port), {
    code: 'PORT_IN_USE',
    message: `127.0.0.1:${port} is already in use`,
  });
  await t.rejects(reservePort('0.0.0.0', port), { code: 'PORT_IN_USE' }, '0.0.0.0 covers it');
});

t.test('an address that is not ours is reported as unavailable', async (t) => {
  // TEST-NET-1 (RFC 5737) is never assigned to a local interface.
  await t.rejects(reservePort('192.0.2.1', 0), {
    code: 'PORT_UNAVAILABLE',
    message: /not an address of this machine/,
  });
});

t.test('IPv6 addresses are bracketed in messages', async (t) => {
  t.equal(formatAddress('::', 8080), '[::]:8080');
  t.equal(formatAddress('127.0.0.1', 8080), '127.0.0.1:8080');
});

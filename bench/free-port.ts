import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';

/**
 * A loopback port free right now. Another process may take it before the caller binds it;
 * acceptable here because the bench only starts its own services, one at a time.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

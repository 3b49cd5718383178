import { createServer } from 'node:net';
import { CodedError } from '../shared/coded-error.js';

/** An address held exclusively until `release()` resolves. */
export interface PortReservation {
  /** The port held: the one asked for, or the one the kernel picked for port 0. */
  readonly port: number;
  release(): Promise<void>;
}

/** Holds host:port (port 0: any free port) exclusively, or rejects with PortError. */
export type ReservePort = (host: string, port: number) => Promise<PortReservation>;

export type PortErrorCode = 'PORT_IN_USE' | 'PORT_UNAVAILABLE';

/** The gateway's address cannot be used: someone else serves it, or it cannot be bound here. */
export class PortError extends CodedError<PortErrorCode> {}

/** `host:port`, with IPv6 literals in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Binds host:port without SO_REUSEPORT. Edges share their port with SO_REUSEPORT, which also
 * lets any other process of the same user join it silently and take part of the traffic; a
 * plain bind fails when anything listens there (another gateway, nginx, a plain listener), and
 * the kernel applies its own overlap rules (0.0.0.0 covers 127.0.0.1, `::` covers both).
 * The caller releases the port just before its edges bind it.
 *
 * Port 0 goes through here too: the kernel never lets other sockets join a port it picked for a
 * port-0 bind, even with SO_REUSEPORT (measured: a second uWS app cannot listen on the port a
 * first one got from port 0), so edges always bind a concrete port, picked here.
 */
export const reservePort: ReservePort = (host, port) =>
  new Promise((resolve, reject) => {
    // Whoever connects while the port is held is not served: close at once.
    const server = createServer((socket) => socket.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => reject(portError(err, host, port)));
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        release: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });

function portError(err: NodeJS.ErrnoException, host: string, port: number): PortError {
  const address = formatAddress(host, port);
  switch (err.code) {
    case 'EADDRINUSE':
      return new PortError(
        'PORT_IN_USE',
        `${address} is already in use: another proxyauth or another server listens there. ` +
          'Stop it, or set another "port" (or "host") in config.json.',
      );
    case 'EACCES':
      return new PortError(
        'PORT_UNAVAILABLE',
        `cannot listen on ${address}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`,
      );
    case 'EADDRNOTAVAIL':
      return new PortError(
        'PORT_UNAVAILABLE',
        `cannot listen on ${address}: "${host}" is not an address of this machine`,
      );
    default:
      return new PortError('PORT_UNAVAILABLE', `cannot listen on ${address}: ${err.message}`);
  }
}

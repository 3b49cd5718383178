import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';

/** What a WebSocket backend saw of one handshake. */
export interface Handshake {
  url: string;
  headers: IncomingMessage['headers'];
  protocols: string[];
}

/**
 * A real WebSocket backend for integration tests (the `ws` package on a node:http server):
 * `onConnection(socket, handshake)` gets every accepted connection; `handshakes` lists every
 * handshake that reached it (accepted or refused), `refuse` turns one down with that status.
 */
export async function startWsBackend(options: {
  onConnection: (socket: WebSocket, handshake: Handshake) => void;
  /** A status to refuse this handshake with, or undefined to accept it. */
  refuse?: (handshake: Handshake) => number | undefined;
  /** The subprotocol to pick (default: the last offered, so that order is seen to matter). */
  pick?: (protocols: string[]) => string | false;
}): Promise<{ origin: string; port: number; handshakes: Handshake[]; close: () => Promise<void> }> {
  const handshakes: Handshake[] = [];
  const server = createServer((_req, res) => {
    res.writeHead(426).end();
  });
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (protocols) =>
      options.pick ? options.pick([...protocols]) : ([...protocols].at(-1) ?? false),
  });
  server.on('upgrade', (req, socket, head) => {
    const protocols = (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    const handshake: Handshake = { url: req.url ?? '', headers: req.headers, protocols };
    handshakes.push(handshake);
    const status = options.refuse?.(handshake);
    if (status !== undefined) {
      socket.end(`HTTP/1.1 ${status} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => options.onConnection(ws, handshake));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    handshakes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

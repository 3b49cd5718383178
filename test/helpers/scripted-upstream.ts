import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';

/** A request head as the scripted upstream read it. */
export interface ScriptedRequest {
  method: string;
  path: string;
  headers: Map<string, string>;
  /** 0 for the first request on a connection, 1 for the second, ... */
  indexOnConnection: number;
  /** Which accepted connection it came on (0-based). */
  connection: number;
}

/**
 * What to do with one request: write these parts (each after `gapMs`), then keep the connection,
 * end it (FIN) or destroy it (RST when data is unread). `readBody: false` answers without reading
 * the request body (the connection then holds unread bytes).
 */
export interface Script {
  parts?: (string | Buffer)[];
  gapMs?: number;
  after?: 'keep' | 'end' | 'destroy';
  readBody?: boolean;
}

/**
 * An upstream on a raw TCP server that answers with exactly the bytes a test scripts: interim
 * answers, split status lines, connections closed between requests. Requests are parsed just
 * enough to know where each ends (Content-Length bodies only).
 */
export async function startScriptedUpstream(script: (req: ScriptedRequest) => Script): Promise<{
  server: Server;
  origin: string;
  requests: ScriptedRequest[];
  close: () => Promise<void>;
}> {
  const requests: ScriptedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const connection = connections++;
    let index = 0;
    let buffer = Buffer.alloc(0);
    let bodyLeft = 0;
    let busy = false;
    const next = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      for (;;) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, buffer.length);
          bodyLeft -= take;
          buffer = buffer.subarray(take);
          if (bodyLeft > 0) break;
        }
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) break;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        buffer = buffer.subarray(end + 4);
        const [method = '', path = ''] = (lines[0] ?? '').split(' ');
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
        }
        const req: ScriptedRequest = {
          method,
          path,
          headers,
          indexOnConnection: index++,
          connection,
        };
        requests.push(req);
        const plan = script(req);
        const length = Number(headers.get('content-length') ?? '0');
        if (plan.readBody === false) {
          socket.pause();
        } else {
          bodyLeft = length;
        }
        for (const [i, part] of (plan.parts ?? []).entries()) {
          if (i > 0 && plan.gapMs) await new Promise((r) => setTimeout(r, plan.gapMs));
          if (!socket.destroyed) socket.write(part);
        }
        if (plan.after === 'end') socket.end();
        if (plan.after === 'destroy') socket.resetAndDestroy();
        if (plan.after === 'end' || plan.after === 'destroy' || plan.readBody === false) {
          busy = false;
          return;
        }
      }
      busy = false;
      // A request that arrived while this one was being answered.
      if (bodyLeft === 0 && buffer.indexOf('\r\n\r\n') !== -1) void next();
    };
    socket.on('data', (d: Buffer) => {
      buffer = Buffer.concat([buffer, d]);
      void next();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A complete HTTP/1.1 answer with a Content-Length body. */
export function answer(status: string, body = '', headers: Record<string, string> = {}): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  return `HTTP/1.1 ${status}\r\n${lines.join('')}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

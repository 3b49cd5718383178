import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';

/** A request as the hostile upstream read it off the wire. */
export interface HostileRequest {
  /** Order of arrival over the whole server (0-based). */
  seq: number;
  /** Which accepted connection it came on (0-based, in order of acceptance). */
  connection: number;
  /** 0 for the first request on its connection, 1 for the second, ... */
  indexOnConnection: number;
  /** The raw head up to and without the blank line, latin1-decoded. */
  head: string;
  method: string;
  target: string;
  /** Header lines in order, names lower-cased, values trimmed (repeats kept). */
  headers: [string, string][];
  /** The body as read: Content-Length bytes, or the decoded chunks of a chunked body. */
  body: Buffer;
  /** The body's raw bytes on the wire (chunk framing included). */
  rawBody: Buffer;
}

/** One write of an answer: bytes, optionally after a pause. */
export type HostileChunk = string | Buffer | { data: string | Buffer; delayMs: number };

/**
 * What the upstream does with one request: write `chunks` in order (strings are latin1), then
 * keep the connection open for the next request, `end` it (FIN), `destroy` it (RST when bytes
 * are unread), or `hang` (keep it open and read no further request from it). With
 * `readBody: false` the answer starts as soon as the head is read and the body is left unread.
 */
export interface HostileScript {
  chunks: HostileChunk[];
  after?: 'keep' | 'end' | 'destroy' | 'hang';
  /** Also end/destroy this long after the last write (for idle-close cases). */
  afterDelayMs?: number;
  readBody?: boolean;
}

/** One accepted connection and what happened on it. */
export interface HostileConnection {
  id: number;
  requests: HostileRequest[];
  /** Bytes received that were not (yet) part of a complete request. */
  pending: () => number;
  /** Set once the socket closed, and by whom it was closed first. */
  closed: 'client' | 'server' | undefined;
}

export interface HostileUpstream {
  server: Server;
  origin: string;
  port: number;
  connections: HostileConnection[];
  requests: HostileRequest[];
  /** Resolves once `n` connections have closed (either side). */
  closedConnections: (n: number) => Promise<void>;
  close: () => Promise<void>;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * A raw TCP upstream on 127.0.0.1 that answers each request with exactly the bytes a test
 * scripts: malformed status lines, conflicting framing, answers split byte by byte, resets.
 * Requests are parsed only as far as needed to know where they end (a Content-Length or
 * chunked body; no body otherwise) and recorded with the connection they came on.
 */
export async function startHostileUpstream(
  script: (req: HostileRequest, connection: HostileConnection) => HostileScript,
): Promise<HostileUpstream> {
  const connections: HostileConnection[] = [];
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  const closeWaiters: { n: number; resolve: () => void }[] = [];
  let closedCount = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    let buffer = Buffer.alloc(0);
    const conn: HostileConnection = {
      id: connections.length,
      requests: [],
      pending: () => buffer.length,
      closed: undefined,
    };
    connections.push(conn);
    let serverClosing = false;
    socket.on('error', () => {});
    socket.on('end', () => {
      if (!serverClosing) conn.closed ??= 'client';
    });
    socket.on('close', () => {
      sockets.delete(socket);
      conn.closed ??= serverClosing ? 'server' : 'client';
      closedCount++;
      for (const w of closeWaiters.filter((w) => w.n <= closedCount)) w.resolve();
    });
    let busy = false;
    let stopped = false;
    const serve = async (): Promise<void> => {
      if (busy || stopped) return;
      busy = true;
      for (;;) {
        const parsed = readRequest(buffer);
        if (parsed === undefined) break;
        const req: HostileRequest = {
          ...parsed.request,
          seq: requests.length,
          connection: conn.id,
          indexOnConnection: conn.requests.length,
        };
        const plan = script(req, conn);
        let used = parsed.used;
        if (plan.readBody === false) {
          used = parsed.headUsed;
          req.body = Buffer.alloc(0);
          req.rawBody = Buffer.alloc(0);
        } else if (parsed.complete === false) {
          // The body has not all come yet: wait for more bytes, then answer.
          break;
        }
        buffer = buffer.subarray(used);
        requests.push(req);
        conn.requests.push(req);
        for (const chunk of plan.chunks) {
          const { data, delayMs } =
            typeof chunk === 'string' || Buffer.isBuffer(chunk)
              ? { data: chunk, delayMs: 0 }
              : chunk;
          if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
          if (socket.destroyed) break;
          socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
        }
        const after = plan.after ?? 'keep';
        if (after === 'keep') continue;
        stopped = true;
        if (after === 'hang') break;
        if (plan.afterDelayMs) await new Promise((r) => setTimeout(r, plan.afterDelayMs));
        serverClosing = !socket.destroyed;
        if (after === 'end') socket.end();
        else socket.resetAndDestroy();
        break;
      }
      busy = false;
      // Only a request whose body came whole: one still arriving is served by its next bytes
      // (serving it now would recurse until the stack overflows).
      if (!stopped && readRequest(buffer)?.complete === true) void serve();
    };
    socket.on('data', (d: Buffer) => {
      buffer = Buffer.concat([buffer, d]);
      void serve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    connections,
    requests,
    closedConnections: (n) =>
      n <= closedCount
        ? Promise.resolve()
        : new Promise<void>((resolve) => closeWaiters.push({ n, resolve })),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Parsed {
  request: Omit<HostileRequest, 'seq' | 'connection' | 'indexOnConnection'>;
  /** Bytes of the head and its blank line. */
  headUsed: number;
  /** Bytes of head and body (as far as the body has come). */
  used: number;
  complete: boolean;
}

/**
 * The request at the start of `buf`, or undefined while its head is incomplete. `complete` is
 * false while its body has not all arrived.
 */
function readRequest(buf: Buffer): Parsed | undefined {
  const end = buf.indexOf(CRLFCRLF);
  if (end === -1) return undefined;
  const head = buf.subarray(0, end).toString('latin1');
  const [requestLine = '', ...lines] = head.split('\r\n');
  const [method = '', target = ''] = requestLine.split(' ');
  const headers: [string, string][] = lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  const headUsed = end + 4;
  const rest = buf.subarray(headUsed);
  const te = headers.find(([n]) => n === 'transfer-encoding')?.[1];
  const cl = headers.find(([n]) => n === 'content-length')?.[1];
  let body: Buffer = Buffer.alloc(0);
  let bodyBytes = 0;
  let complete = true;
  if (te !== undefined && /chunked\s*$/i.test(te)) {
    const decoded = decodeChunked(rest);
    complete = decoded !== undefined;
    if (decoded) ({ body, used: bodyBytes } = decoded);
  } else if (cl !== undefined) {
    const length = Number(cl);
    complete = rest.length >= length;
    bodyBytes = Math.min(length, rest.length);
    body = Buffer.from(rest.subarray(0, bodyBytes));
  }
  return {
    request: {
      head,
      method,
      target,
      headers,
      body,
      rawBody: Buffer.from(rest.subarray(0, bodyBytes)),
    },
    headUsed,
    used: headUsed + bodyBytes,
    complete,
  };
}

/** A chunked body at the start of `buf` (RFC 9112 section 7.1), or undefined while incomplete. */
function decodeChunked(buf: Buffer): { body: Buffer; used: number } | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol === -1) return undefined;
    const size = Number.parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0] ?? '', 16);
    if (Number.isNaN(size)) throw new Error('hostile upstream: bad chunk size in a request body');
    at = eol + 2;
    if (size === 0) {
      // Trailer section: lines up to an empty one.
      const endOfTrailers = buf.indexOf('\r\n', at);
      if (endOfTrailers === -1) return undefined;
      if (endOfTrailers === at) return { body: Buffer.concat(parts), used: at + 2 };
      const blank = buf.indexOf(CRLFCRLF, at - 2);
      if (blank === -1) return undefined;
      return { body: Buffer.concat(parts), used: blank + 4 };
    }
    if (buf.length < at + size + 2) return undefined;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}

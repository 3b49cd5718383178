import { connect, type Socket } from 'node:net';

/*
 * The floor's client to the upstream: keep-alive `net.Socket`s, one request at a time each, a
 * free list, a new socket when none is free. It reads just enough of an answer to frame it by
 * Content-Length. NOT a client anyone should proxy with: no 1xx, no chunked or close-delimited
 * bodies (both answered 502), no limits but the head size, no check of header syntax, no retry
 * when a reused connection was closed by the upstream meanwhile.
 */

/** An upstream answer, ready to relay: what uWS needs, nothing more. */
export interface FloorAnswer {
  /** The status line after the version, e.g. `200 OK` (what uWS's writeStatus takes). */
  readonly status: string;
  /** Relayed headers, flat: name, value, name, value... (names lower case). */
  readonly headers: string[];
  /** Undefined for a bodiless answer (HEAD, 204, 304), which keeps its Content-Length header. */
  readonly body: Buffer | undefined;
}

/** An answer's status line and relayed headers, once read. */
type FloorHead = Omit<FloorAnswer, 'body'>;

/** Called once per request: the answer, or undefined when the upstream failed (502). */
export type AnswerHandler = (answer: FloorAnswer | undefined) => void;

/** Response headers not relayed: hop-by-hop (RFC 9110 section 7.6.1), and those uWS writes itself. */
const DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'date',
]);

/** Largest answer head read before giving up (undici's default). */
const MAX_HEAD_BYTES = 16 * 1024;

/** Keep-alive connections to one upstream; never closes an idle one itself. */
export class FloorPool {
  readonly #host: string;
  readonly #port: number;
  readonly #free: FloorConnection[] = [];

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  /** Sends a request (`head` ends with the blank line; `body` follows it) on a free connection. */
  request(head: string, body: Buffer | undefined, isHead: boolean, done: AnswerHandler): void {
    const conn = this.#free.pop() ?? new FloorConnection(this, this.#host, this.#port);
    conn.send(head, body, isHead, done);
  }

  /** Connections idle now (for tests). */
  get idle(): number {
    return this.#free.length;
  }

  release(conn: FloorConnection): void {
    this.#free.push(conn);
  }

  forget(conn: FloorConnection): void {
    const at = this.#free.indexOf(conn);
    if (at !== -1) this.#free.splice(at, 1);
  }
}

/** One upstream connection and the answer it is reading. */
class FloorConnection {
  readonly #pool: FloorPool;
  readonly #socket: Socket;
  #done: AnswerHandler | undefined;
  #isHead = false;
  /** Head bytes so far, while the head is incomplete. */
  #partial: Buffer | undefined;
  #head: FloorHead | undefined;
  #bodiless = false;
  #chunks: Buffer[] = [];
  #received = 0;
  #length = 0;
  #reusable = true;

  constructor(pool: FloorPool, host: string, port: number) {
    this.#pool = pool;
    this.#socket = connect({ host, port, noDelay: true });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    // The 'close' that follows every error answers the request in flight (502).
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => this.#onClose());
  }

  send(head: string, body: Buffer | undefined, isHead: boolean, done: AnswerHandler): void {
    this.#done = done;
    this.#isHead = isHead;
    const socket = this.#socket;
    if (body === undefined) {
      socket.write(head, 'latin1');
      return;
    }
    // One writev for head and body.
    socket.cork();
    socket.write(head, 'latin1');
    socket.write(body);
    socket.uncork();
  }

  #onData(chunk: Buffer): void {
    if (this.#done === undefined) {
      this.#socket.destroy(); // bytes nobody asked for: this connection cannot be trusted
      return;
    }
    let data = chunk;
    if (this.#head === undefined) {
      const buffered = this.#partial === undefined ? chunk : Buffer.concat([this.#partial, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffered.length > MAX_HEAD_BYTES) this.#socket.destroy();
        else this.#partial = buffered;
        return;
      }
      this.#partial = undefined;
      this.#head = this.#parseHead(buffered.toString('latin1', 0, end));
      if (this.#head === undefined) {
        this.#socket.destroy();
        return;
      }
      data = buffered.subarray(end + 4);
    }
    if (data.length > 0) this.#chunks.push(data);
    this.#received += data.length;
    if (this.#received >= this.#length) this.#finish();
  }

  /** The status line and headers; undefined for what the floor does not frame (502). */
  #parseHead(text: string): FloorHead | undefined {
    const lines = text.split('\r\n');
    const statusLine = lines[0] ?? '';
    if (!statusLine.startsWith('HTTP/1.')) return undefined;
    const code = Number(statusLine.slice(9, 12));
    if (!(code >= 200 && code < 600)) return undefined;
    const bodiless = this.#isHead || code === 204 || code === 304;
    this.#bodiless = bodiless;
    const headers: string[] = [];
    let length = -1;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon < 1) return undefined;
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'transfer-encoding') return undefined;
      if (name === 'content-length') length = Number(value);
      if (name === 'connection' && value.toLowerCase().includes('close')) this.#reusable = false;
      if (!DROPPED.has(name) || (bodiless && name === 'content-length')) headers.push(name, value);
    }
    if (bodiless) length = 0;
    if (!Number.isSafeInteger(length) || length < 0) return undefined;
    this.#length = length;
    return { status: statusLine.slice(9), headers };
  }

  #finish(): void {
    const head = this.#head as FloorHead;
    const chunks = this.#chunks;
    const done = this.#done as AnswerHandler;
    // Bytes past the body: the upstream said more than it framed; do not reuse.
    if (this.#received > this.#length) this.#reusable = false;
    const body = this.#bodiless
      ? undefined
      : chunks.length === 1
        ? (chunks[0] as Buffer).subarray(0, this.#length)
        : Buffer.concat(chunks, this.#length);
    this.#head = undefined;
    this.#chunks = [];
    this.#received = 0;
    this.#done = undefined;
    if (this.#reusable) this.#pool.release(this);
    else this.#socket.destroy();
    done({ status: head.status, headers: head.headers, body });
  }

  #onClose(): void {
    this.#pool.forget(this);
    const done = this.#done;
    this.#done = undefined;
    done?.(undefined);
  }
}

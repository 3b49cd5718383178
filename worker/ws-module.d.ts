/*
 * The part of the `ws` package (8.23.0, a runtime dependency) the gateway and its tests use,
 * typed here rather than by pulling @types/ws in: only what is called is declared, so a use of
 * anything else fails to typecheck instead of being trusted blindly. Shapes follow ws's docs
 * (doc/ws.md of 8.23.0).
 */
declare module 'ws' {
  import type { EventEmitter } from 'node:events';
  import type { ClientRequest, Server as HttpServer, IncomingMessage } from 'node:http';
  import type { Duplex } from 'node:stream';

  type Data = Buffer | ArrayBuffer | Uint8Array | string;

  interface ClientOptions {
    /** Extra handshake request headers (ws adds Host, Upgrade, Connection, Sec-WebSocket-*). */
    headers?: Record<string, string>;
    /** false: permessage-deflate is not offered. */
    perMessageDeflate?: boolean;
    /** Largest message accepted, in bytes; a larger one closes with 1009. */
    maxPayload?: number;
    /** Milliseconds the opening handshake may take. */
    handshakeTimeout?: number;
    followRedirects?: boolean;
    /** Pings are answered automatically (default true). */
    autoPong?: boolean;
    /** TLS: verify the server's certificate (default true). */
    rejectUnauthorized?: boolean;
    /** TLS: the route's CA and client certificate (passed on to tls.connect). */
    secureContext?: import('node:tls').SecureContext;
    /**
     * Opens the connection instead of net/tls.connect (passed on to http.request): may return
     * the socket, or call back with it later.
     */
    createConnection?: (
      options: { host?: string; port?: number | string; servername?: string },
      callback: (err: Error | null, socket?: Duplex) => void,
    ) => Duplex | undefined;
  }

  class WebSocket extends EventEmitter {
    static readonly CONNECTING: 0;
    static readonly OPEN: 1;
    static readonly CLOSING: 2;
    static readonly CLOSED: 3;
    constructor(address: string, protocols?: string | string[], options?: ClientOptions);
    constructor(address: string, options?: ClientOptions);
    /** 0 connecting, 1 open, 2 closing, 3 closed. */
    readonly readyState: 0 | 1 | 2 | 3;
    /** The subprotocol the server chose, '' for none. */
    readonly protocol: string;
    /** Bytes queued for the socket, not yet written to the kernel. */
    readonly bufferedAmount: number;
    send(data: Data, options?: { binary?: boolean }, cb?: (err?: Error) => void): void;
    send(data: Data, cb?: (err?: Error) => void): void;
    ping(data?: Data, mask?: boolean, cb?: (err?: Error) => void): void;
    pong(data?: Data, mask?: boolean, cb?: (err?: Error) => void): void;
    close(code?: number, reason?: Data): void;
    terminate(): void;
    /** Stops reading from the socket (messages already read may still be emitted). */
    pause(): void;
    resume(): void;
    on(event: 'open', listener: () => void): this;
    on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
    on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
    on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: 'upgrade', listener: (res: IncomingMessage) => void): this;
    on(
      event: 'unexpected-response',
      listener: (req: ClientRequest, res: IncomingMessage) => void,
    ): this;
    once(event: 'open', listener: () => void): this;
    once(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
    once(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
    once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    once(event: 'error', listener: (err: Error) => void): this;
  }

  interface ServerOptions {
    host?: string;
    port?: number;
    server?: HttpServer;
    noServer?: boolean;
    maxPayload?: number;
    perMessageDeflate?: boolean;
    handleProtocols?: (protocols: Set<string>, req: IncomingMessage) => string | false;
    autoPong?: boolean;
  }

  class WebSocketServer extends EventEmitter {
    constructor(options: ServerOptions, callback?: () => void);
    readonly clients: Set<WebSocket>;
    address(): { port: number; address: string; family: string };
    close(cb?: (err?: Error) => void): void;
    handleUpgrade(
      req: IncomingMessage,
      socket: Duplex,
      head: Buffer,
      cb: (socket: WebSocket, req: IncomingMessage) => void,
    ): void;
    on(event: 'connection', listener: (socket: WebSocket, req: IncomingMessage) => void): this;
    on(event: 'listening', listener: () => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: 'headers', listener: (headers: string[], req: IncomingMessage) => void): this;
  }

  export { type ClientOptions, type Data, type ServerOptions, WebSocketServer };
  export default WebSocket;
}

/*
 * WebSocket proxying (RFC 6455). A handshake (a GET with `Upgrade: websocket` and a key, which
 * uWS hands to the upgrade dispatcher) passes the route's steps like any request (dispatch.ts),
 * then reaches `proxyWebSocket`: the gateway opens the upstream WebSocket first (the `ws`
 * package, `ws:`/`wss:` from the route's target) with the request's headers as any proxied
 * request carries them (identity, X-Forwarded-*, no gateway token), and only once the backend
 * accepted answers the client's handshake with 101. A refusal before that is the usual JSON
 * error over HTTP, and the backend is never contacted for a request the steps refused.
 *
 * Once open, a Tunnel relays both ways:
 * - messages, text and binary, one for one (never merged or split on the way);
 * - pings are answered hop by hop (uWS answers the client's, ws the backend's) and relayed to
 *   the other side, so each end sees the other's pings; pongs are not relayed (already answered);
 * - a close of either side closes the other with the same code and reason; codes that never go
 *   on the wire become: 1005 (no code) a close frame without code, 1006/1015 (connection lost)
 *   1014 "Bad Gateway" towards the client and 1001 "Going Away" towards the backend;
 * - backpressure, backend to client: when uWS holds more than PAUSE_AT bytes for the client,
 *   the upstream socket stops being read (TCP pushes back on the backend) until uWS drains
 *   below RESUME_AT. Client to backend: uwebsockets 3.0.6 cannot stop reading a WebSocket, so
 *   when the upstream socket holds more than the buffer limit the gateway closes both sides
 *   (1013 "Try Again Later" to the client, 1001 to the backend) rather than buffer without bound;
 * - the token: a tunnel opened with a bearer token closes (1008 "Policy Violation") once the
 *   token expires or is revoked, checked every WATCH_MS;
 * - a drain (edge stop, roll) closes every tunnel with 1001; a reload in place keeps them, on
 *   the rules they were opened with.
 * permessage-deflate is negotiated on neither side (a decompression bomb costs nothing to send;
 * the bounds above count wire bytes). Subprotocols offered by the client go upstream as offered,
 * and the one the backend picks is the one the client gets.
 */

import WebSocket, { type ClientOptions } from 'ws';
import { GatewayError, refusal } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Backend } from './balancer.js';
import type { RequestContext } from './request-context.js';
import type { RevocationSet } from './revocation-set.js';
import type { Session } from './session-cache.js';
import { upstreamError } from './upstream-error.js';
import { upstreamRequestHeaders } from './upstream-headers.js';
import type { ConnectionProfile } from './upstream-pools.js';
import { tunnelConnector } from './upstream-proxy.js';
import { classify } from './upstream-relay.js';
import { upstreamPathFor } from './upstream-url.js';
import {
  acceptUpgrade,
  type ClientSocket,
  clientBuffered,
  cutClient,
  endClient,
  onClientAbort,
  pingClient,
  sendToClient,
  singleHeader,
  type WebSocketPeer,
} from './uws-io.js';

/** Bytes uWS may hold for a client before the upstream socket stops being read. */
export const PAUSE_AT = 1024 * 1024;
/** The upstream socket is read again once uWS holds less than this for the client. */
const RESUME_AT = 256 * 1024;
/** How often open tunnels check their token's expiry and revocation. */
const WATCH_MS = 1000;

/**
 * Bytes buffered per direction before the gateway gives up on a peer: two messages of the
 * largest size plus the pause threshold. Client side: uWS's maxBackpressure (closes beyond);
 * upstream side: the ws socket's bufferedAmount (closed with 1013 beyond).
 */
export function webSocketBufferLimit(maxMessageBytes: number): number {
  return 2 * maxMessageBytes + PAUSE_AT;
}

/** RFC 6455 section 4.1: the key is 16 random bytes in base64. */
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
/** RFC 6455 section 4.1 / RFC 9110 section 5.6.2: subprotocols are tokens. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The route's upgrade handler with `websocket: false`: 403, the backend is never contacted. */
export function refuseWebSocket(): never {
  throw refusal('WEBSOCKET_NOT_ALLOWED');
}

/** Open tunnels of this edge (closed by a drain). */
const tunnels = new Set<Tunnel>();
let shuttingDown = false;
let watchTimer: NodeJS.Timeout | undefined;

/**
 * The route's upgrade handler: connects upstream, then accepts the client's handshake. Resolves
 * once the client got its 101 (or went away); rejects with the answer to send instead:
 * 400 for a malformed handshake, 502 UPSTREAM_WEBSOCKET_REFUSED when the backend answered it
 * with anything but 101 (its status is named in the message, its body is not relayed),
 * 502/504 when it could not be reached in `client_timeout`.
 */
export function proxyWebSocket(ctx: RequestContext): Promise<void> {
  const { ex, rt } = ctx;
  const route = ctx.route!;
  const context = ctx.upgrade!;
  if (shuttingDown) {
    throw new GatewayError('OVERLOADED', { detail: 'this gateway process is shutting down' });
  }
  // Whatever follows the head is WebSocket frames once upgraded: a body would be read as some.
  if (ex.hasBody) throw badHandshake('a WebSocket handshake has no body');
  const key = singleHeader(ex, 'sec-websocket-key');
  if (typeof key !== 'string' || !KEY.test(key)) {
    throw badHandshake('Sec-WebSocket-Key must be one base64 value of 16 bytes');
  }
  if (singleHeader(ex, 'sec-websocket-version') !== '13') {
    throw badHandshake('Sec-WebSocket-Version must be 13');
  }
  const protocols = offeredProtocols(ctx);
  // A balanced route's handshake goes to the backend its balancer picks, as a request would,
  // and moves to the next one when it could not connect (nothing was sent: always safe).
  const balancer = route.balancer;
  const first = balancer?.pick();
  if (balancer !== undefined && first === undefined) {
    throw new GatewayError('NO_HEALTHY_UPSTREAM', { after: balancer.retryAfterSeconds() });
  }
  const maxMessageBytes = rt.config.max_websocket_message_bytes;
  const headers = handshakeHeaders(ctx);
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let upstream: WebSocket | undefined;
    const tried: Backend[] = [];
    const settle = (err?: GatewayError): void => {
      if (settled) return;
      settled = true;
      if (err === undefined || ex.aborted) resolve();
      else reject(err);
    };
    onClientAbort(ex, () => {
      if (upstream?.readyState === WebSocket.CONNECTING) upstream.terminate();
      settle();
    });
    const attempt = (backend: Backend | undefined): void => {
      const origin = backend?.origin ?? route.origin;
      const path = upstreamPathFor(ctx, backend ?? route);
      const url = `${origin.startsWith('https:') ? 'wss' : 'ws'}${origin.slice(origin.indexOf(':'))}${path}`;
      const socket = new WebSocket(url, protocols, {
        headers,
        perMessageDeflate: false,
        maxPayload: maxMessageBytes,
        handshakeTimeout: rt.config.client_timeout,
        followRedirects: false,
        ...connectionOptions(route.profile, url, rt.config.client_timeout),
      });
      upstream = socket;
      socket.on('unexpected-response', (req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        req.destroy();
        if (backend !== undefined && backend.fails !== 0) balancer!.succeeded(backend);
        settle(
          new GatewayError('UPSTREAM_WEBSOCKET_REFUSED', {
            detail: `it answered ${status}`,
            cause: `upstream status ${status}`,
          }),
        );
      });
      // Before the open: the handshake failed. After it: the close event follows and relays it.
      socket.on('error', (err) => {
        if (settled) return;
        const code = (err as { code?: string }).code ?? '';
        if (backend !== undefined && !ex.done && classify(code, false, true) === 'down') {
          // Counted for passive health like a request's failure, then the next member.
          balancer!.failed(backend, code);
          tried.push(backend);
          const next = balancer!.pick(tried);
          if (next !== undefined) {
            ctx.services.log.warn('upstream failover', {
              route: route.prefix,
              from: backend.name,
              to: next.name,
              code,
            });
            attempt(next);
            return;
          }
        }
        settle(handshakeError(err));
      });
      socket.on('open', () => {
        if (backend !== undefined && backend.fails !== 0) balancer!.succeeded(backend);
        if (ex.done) {
          socket.terminate();
          settle();
          return;
        }
        // Nothing is read from the backend until the client's socket exists (Tunnel.opened).
        socket.pause();
        const tunnel = new Tunnel(
          socket,
          ctx.session,
          webSocketBufferLimit(maxMessageBytes),
          ctx.services.revocations,
          ctx.services.log,
        );
        acceptUpgrade(ex, tunnel, key, socket.protocol, context);
        settle();
      });
    };
    attempt(first);
  });
}

function badHandshake(detail: string): GatewayError {
  return new GatewayError('BAD_REQUEST', { detail });
}

/** ws's handshake timeout has a message but no code: it is a 504 like any upstream timeout. */
/**
 * The route's connection profile (upstream-pools.ts) applied to the WebSocket's connection, as
 * to its HTTP requests: `ca`, `tls_verify` and the client `cert` for `wss://`, and a forward
 * proxy through a `CONNECT` tunnel (for `ws://` too: an upgrade cannot travel in absolute form).
 */
function connectionOptions(
  profile: ConnectionProfile | undefined,
  url: string,
  timeoutMs: number,
): ClientOptions {
  if (profile === undefined) return {};
  const tls = profile.tls;
  const options: ClientOptions = {
    rejectUnauthorized: tls?.rejectUnauthorized ?? true,
    secureContext: tls?.secureContext,
  };
  const proxy = profile.proxy;
  if (proxy !== undefined) {
    const tunnel = tunnelConnector(proxy, tls, Math.min(timeoutMs, 10_000));
    const { hostname, port, protocol } = new URL(url);
    options.createConnection = (_opts, callback) => {
      tunnel(
        {
          hostname,
          host: hostname,
          port,
          protocol: protocol === 'wss:' ? 'https:' : 'http:',
          servername: undefined,
          localAddress: null,
          httpSocket: undefined,
        },
        (err, socket) => (err === null ? callback(null, socket) : callback(err)),
      );
      return undefined;
    };
  }
  return options;
}

function handshakeError(err: Error): GatewayError {
  if ((err as { code?: string }).code === undefined && /timed out/i.test(err.message)) {
    return new GatewayError('UPSTREAM_TIMEOUT', { cause: err });
  }
  return upstreamError(err);
}

/** The subprotocols the client offers, in order; 400 on a malformed or repeated one. */
function offeredProtocols(ctx: RequestContext): string[] {
  const h = ctx.ex.headers;
  const out: string[] = [];
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'sec-websocket-protocol') continue;
    for (const raw of h[i + 1]!.split(',')) {
      const p = raw.trim();
      if (!TOKEN.test(p) || out.includes(p)) {
        throw badHandshake('Sec-WebSocket-Protocol must list distinct tokens');
      }
      out.push(p);
    }
  }
  return out;
}

/**
 * The handshake's headers upstream: what any proxied request carries (upstream-headers.ts),
 * minus the Sec-WebSocket-* headers ws writes itself (key, version, the offered protocols; no
 * extensions). Repeated names are joined (`; ` for Cookie, RFC 6265 section 5.4).
 */
function handshakeHeaders(ctx: RequestContext): Record<string, string> {
  const flat = upstreamRequestHeaders(ctx.ex, {
    forwardedFor: ctx.forwardedFor,
    proto: ctx.rt.proto,
    identity: ctx.user?.identity,
    dropAllAuthorization: ctx.dropAllAuthorization,
    withheldAuthorization: ctx.withheldAuthorization,
    stripSessionCookie: ctx.rt.config.session_cookie,
    drop: ctx.rt.dropHeaders,
  });
  // No prototype: a client's `constructor` header is a name like any other (with `{}` it read
  // the inherited function first and went upstream as `function Object() ...`).
  const out: Record<string, string> = Object.create(null);
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    if (name.startsWith('sec-websocket-')) continue;
    const value = flat[i + 1]!;
    const had = out[name];
    out[name] = had === undefined ? value : `${had}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}

/** RFC 6455 section 7.4: codes an endpoint may send in a close frame (ws refuses the others). */
function sendable(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/** One proxied WebSocket: the client's (uWS) and the backend's (ws) ends, relayed both ways. */
class Tunnel implements WebSocketPeer {
  readonly #upstream: WebSocket;
  readonly #session: Session | undefined;
  readonly #limit: number;
  readonly #revocations: RevocationSet;
  readonly #log: Logger;
  #client: ClientSocket | undefined;
  #clientClosed = false;
  #upstreamClosed = false;
  #upstreamPaused = true;
  /** The gateway closed both sides itself: events of either side relay nothing more. */
  #expelled = false;

  constructor(
    upstream: WebSocket,
    session: Session | undefined,
    limit: number,
    revocations: RevocationSet,
    log: Logger,
  ) {
    this.#upstream = upstream;
    this.#session = session;
    this.#limit = limit;
    this.#revocations = revocations;
    this.#log = log;
    upstream.on('message', (data, binary) => this.#fromUpstream(data, binary));
    upstream.on('ping', (data) => {
      if (this.#client !== undefined) pingClient(this.#client, data);
    });
    upstream.on('close', (code, reason) => this.#upstreamEnded(code, reason));
  }

  opened(socket: ClientSocket): void {
    tunnels.add(this);
    if (this.#upstreamClosed) {
      // The backend left between its handshake and the client's.
      this.#clientClosed = true;
      endClient(socket, 1014, Buffer.from('upstream connection lost'));
      this.#forgetIfDone();
      return;
    }
    this.#client = socket;
    watch();
    this.#upstreamPaused = false;
    this.#upstream.resume();
    // A drain began while this handshake was under way: it goes the way of the others.
    if (shuttingDown) this.expel(1001, 'going away');
  }

  message(data: Buffer, binary: boolean): void {
    const upstream = this.#upstream;
    if (upstream.readyState !== WebSocket.OPEN) return;
    upstream.send(data, { binary });
    if (upstream.bufferedAmount > this.#limit) {
      this.#log.warn('websocket closed: the upstream does not read fast enough', {
        buffered: upstream.bufferedAmount,
      });
      this.expel(1013, 'upstream too slow');
    }
  }

  pinged(data: Buffer): void {
    if (this.#upstream.readyState === WebSocket.OPEN) this.#upstream.ping(data);
  }

  drained(): void {
    const client = this.#client;
    if (!this.#upstreamPaused || client === undefined) return;
    if (clientBuffered(client) < RESUME_AT) {
      this.#upstreamPaused = false;
      this.#upstream.resume();
    }
  }

  closed(code: number, reason: Buffer): void {
    this.#client = undefined;
    this.#clientClosed = true;
    const upstream = this.#upstream;
    if (!this.#expelled) {
      if (upstream.readyState === WebSocket.OPEN) {
        if (code === 1005 || code === 0) upstream.close();
        else if (sendable(code)) upstream.close(code, reason);
        else upstream.close(1001);
      } else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
    }
    this.#forgetIfDone();
  }

  /**
   * The gateway closes both sides itself: the client with `code` and `reason`, the backend
   * with 1001 (its client is going away).
   */
  expel(code: number, reason: string): void {
    if (this.#expelled) return;
    this.#expelled = true;
    const client = this.#client;
    if (client !== undefined) endClient(client, code, Buffer.from(reason));
    const upstream = this.#upstream;
    if (upstream.readyState === WebSocket.OPEN) upstream.close(1001, reason);
    else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
  }

  /** Expiry and revocation of the token the tunnel was opened with. */
  check(nowSeconds: number): void {
    const session = this.#session;
    if (session === undefined || this.#expelled) return;
    if (!(nowSeconds < session.exp)) this.expel(1008, 'token expired');
    else if (this.#revocations.revokes(session, nowSeconds)) this.expel(1008, 'token revoked');
  }

  get finished(): boolean {
    return this.#clientClosed && this.#upstreamClosed;
  }

  #fromUpstream(data: Buffer, binary: boolean): void {
    const client = this.#client;
    if (client === undefined || this.#expelled) return;
    // 'dropped': over maxBackpressure, uWS closes the client (closed() follows).
    if (sendToClient(client, data, binary) === 'dropped') return;
    if (!this.#upstreamPaused && clientBuffered(client) > PAUSE_AT) {
      this.#upstreamPaused = true;
      this.#upstream.pause();
    }
  }

  #upstreamEnded(code: number, reason: Buffer): void {
    this.#upstreamClosed = true;
    const client = this.#client;
    if (client !== undefined && !this.#expelled) {
      if (code === 1005) endClient(client);
      else if (sendable(code)) endClient(client, code, reason);
      else endClient(client, 1014, Buffer.from('upstream connection lost'));
    } else if (client !== undefined) {
      // Expelled and the backend is gone: the client's close handshake gets no more time.
      cutClient(client);
    }
    this.#forgetIfDone();
  }

  #forgetIfDone(): void {
    if (!this.finished) return;
    tunnels.delete(this);
    if (tunnels.size === 0) unwatch();
    const waiter = drainWaiter;
    if (waiter !== undefined && tunnels.size === 0) waiter();
  }
}

function watch(): void {
  if (watchTimer !== undefined) return;
  watchTimer = setInterval(() => {
    const now = Math.floor(Date.now() / 1000);
    for (const tunnel of tunnels) tunnel.check(now);
  }, WATCH_MS);
  watchTimer.unref();
}

function unwatch(): void {
  if (watchTimer === undefined) return;
  clearInterval(watchTimer);
  watchTimer = undefined;
}

let drainWaiter: (() => void) | undefined;

/** How many proxied WebSockets this edge has open. */
export function openWebSockets(): number {
  return tunnels.size;
}

/**
 * For a drain: refuses new handshakes (503), closes every open tunnel with 1001 "Going Away",
 * and resolves once both ends of each closed, or after `timeoutMs` (ws gives a backend that
 * never answers the close 30 s; the edge exits anyway).
 */
export function closeWebSockets(timeoutMs: number): Promise<void> {
  shuttingDown = true;
  for (const tunnel of tunnels) tunnel.expel(1001, 'going away');
  if (tunnels.size === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    drainWaiter = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

/*
 * Routes through a forward proxy (routes.yml `proxy: true` + `proxy_config`), RFC 9110 section
 * 9.3.6 and RFC 9112 section 3.2.2:
 *
 * - `https` targets: each upstream connection is a `CONNECT host:port` tunnel through the proxy,
 *   and TLS runs inside it end to end, so the proxy sees neither the request nor the route's
 *   client certificate exchange. The pool is the target's own (keyed by origin and profile).
 * - `http` targets: requests are sent to the proxy in absolute form (`GET http://host/path`)
 *   with the target's `Host`, over keep-alive connections to the proxy.
 *
 * undici's ProxyAgent is not used: it turns the gateway's header list into an object (merging
 * repeated request headers such as two `Cookie` lines), and its tunnel has no bound on the
 * proxy's answer. Proxy credentials come from the proxy URL's userinfo and are sent as
 * `Proxy-Authorization: Basic` (RFC 9110 section 11.7.2) to the proxy only; the client's own
 * `Proxy-Authorization` is hop-by-hop and never forwarded (upstream-headers.ts). No proxy URL
 * with its credentials ever reaches a log line or an error: errors name the proxy's host:port.
 */

import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type SecureContext, connect as tlsConnect } from 'node:tls';
import type { buildConnector, Dispatcher } from 'undici';
import { GatewayError } from '../shared/errors.js';
import { installInterimFilter } from './upstream-connector.js';

/** A route's forward proxy, parsed once from `proxy_config`. */
export interface ForwardProxy {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`, without credentials: safe to log. */
  readonly origin: string;
  /** `Basic ...` from the URL's userinfo, or undefined. Never logged. */
  readonly authorization: string | undefined;
}

/** TLS settings of a route's upstream connections. */
export interface UpstreamTls {
  /** Built from `ca` / `cert` (conf/route-tls.ts); undefined: Node's default roots, no cert. */
  readonly secureContext: SecureContext | undefined;
  /** False only with `tls_verify: false`. */
  readonly rejectUnauthorized: boolean;
}

/** The most the proxy may answer to a CONNECT before the blank line: a status and a few headers. */
const MAX_CONNECT_ANSWER = 16 * 1024;

/**
 * Parses `proxy_config` (already checked by routes-schema.ts: an `http://` URL, host and port
 * only). Userinfo is percent-decoded (RFC 3986 section 3.2.1) into Basic credentials.
 */
export function parseForwardProxy(url: string): ForwardProxy {
  const u = new URL(url);
  const port = u.port === '' ? 80 : Number(u.port);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const authorization =
    u.username === '' && u.password === ''
      ? undefined
      : `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  return { host, port, origin: `http://${u.host}`, authorization };
}

/** A failure reaching or using the proxy, for the client as 502 `UPSTREAM_PROXY_FAILED`. */
function proxyFailure(proxy: ForwardProxy, why: string, cause?: unknown): GatewayError {
  const reason = (cause as { code?: string } | undefined)?.code;
  return new GatewayError('UPSTREAM_PROXY_FAILED', {
    cause: new Error(`proxy ${proxy.origin}: ${why}${reason ? ` (${reason})` : ''}`),
  });
}

/**
 * A connector (undici's `connect` option) for an `https` origin reached through `proxy`: opens
 * a TCP connection to the proxy, asks `CONNECT host:port`, and on a 2xx answer runs TLS with
 * `tls` through the tunnel (with `opts.protocol` `http:`, no TLS: the tunnel itself is
 * returned, for `ws://` WebSocket upstreams) (SNI = the target's host name unless it is an IP literal). The whole
 * setup is bounded by `timeoutMs`. Failures before the tunnel is up are 502
 * `UPSTREAM_PROXY_FAILED`; TLS failures keep Node's codes (mapped by upstream-error.ts). The
 * upstream socket gets the 100-Continue filter like a direct one.
 */
export function tunnelConnector(
  proxy: ForwardProxy,
  tls: UpstreamTls | undefined,
  timeoutMs: number,
): buildConnector.connector {
  return (opts, callback) => {
    const hostname = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const port = opts.port === '' ? 443 : Number(opts.port);
    const authority = `${isIP(hostname) === 6 ? `[${hostname}]` : hostname}:${port}`;
    let settled = false;
    let upstream: Socket | undefined;
    const finish = (err: Error | null, socket?: Socket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null) {
        raw.destroy();
        upstream?.destroy();
        callback(err, null);
      } else {
        installInterimFilter(socket!);
        callback(null, socket!);
      }
    };
    const timer = setTimeout(
      () => finish(new GatewayError('UPSTREAM_TIMEOUT', { cause: 'proxy tunnel setup timed out' })),
      timeoutMs,
    );
    const raw = netConnect({ host: proxy.host, port: proxy.port });
    raw.setNoDelay(true);
    // `on`, not `once`: the proxy socket stays under the TLS socket after the handoff.
    raw.on('error', (err) => finish(proxyFailure(proxy, 'connection failed', err)));
    raw.once('close', () => finish(proxyFailure(proxy, 'closed the connection before the tunnel')));
    raw.once('connect', () => {
      const auth = proxy.authorization ? `Proxy-Authorization: ${proxy.authorization}\r\n` : '';
      raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    });
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_CONNECT_ANSWER) finish(proxyFailure(proxy, 'answer too large'));
        return;
      }
      raw.off('data', onData);
      raw.pause();
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, 16).toString('latin1'));
      const code = status ? Number(status[1]) : 0;
      if (code < 200 || code > 299) {
        finish(proxyFailure(proxy, `answered ${code || 'garbage'} to CONNECT ${authority}`));
        return;
      }
      // A proxy that speaks first inside the tunnel is wrong; TLS will judge those bytes.
      if (head.length > end + 4) raw.unshift(head.subarray(end + 4));
      // A plain tunnel (a `ws://` WebSocket through the proxy): the TCP stream is the upstream.
      if (opts.protocol === 'http:') {
        finish(null, raw);
        // Paused above; Node's http client attaches its readers on the next tick and, unlike
        // a TLS socket wrapping it, does not resume a stream that was paused explicitly.
        process.nextTick(() => raw.resume());
        return;
      }
      const secure = tlsConnect({
        socket: raw,
        // The certificate is checked against the target (an IP literal against its IP SAN).
        host: hostname,
        servername: isIP(hostname) === 0 ? (opts.servername ?? hostname) : undefined,
        ALPNProtocols: ['http/1.1'],
        secureContext: tls?.secureContext,
        rejectUnauthorized: tls?.rejectUnauthorized ?? true,
      });
      upstream = secure;
      secure.once('secureConnect', () => {
        keepTlsFailure(secure);
        finish(null, secure);
      });
      // Verification and handshake failures keep their codes: 502 UPSTREAM_TLS_FAILED.
      secure.once('error', (err) => finish(err));
    };
    raw.on('data', onData);
  };
}

/**
 * An interceptor for a pool whose connections go to `proxy`: each request is rewritten to the
 * absolute form for `origin` (an `http://` target), with the target's `Host` and the proxy's
 * credentials. A 407 from the proxy is its refusal, not the upstream's answer: 502
 * `UPSTREAM_PROXY_FAILED` (the client must not see the proxy's challenge).
 */
export function absoluteForm(
  origin: string,
  proxy: ForwardProxy,
): Dispatcher.DispatcherComposeInterceptor {
  const host = new URL(origin).host;
  const extra = proxy.authorization
    ? ['host', host, 'proxy-authorization', proxy.authorization]
    : ['host', host];
  return (dispatch) => (opts, handler) =>
    dispatch(
      { ...opts, path: origin + opts.path, headers: withHeaders(opts.headers, extra) },
      new ProxyAnswer(handler, proxy),
    );
}

function withHeaders(headers: Dispatcher.DispatchOptions['headers'], extra: string[]): string[] {
  if (headers == null) return extra;
  if (Array.isArray(headers)) return [...(headers as string[]), ...extra];
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value === undefined || name.toLowerCase() === 'host') continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push(name, String(v));
  }
  return [...out, ...extra];
}

/** Passes everything to `inner`, except a proxy's 407, which becomes an error. */
class ProxyAnswer implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler & { onResponseStarted?: () => void };
  readonly #proxy: ForwardProxy;

  constructor(inner: Dispatcher.DispatchHandler, proxy: ForwardProxy) {
    this.#inner = inner;
    this.#proxy = proxy;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    socket: import('node:stream').Duplex,
  ): void {
    this.#inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.#inner.onResponseStarted?.();
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode === 407) {
      controller.abort(proxyFailure(this.#proxy, 'asked for credentials (407)'));
      return;
    }
    this.#inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(
    controller: Dispatcher.DispatchController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.#inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.#inner.onResponseError?.(controller, err);
  }
}

/**
 * `connect` for connections to the proxy itself (absolute-form routes): a failure to reach it
 * is 502 `UPSTREAM_PROXY_FAILED`, naming the proxy's host:port only.
 */
export function proxyConnector(
  proxy: ForwardProxy,
  connect: buildConnector.connector,
): buildConnector.connector {
  return (opts, callback) =>
    connect(opts, (...args) => {
      if (args[0] === null) callback(...args);
      else callback(proxyFailure(proxy, 'connection failed', args[0]), null);
    });
}

/**
 * Makes an upstream TLS socket fail with OpenSSL's alert when the upstream sends one after the
 * handshake. With TLS 1.3 a server refuses a missing or untrusted client certificate only after
 * the client's handshake is done, by an alert (`ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`)
 * then the end of the stream; undici replaces the first error with its own "other side closed"
 * when the end follows, and the client would see 502 UPSTREAM_FAILED instead of
 * UPSTREAM_TLS_FAILED. Destroying the socket at the alert keeps the alert as the request's
 * error (undici's own listener runs after this one).
 */
export function keepTlsFailure(socket: Socket): void {
  socket.once('error', (err: NodeJS.ErrnoException) => {
    if (err.code?.startsWith('ERR_SSL_')) socket.destroy();
  });
}

import type { ErrorCode } from '../shared/errors.js';
import type { EdgeServices } from './edge-services.js';
import type { CompiledRoute, Runtime, UserEntry } from './runtime.js';
import type { Session } from './session-cache.js';
import type { Exchange, UpgradeContext } from './uws-io.js';

/**
 * The one object a request's pipeline reads and writes: what uWS gave (`ex`), the config
 * generation it started with (`rt`, kept even if a reload swaps the edge's runtime meanwhile),
 * the edge's services, and what the steps found out. A class, not an object literal, so that
 * every request has the same hidden class on the hot path.
 */
export class RequestContext {
  readonly ex: Exchange;
  readonly rt: Runtime;
  readonly services: EdgeServices;
  /**
   * The client address (client-address.ts): the socket peer, or what a trusted proxy says.
   * Set once by the dispatcher, before anything reads it.
   */
  clientIp: string;
  /** The X-Forwarded-For value sent upstream: the peer, or a trusted proxy's chain and the peer. */
  forwardedFor: string;
  /** The canonical path (canonical-path.ts); '' until computed. */
  path = '';
  /** The matched route, once matched. */
  route: CompiledRoute | undefined = undefined;
  /** The canonical path after the route prefix: '' or starting with '/'. */
  rest = '';
  /** The authenticated user, set by the credential step of a secure route. */
  user: UserEntry | undefined = undefined;
  /** The verified token of that user (its id, issue and expiry times). */
  session: Session | undefined = undefined;
  /** The session came from the `session_token` cookie (browser): CSRF checks apply to it. */
  viaCookie = false;
  /** Every `Authorization` header is dropped on the way upstream (it carried our token). */
  dropAllAuthorization = false;
  /** Values of `Authorization` headers that carry one of our tokens: dropped on the way upstream. */
  withheldAuthorization: string[] | undefined = undefined;
  /** The request body, read whole by a step that inspected it (filters): forwarded as is. */
  body: Buffer | undefined = undefined;
  /** Access log: the user (authenticated, or logging in successfully). */
  logUser: string | undefined = undefined;
  /** Access log: the route prefix or gateway endpoint that handled the request. */
  logRoute: string | undefined = undefined;
  /** Access log: the error code of the answer, if it was an error. */
  code: ErrorCode | undefined = undefined;
  /** performance.now() when the first upstream try was sent; 0: not measured (metrics off). */
  upstreamAt = 0;
  /** Ms from upstreamAt to the upstream's response head; -1: none came, or not measured. */
  upstreamMs = -1;
  /** Set for a WebSocket handshake (uWS's context, needed to accept it); undefined otherwise. */
  upgrade: UpgradeContext | undefined = undefined;

  constructor(ex: Exchange, rt: Runtime, services: EdgeServices) {
    this.ex = ex;
    this.rt = rt;
    this.services = services;
    this.clientIp = ex.ip;
    this.forwardedFor = ex.ip;
  }
}

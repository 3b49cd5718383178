import { STATUS_CODES } from 'node:http';
import { CodedError } from './coded-error.js';

/** A response header as `[name, value]`. */
export type ErrorHeader = readonly [name: string, value: string];

/** One entry of the catalog: what the client sees for a code. */
export interface ErrorSpec {
  readonly status: number;
  /** Safe to show to anyone: never a secret, an internal path or the client's own input. */
  readonly message: string;
  /** Headers every answer with this code carries (RFC 6750's WWW-Authenticate, Retry-After...). */
  readonly headers?: readonly ErrorHeader[];
  /** The connection is closed after the answer: the request's framing cannot be trusted. */
  readonly close?: boolean;
  /** The body's `error` when it is not the code (the original's 429 says `TooManyRequests`). */
  readonly error?: string;
}

/** RFC 6750 section 3: a 401 names the scheme; an invalid token says so. */
const BEARER_CHALLENGE: ErrorHeader = ['www-authenticate', 'Bearer realm="ProxyAuth"'];
const INVALID_TOKEN_CHALLENGE: ErrorHeader = [
  'www-authenticate',
  'Bearer realm="ProxyAuth", error="invalid_token"',
];

/**
 * The error catalog: every error a client can see has a stable `code` and an HTTP status.
 * Clients get `{ code, error, message }` where `message` is safe to show; causes go to the log.
 * test/shared-errors.test.ts keeps it consistent (each code used, each status a standard one).
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'Malformed request' },
  BAD_PATH: { status: 400, message: 'The request path cannot be canonicalized' },
  BAD_BODY: { status: 400, message: 'The request body is malformed' },
  BAD_FRAMING: {
    status: 400,
    message: 'The request body length is ambiguous (Content-Length / Transfer-Encoding)',
    close: true,
  },
  CREDENTIALS_AMBIGUOUS: {
    status: 400,
    message: 'More than one credential was sent (Authorization headers or session cookies)',
  },
  // One message for a wrong password, an unknown user and a wrong, missing or replayed TOTP
  // code: the answer never tells a guesser that the password was right.
  INVALID_CREDENTIALS: { status: 401, message: 'Invalid username, password or one-time code' },
  /** Only after a correct password: this user must use TOTP and has no secret yet. */
  TOTP_ENROLMENT_REQUIRED: {
    status: 403,
    message:
      'This account needs a one-time code and has no authenticator yet: enrol with POST /adm/auth/totp/get',
  },
  TOKEN_MISSING: {
    status: 401,
    message: 'A bearer token is required',
    headers: [BEARER_CHALLENGE],
  },
  TOKEN_INVALID: {
    status: 401,
    message: 'Invalid or expired token',
    headers: [INVALID_TOKEN_CHALLENGE],
  },
  TOKEN_REVOKED: {
    status: 401,
    message: 'This token was revoked',
    headers: [
      [
        'www-authenticate',
        'Bearer realm="ProxyAuth", error="invalid_token", error_description="revoked"',
      ],
    ],
  },
  ADMIN_TOKEN_MISSING: {
    status: 401,
    message: 'The admin API needs the X-Auth-Token header',
  },
  ADMIN_TOKEN_INVALID: { status: 401, message: 'Invalid admin token' },
  ADMIN_IP_NOT_ALLOWED: {
    status: 403,
    message: 'This client address may not use the admin API',
  },
  ADMIN_DISABLED: { status: 404, message: 'The admin API is off (token_admin is empty)' },
  NOT_FOUND: { status: 404, message: 'No such gateway endpoint' },
  REVOCATION_NOT_FOUND: { status: 404, message: 'No such revocation is in force' },
  USER_NOT_FOUND: { status: 404, message: 'No user of this name in config.json' },
  TOTP_NOT_FOUND: { status: 404, message: 'This user has no TOTP secret in the store' },
  LOGS_NOT_KEPT: {
    status: 404,
    message: 'This node keeps no log lines (log.type is not "http" at start)',
  },
  SESSION_NEEDS_HTTPS: {
    status: 403,
    message:
      'session cookies need HTTPS: serve the gateway with tls: true, or list the TLS proxy in front of it in trusted_proxies',
  },
  IP_NOT_ALLOWED: { status: 403, message: 'This client address may not log in as this user' },
  USER_NOT_ALLOWED: { status: 403, message: 'This user may not access this route' },
  FILTER_DENIED: { status: 403, message: "The request does not pass this route's filters" },
  CORS_ORIGIN_NOT_ALLOWED: {
    status: 403,
    message: 'Cross-origin requests from this origin are not allowed (cors_origins)',
  },
  CSRF_INVALID: {
    status: 403,
    message:
      'A valid CSRF token of this session is required (X-CSRF-Token header, or the csrf_token field of a form or JSON body)',
  },
  CSRF_BODY_UNREADABLE: {
    status: 403,
    message:
      'The CSRF token cannot be read from this body (too large, compressed, or not a form or JSON): send it in the X-CSRF-Token header',
  },
  CSRF_ORIGIN_MISMATCH: {
    status: 403,
    message:
      'Cross-origin request refused: its Origin (or Referer) is not this gateway or a cors_origins entry',
  },
  NO_ROUTE: { status: 404, message: 'No route matches this path' },
  FORWARD_AUTH_UNTRUSTED: {
    status: 403,
    message: 'Forward-auth answers only the proxies listed in trusted_proxies',
  },
  FORWARD_AUTH_BAD_REQUEST: {
    status: 400,
    message: 'The forward-auth request does not say unambiguously which request to judge',
  },
  FORWARD_AUTH_NEEDS_BODY: {
    status: 403,
    message: "This route's filters read request bodies, which forward-auth never sees",
  },
  REDIRECT_NOT_ALLOWED: {
    status: 400,
    message:
      'The redirect target (rd) is not a path of this site or a host of forward_auth.redirect_hosts',
  },
  WEBSOCKET_NOT_ALLOWED: {
    status: 403,
    message: 'WebSocket connections are not allowed on this route',
  },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed on this route' },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Unsupported Content-Type',
  },
  RATE_LIMITED: {
    status: 429,
    // The original's body, kept for its clients: {"code":429,"error":"TooManyRequests",...}.
    error: 'TooManyRequests',
    message: 'Too Many Requests',
  },
  LOGIN_LOCKED: {
    status: 429,
    message: 'Too many failed attempts: this account or address is locked out for a while',
  },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  INTERNAL: { status: 500, message: 'Internal error' },
  METHOD_NOT_SUPPORTED: { status: 501, message: 'This method is not supported by the gateway' },
  TRANSFER_CODING_NOT_SUPPORTED: {
    status: 501,
    message: 'Only the chunked transfer coding is supported',
    close: true,
  },
  UPSTREAM_UNREACHABLE: { status: 502, message: 'The upstream server could not be reached' },
  UPSTREAM_FAILED: { status: 502, message: 'The upstream server closed the connection' },
  UPSTREAM_TLS_FAILED: {
    status: 502,
    message:
      'The TLS handshake with the upstream server failed (certificate not trusted, or client certificate refused)',
  },
  UPSTREAM_PROXY_FAILED: {
    status: 502,
    message: "The route's forward proxy could not be reached or refused the request",
  },
  UPSTREAM_WEBSOCKET_REFUSED: {
    status: 502,
    message: 'The upstream server refused the WebSocket handshake',
  },
  OVERLOADED: {
    status: 503,
    message: 'The gateway is busy, retry later',
    headers: [['retry-after', '1']],
  },
  LIMITER_UNAVAILABLE: {
    status: 503,
    message: 'The rate limiter did not answer, retry later',
    headers: [['retry-after', '1']],
  },
  /** Every backend of a balanced route is known down; `after` is when the first may be back. */
  NO_HEALTHY_UPSTREAM: {
    status: 503,
    message: 'No backend of this route is available, retry later',
  },
  CSRF_UNAVAILABLE: {
    status: 503,
    message: 'The CSRF token could not be checked for reuse, retry later',
    headers: [['retry-after', '1']],
  },
  LOGS_UNAVAILABLE: {
    status: 503,
    message: 'The log lines could not be fetched, retry later',
    headers: [['retry-after', '1']],
  },
  /** `/readyz` on the main port (health_on_main_port): no detail, the port faces clients. */
  NOT_READY: { status: 503, message: 'This node is not ready to serve' },
  STORE_UNAVAILABLE: {
    status: 503,
    message: 'The gateway could not write to its store; nothing was changed',
  },
  UPSTREAM_TIMEOUT: { status: 504, message: 'The upstream server did not answer in time' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Options of a {@link GatewayError}. */
export interface GatewayErrorOptions {
  /** For the log only. */
  cause?: unknown;
  /** What was wrong with the client's own input, shown to it (never secrets or internals). */
  detail?: string;
  /** Headers computed for this answer (e.g. `Allow`), after the catalog's. */
  headers?: readonly ErrorHeader[];
  /** Whole seconds before a retry may succeed: sent as `Retry-After` and as the body's `after`. */
  after?: number;
  /**
   * For operators only (`proxyauth explain`): which rule refused, in config terms. Never sent
   * to the client: errorBody does not read it.
   */
  reason?: string;
}

/** A failure with a client-safe code and the HTTP status of the catalog. */
export class GatewayError extends CodedError<ErrorCode> {
  readonly status: number;
  readonly detail: string | undefined;
  /** The catalog's headers for this code, then the computed ones; undefined when none. */
  readonly headers: readonly ErrorHeader[] | undefined;
  readonly close: boolean;
  /** Seconds, for the body's `after` (and Retry-After); undefined when not given. */
  readonly after: number | undefined;
  /** See GatewayErrorOptions.reason: never part of an answer. */
  readonly reason: string | undefined;

  constructor(code: ErrorCode, options?: GatewayErrorOptions) {
    // Refusals are the common case on the hot path and their stack says nothing (the cause
    // keeps its own): capturing it measured as the costliest step of a 401.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    const spec: ErrorSpec = ERRORS[code];
    super(code, spec.message, options?.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.status = spec.status;
    this.detail = options?.detail;
    this.after = options?.after;
    this.reason = options?.reason;
    const computed =
      this.after === undefined
        ? options?.headers
        : [retryAfter(this.after), ...(options?.headers ?? [])];
    this.headers = computed === undefined ? spec.headers : [...(spec.headers ?? []), ...computed];
    this.close = spec.close === true;
  }
}

const refusals = new Map<ErrorCode, GatewayError>();

/**
 * The shared GatewayError for a code with no detail, cause or computed header: refusals on the
 * hot path throw it instead of building an Error each time (measured ~0.7 µs per construction).
 */
export function refusal(code: ErrorCode): GatewayError {
  let err = refusals.get(code);
  if (err === undefined) {
    err = new GatewayError(code);
    refusals.set(code, err);
  }
  return err;
}

/** `Retry-After` in whole seconds (RFC 9110 section 10.2.3), at least 1. */
export function retryAfter(seconds: number): ErrorHeader {
  return ['retry-after', String(Math.max(1, Math.ceil(seconds)))];
}

const statusLines = new Map<number, string>();

/**
 * `"404 Not Found"`, the form uWS's writeStatus wants, with the reason phrase of RFC 9110's
 * table (Node's STATUS_CODES); a status it does not know keeps an empty phrase.
 */
export function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? ''}`;
    statusLines.set(status, line);
  }
  return line;
}

const bodies = new Map<ErrorCode, string>();

/**
 * The JSON body for an error code, `{code, error, message}` plus `after` (seconds) when given;
 * serialized once per code unless it carries a detail or an `after`.
 */
export function errorBody(code: ErrorCode, detail?: string, after?: number): string {
  if (detail !== undefined || after !== undefined) {
    const spec: ErrorSpec = ERRORS[code];
    const message = detail === undefined ? spec.message : `${spec.message}: ${detail}`;
    return JSON.stringify({ code: spec.status, error: spec.error ?? code, message, after });
  }
  let body = bodies.get(code);
  if (body === undefined) {
    const spec: ErrorSpec = ERRORS[code];
    body = JSON.stringify({ code: spec.status, error: spec.error ?? code, message: spec.message });
    bodies.set(code, body);
  }
  return body;
}

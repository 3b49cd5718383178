import { CodedError } from './coded-error.js';

/**
 * The error catalog: every error a client can see has a stable `code` and an HTTP status.
 * Clients get `{ code, error, message }` where `message` is safe to show; causes go to the log.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'Malformed request' },
  BAD_PATH: { status: 400, message: 'The request path cannot be canonicalized' },
  BAD_BODY: { status: 400, message: 'The request body is malformed' },
  INVALID_CREDENTIALS: { status: 401, message: 'Invalid username or password' },
  TOKEN_MISSING: { status: 401, message: 'A bearer token is required' },
  TOKEN_INVALID: { status: 401, message: 'Invalid or expired token' },
  IP_NOT_ALLOWED: { status: 403, message: 'This client address may not log in as this user' },
  USER_NOT_ALLOWED: { status: 403, message: 'This user may not access this route' },
  NO_ROUTE: { status: 404, message: 'No route matches this path' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed on this route' },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Use application/json or application/x-www-form-urlencoded',
  },
  INTERNAL: { status: 500, message: 'Internal error' },
  METHOD_NOT_SUPPORTED: { status: 501, message: 'This method is not supported by the gateway' },
  UPSTREAM_UNREACHABLE: { status: 502, message: 'The upstream server could not be reached' },
  UPSTREAM_FAILED: { status: 502, message: 'The upstream server closed the connection' },
  OVERLOADED: { status: 503, message: 'The gateway is busy, retry later' },
  SHUTTING_DOWN: { status: 503, message: 'The gateway is shutting down' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'The upstream server did not answer in time' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * A failure with a client-safe code. `detail` says what was wrong with the client's own input
 * and is shown to it (never secrets or internals); `cause` is for the log only.
 */
export class GatewayError extends CodedError<ErrorCode> {
  readonly status: number;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, options?: { cause?: unknown; detail?: string }) {
    // Refusals are the common case on the hot path and their stack says nothing (the cause
    // keeps its own): capturing it measured as the costliest step of a 401.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(code, ERRORS[code].message, options);
    Error.stackTraceLimit = limit;
    this.status = ERRORS[code].status;
    this.detail = options?.detail;
  }
}

/** `"404 Not Found"`, the form uWS's writeStatus wants. */
export function statusLine(status: number): string {
  return `${status} ${REASONS[status] ?? 'Error'}`;
}

const bodies = new Map<ErrorCode, string>();

/** The JSON body for an error code, serialized once per code unless it carries a detail. */
export function errorBody(code: ErrorCode, detail?: string): string {
  if (detail !== undefined) {
    const { status, message } = ERRORS[code];
    return JSON.stringify({ code: status, error: code, message: `${message}: ${detail}` });
  }
  let body = bodies.get(code);
  if (body === undefined) {
    const { status, message } = ERRORS[code];
    body = JSON.stringify({ code: status, error: code, message });
    bodies.set(code, body);
  }
  return body;
}

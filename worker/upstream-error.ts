import { GatewayError } from '../shared/errors.js';

/** Maps undici and socket failures to the client-facing codes (502 unreachable, 504 timeout). */
export function upstreamError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new GatewayError('UPSTREAM_TIMEOUT', { cause: err });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new GatewayError('UPSTREAM_UNREACHABLE', { cause: err });
    default:
      return new GatewayError('UPSTREAM_FAILED', { cause: err });
  }
}

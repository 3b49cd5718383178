import { GatewayError } from '../shared/errors.js';

/*
 * OpenSSL's certificate verification results as Node reports them (`err.code`, see
 * X509_verify_cert_error_string): the upstream's certificate was not trusted.
 */
const CERT_VERIFY = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/**
 * Maps undici and socket failures to the client-facing codes: 502 `UPSTREAM_UNREACHABLE`, 502
 * `UPSTREAM_TLS_FAILED` (the upstream's certificate was not trusted, its name did not match, or
 * the handshake failed, e.g. the upstream refused our client certificate or asked for one we
 * do not have: OpenSSL's `ERR_SSL_*` alerts), 504 `UPSTREAM_TIMEOUT`, else 502
 * `UPSTREAM_FAILED`. Gateway errors (a forward proxy's refusal) pass unchanged.
 */
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
      if (code !== undefined && isTlsFailure(code)) {
        return new GatewayError('UPSTREAM_TLS_FAILED', { cause: err });
      }
      return new GatewayError('UPSTREAM_FAILED', { cause: err });
  }
}

function isTlsFailure(code: string): boolean {
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || CERT_VERIFY.has(code);
}

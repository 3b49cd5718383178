import { GatewayError } from '../shared/errors.js';

export interface Credentials {
  username: string;
  password: string;
  /** `totp_code`, when given (worker/totp-login.ts decides whether it is needed). */
  totpCode: string | undefined;
}

export type BodyKind = 'json' | 'form';

/** `application/json` or `application/x-www-form-urlencoded` (parameters ignored), else null. */
export function bodyKind(contentType: string | undefined): BodyKind | null {
  if (contentType === undefined) return null;
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === 'application/json') return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  return null;
}

const MAX_FIELD = 1024;

function field(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FIELD) {
    throw new GatewayError('BAD_BODY', {
      detail: `${name} must be a non-empty string of at most ${MAX_FIELD} characters`,
    });
  }
  return value;
}

const MAX_CODE = 16;

function optionalCode(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || text.length > MAX_CODE) {
    throw new GatewayError('BAD_BODY', {
      detail: `totp_code must be a string of at most ${MAX_CODE} characters`,
    });
  }
  return text === '' ? undefined : text;
}

/**
 * Username, password and the optional `totp_code` from a login body; BAD_BODY with the reason as
 * detail otherwise. A JSON `totp_code` may be a string or a number (some clients send digits as
 * a number; a leading zero is then lost, and the code does not match).
 */
export function parseCredentials(body: Buffer, kind: BodyKind): Credentials {
  let fields: Record<string, unknown>;
  if (kind === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      // V8's message quotes the input, which may hold the password: say only what is wrong.
      throw new GatewayError('BAD_BODY', { detail: 'the body is not valid JSON' });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new GatewayError('BAD_BODY', { detail: 'the JSON body must be an object' });
    }
    fields = parsed as Record<string, unknown>;
  } else {
    fields = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  }
  return {
    username: field(fields.username, 'username'),
    password: field(fields.password, 'password'),
    totpCode: optionalCode(fields.totp_code),
  };
}

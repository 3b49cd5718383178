/*
 * The CSRF token carried in a request body (README "CSRF"), for requests without an
 * X-CSRF-Token header: the form field `csrf_token` of an application/x-www-form-urlencoded or
 * multipart/form-data body, or the top-level field `csrf_token` of a JSON object
 * (application/json, application/*+json). The parsers are the platform's: URLSearchParams (the
 * WHATWG urlencoded parser) and the Fetch API's multipart parser (Response.formData()).
 */

import { topLevelKeys } from './steps/filters.js';

/** The token found in a body, or why none could be taken from it. */
export type BodyToken =
  | { readonly kind: 'token'; readonly token: string }
  /** The body has no `csrf_token` field. */
  | { readonly kind: 'missing' }
  /** Fields that cannot be a token: several different values, a file, a non-string JSON value. */
  | { readonly kind: 'malformed'; readonly reason: string }
  /** The body cannot be read as its media type says (or that type carries no fields). */
  | { readonly kind: 'unreadable'; readonly reason: string };

/** How a body is read, from its Content-Type; undefined for a type that has no fields. */
export type BodyFormat = 'urlencoded' | 'multipart' | 'json';

/** A JSON media type (RFC 8259 section 11, RFC 6839 `+json`), parameters allowed. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/;

/** The format of a Content-Type value (parameters ignored, case-insensitive). */
export function bodyFormat(contentType: string): BodyFormat | undefined {
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return 'urlencoded';
  if (type === 'multipart/form-data') return 'multipart';
  return JSON_TYPE.test(type) ? 'json' : undefined;
}

const FIELD = 'csrf_token';

/** Several values of the field are refused unless they are all the same. */
function single(values: readonly (string | File)[]): BodyToken {
  if (values.length === 0) return { kind: 'missing' };
  const first = values[0];
  if (typeof first !== 'string') return { kind: 'malformed', reason: 'csrf_token is a file' };
  for (const v of values) {
    if (v !== first) return { kind: 'malformed', reason: 'several different csrf_token values' };
  }
  return { kind: 'token', token: first };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The token of `body` in `format` (`contentType` is the request's whole Content-Type value: the
 * multipart boundary is a parameter). Resolves, never rejects, for any body.
 */
export async function bodyToken(
  body: Buffer,
  format: BodyFormat,
  contentType: string,
): Promise<BodyToken> {
  if (format === 'urlencoded') {
    return single(new URLSearchParams(body.toString('utf8')).getAll(FIELD));
  }
  if (format === 'multipart') {
    let form: FormData;
    try {
      form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    } catch {
      return { kind: 'unreadable', reason: 'the multipart body does not parse' };
    }
    return single(form.getAll(FIELD));
  }
  return jsonToken(body);
}

function jsonToken(body: Buffer): BodyToken {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(body);
    value = JSON.parse(text);
  } catch {
    return { kind: 'unreadable', reason: 'the JSON body is not UTF-8 JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'missing' };
  }
  if (!Object.hasOwn(value, FIELD)) return { kind: 'missing' };
  // JSON.parse keeps the last of repeated keys, and backends disagree on which one counts: a
  // repeated csrf_token is refused. Only a body that could repeat it (the key spelled out twice,
  // or escapes that could spell it) pays for the scan of its keys.
  if (
    (text.includes('\\') || text.indexOf(`"${FIELD}"`) !== text.lastIndexOf(`"${FIELD}"`)) &&
    topLevelKeys(text).filter((k) => k === FIELD).length > 1
  ) {
    return { kind: 'malformed', reason: 'csrf_token repeated in the JSON object' };
  }
  const token = (value as Record<string, unknown>)[FIELD];
  return typeof token === 'string'
    ? { kind: 'token', token }
    : { kind: 'malformed', reason: 'csrf_token is not a JSON string' };
}

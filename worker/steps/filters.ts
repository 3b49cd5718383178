/*
 * routes.yml `filters`: a per-route ACL over the request (README "Filters" has the rules).
 *
 * A request matching any deny condition is refused; when `allow` is not empty every allow
 * condition must match; when it is empty `default_allow` decides. Every refusal is 403
 * FILTER_DENIED and the upstream is never called. Evaluation fails closed: a query that cannot
 * be decoded, a body that is too large (413), not UTF-8, not JSON, or sent with a
 * Content-Encoding refuses the request.
 *
 * Two steps: the conditions on the method, path, headers and query run before the credential
 * check (they read nothing the client has not already sent, and a refusal then costs no token
 * check and spends no rate budget); the body conditions run after the credential, user list and
 * rate limit, so only a request that passed those makes the gateway buffer a body. A route
 * without body conditions gets no body step and its body keeps streaming.
 */

import type { CompiledFilter, RouteConfig } from '../../conf/routes-schema.js';
import { GatewayError, refusal } from '../../shared/errors.js';
import { foldPath, mayFold } from '../../shared/path-fold.js';
import type { RouteFeature } from '../pipeline.js';
import type { RequestContext } from '../request-context.js';
import { readBody, singleHeader } from '../uws-io.js';

type Filters = NonNullable<RouteConfig['filters']>;
type BodyFilter = Extract<CompiledFilter, { field: 'body_raw' | 'body_json' }>;
type HeadFilter = Exclude<CompiledFilter, BodyFilter>;

function isBodyFilter(f: CompiledFilter): f is BodyFilter {
  return f.field === 'body_raw' || f.field === 'body_json';
}

function denied(detail?: string): GatewayError {
  return detail === undefined
    ? refusal('FILTER_DENIED')
    : new GatewayError('FILTER_DENIED', { detail });
}

/**
 * Whether a condition on the request head matches. `all`: an allow condition, which needs at
 * least one field the name picks and every such field's value to match (so a repeated header
 * or query parameter cannot carry one good and one bad value past it); otherwise a deny
 * condition, which matches when any such field's value matches.
 */
export function headMatches(f: HeadFilter, ctx: RequestContext, all: boolean): boolean {
  switch (f.field) {
    case 'method':
      return f.pattern.test(ctx.ex.method);
    case 'path':
      // A deny also fires on the reading of lenient backends (letter case and trailing dots
      // ignored, shared/path-fold.ts): `/open/PRIVATE` is `/open/private` to them.
      if (all) return f.pattern.test(ctx.path);
      return f.pattern.test(ctx.path) || (mayFold(ctx.path) && f.pattern.test(foldPath(ctx.path)));
    case 'header': {
      const h = ctx.ex.headers;
      let seen = false;
      for (let i = 0; i < h.length; i += 2) {
        if (!f.name.test(h[i]!)) continue;
        seen = true;
        if (f.pattern.test(h[i + 1]!) !== all) return !all;
      }
      return all && seen;
    }
    case 'query': {
      let seen = false;
      for (const [name, value] of queryParams(ctx.ex.query)) {
        if (!f.name.test(name)) continue;
        seen = true;
        if (f.pattern.test(value) !== all) return !all;
      }
      return all && seen;
    }
    default:
      return false;
  }
}

/**
 * The query's parameters, names and values percent-decoded as UTF-8 with `+` read as a space
 * (application/x-www-form-urlencoded, as URLSearchParams and most frameworks read them). A
 * parameter without `=` has the value ''. Refuses (FILTER_DENIED) an escape that does not
 * decode: which bytes a backend would see is then a guess.
 */
export function queryParams(query: string): [string, string][] {
  const out: [string, string][] = [];
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    out.push([decodeQueryPart(name), decodeQueryPart(value)]);
  }
  return out;
}

function decodeQueryPart(text: string): string {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text;
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    throw denied('the query string holds a percent-escape that is not UTF-8');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** What the body conditions see of a body: its text, and its top-level JSON fields if needed. */
export interface BodyView {
  readonly text: string;
  /** Top-level fields as strings (see jsonFields); undefined when no condition needs them. */
  readonly json: Map<string, string> | undefined;
}

/**
 * The body as the conditions read it: UTF-8 text (a byte-order mark or invalid UTF-8 refuses),
 * and with `needJson` its top-level JSON fields. An empty body has no fields; a body that is
 * not JSON refuses.
 */
export function bodyView(body: Buffer, needJson: boolean): BodyView {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw denied('the body is not UTF-8');
  }
  if (text.charCodeAt(0) === 0xfeff) throw denied('the body starts with a byte-order mark');
  if (!needJson) return { text, json: undefined };
  return { text, json: text === '' ? new Map() : jsonFields(text) };
}

/**
 * The top-level fields of a JSON text, each value as a string: strings as they are, numbers as
 * JavaScript writes them (`1.0` is `1`, `1e3` is `1000`), `true`, `false`, `null`, objects and
 * arrays as compact JSON. A text that is not JSON, or has a top-level key twice (backends
 * disagree on which one counts), refuses; a JSON value that is not an object has no fields.
 */
export function jsonFields(text: string): Map<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // A SyntaxError, or a RangeError on nesting deeper than the parser's stack.
    throw denied('the body is not JSON');
  }
  const fields = new Map<string, string>();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fields;
  const keys = topLevelKeys(text);
  // Keys that differ only in letter case are one key to some backends (Go's encoding/json
  // takes the last case-insensitive match): `role` and `ROLE` would be read as one field.
  if (new Set(keys.map((k) => k.toLowerCase())).size !== keys.length) {
    throw denied('the JSON body repeats a top-level key (letter case ignored)');
  }
  try {
    for (const [k, v] of Object.entries(value)) {
      fields.set(k, typeof v === 'string' ? v : JSON.stringify(v));
    }
  } catch {
    throw denied('the JSON body is nested too deeply');
  }
  return fields;
}

/** The keys of a valid JSON object text at depth 1, in order, duplicates kept. */
export function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) {
        const raw = text.slice(i + 1, end);
        keys.push(raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw);
      }
      expectKey = false;
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      expectKey = c === 0x7b && depth === 1;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/** Index of the quote closing the JSON string that opens at `start` (the text is valid JSON). */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    // A quote preceded by an odd run of backslashes is escaped.
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/** Whether a body condition matches (missing JSON key: no match). */
export function bodyMatches(f: BodyFilter, view: BodyView): boolean {
  if (f.field === 'body_raw') return f.pattern.test(view.text);
  const value = view.json?.get(f.key);
  return value !== undefined && f.pattern.test(value);
}

/**
 * A condition with its refusal, built at load: FILTER_DENIED with a `reason` naming the
 * condition as routes.yml lists it (`filters.deny[0]`). The reason is for `proxyauth explain`
 * only: the client's answer is the plain FILTER_DENIED (errorBody never reads it), so the
 * route's rules are not told to whoever probes them.
 */
interface Condition<F extends CompiledFilter> {
  readonly f: F;
  readonly refusal: GatewayError;
}

/** The compiled form of a route's filters, split by what they read. */
interface Plan {
  /** Conditions on the method (at most 32 chars, request-checks.ts): run before the credential. */
  readonly methodAllow: readonly Condition<HeadFilter>[];
  readonly methodDeny: readonly Condition<HeadFilter>[];
  /** Conditions on the path, headers and query (client-sized): after the rate limit. */
  readonly headAllow: readonly Condition<HeadFilter>[];
  readonly headDeny: readonly Condition<HeadFilter>[];
  readonly bodyAllow: readonly Condition<BodyFilter>[];
  readonly bodyDeny: readonly Condition<BodyFilter>[];
  /** Allow is empty and default_allow false: everything is refused. */
  readonly refuseAll: boolean;
  readonly maxBody: number;
  readonly needJson: boolean;
}

/** What a condition reads, for its reason: `header`, `query`, `body_json key "status"`. */
function describeField(f: CompiledFilter): string {
  return f.field === 'body_json' ? `body_json key ${JSON.stringify(f.key)}` : f.field;
}

function conditions<F extends CompiledFilter>(
  list: 'allow' | 'deny',
  all: readonly CompiledFilter[],
  pick: (c: CompiledFilter) => c is F,
): Condition<F>[] {
  const out: Condition<F>[] = [];
  all.forEach((f, i) => {
    if (!pick(f)) return;
    const verdict = list === 'deny' ? 'matched' : 'did not match (or the field is absent)';
    const reason = `filters.${list}[${i}] (${describeField(f)}) ${verdict}`;
    out.push({ f, refusal: new GatewayError('FILTER_DENIED', { reason }) });
  });
  return out;
}

/** The refusal of a route whose `allow` is empty with `default_allow: false`. */
const REFUSE_ALL = new GatewayError('FILTER_DENIED', {
  reason: 'filters.allow is empty and default_allow is false: every request is refused',
});

function plan(f: Filters): Plan {
  const head = (c: CompiledFilter): c is HeadFilter => !isBodyFilter(c) && c.field !== 'method';
  const method = (c: CompiledFilter): c is HeadFilter => c.field === 'method';
  return {
    methodAllow: conditions('allow', f.allow, method),
    methodDeny: conditions('deny', f.deny, method),
    headAllow: conditions('allow', f.allow, head),
    headDeny: conditions('deny', f.deny, head),
    bodyAllow: conditions('allow', f.allow, isBodyFilter),
    bodyDeny: conditions('deny', f.deny, isBodyFilter),
    refuseAll: f.allow.length === 0 && !f.default_allow,
    maxBody: f.max_body_bytes,
    needJson: [...f.allow, ...f.deny].some((c) => c.field === 'body_json'),
  };
}

/** A head step: deny conditions, then allow conditions (`refuseAll`: everything refused). */
function headStep(
  allow: readonly Condition<HeadFilter>[],
  deny: readonly Condition<HeadFilter>[],
  refuseAll: boolean,
) {
  return (ctx: RequestContext): void => {
    if (refuseAll) throw REFUSE_ALL;
    for (const c of deny) if (headMatches(c.f, ctx, false)) throw c.refusal;
    for (const c of allow) if (!headMatches(c.f, ctx, true)) throw c.refusal;
  };
}

/** A JSON media type (RFC 8259 section 11, RFC 6839 `+json`), parameters allowed. */
const JSON_TYPE = /^\s*application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

/** `Content-Encoding` values that leave the bytes as they are. */
const IDENTITY = /^\s*(?:identity)?\s*$/i;

/**
 * The body step: buffers the body (at most max_body_bytes, else 413 BODY_TOO_LARGE), checks
 * the body conditions, and leaves the bytes in `ctx.body` for the handler to forward unchanged.
 */
function bodyStep(p: Plan) {
  return (ctx: RequestContext): Promise<void> => {
    const ex = ctx.ex;
    for (let i = 0; i < ex.headers.length; i += 2) {
      if (ex.headers[i] === 'content-encoding' && !IDENTITY.test(ex.headers[i + 1]!)) {
        throw denied('a body with a Content-Encoding cannot be inspected');
      }
    }
    // A JSON text can also be a valid form or other body: a backend reading it as its
    // Content-Type says would see fields the JSON conditions never saw.
    if (p.needJson && ex.hasBody && !JSON_TYPE.test(singleHeader(ex, 'content-type') ?? '')) {
      throw denied('body_json conditions need a JSON body (Content-Type application/json)');
    }
    // Read on the next microtask: runSteps first has the body held (pipeline.ts), and
    // readBody then takes over the chunks that arrived meanwhile. A body the CSRF step already
    // read (with the same bound) is not read twice.
    return Promise.resolve()
      .then(() => ctx.body ?? readBody(ex, p.maxBody))
      .then((body) => {
        const view = bodyView(body, p.needJson);
        for (const c of p.bodyDeny) if (bodyMatches(c.f, view)) throw c.refusal;
        for (const c of p.bodyAllow) if (!bodyMatches(c.f, view)) throw c.refusal;
        ctx.body = body;
      });
  };
}

/**
 * `filters` on the method (and a route that refuses everything): before the credential step,
 * where a refusal costs no token check. Only the method is matched there: it is at most 32
 * chars, so no pattern can cost much on it. No such conditions: no step.
 */
export const methodFilters: RouteFeature = {
  name: 'method-filters',
  compile(build) {
    const f = build.route.filters;
    if (f === undefined) return;
    const p = plan(f);
    if (p.refuseAll || p.methodAllow.length > 0 || p.methodDeny.length > 0) {
      build.step(headStep(p.methodAllow, p.methodDeny, p.refuseAll));
    }
  },
};

/**
 * `filters` on the path, headers and query: after the credential, user list and rate limit.
 * These inputs are as long as the client makes them (up to max_header_bytes), and even in
 * linear time a large pattern over 16 KiB costs milliseconds (measured: up to 1.7 s for
 * `^(?:[A-Za-z0-9_-]{1,64}\.?)*$`): an anonymous client must not be able to spend them, and
 * an authenticated one spends them within its rate limit.
 */
export const requestFilters: RouteFeature = {
  name: 'request-filters',
  compile(build) {
    const f = build.route.filters;
    if (f === undefined) return;
    const p = plan(f);
    if (!p.refuseAll && (p.headAllow.length > 0 || p.headDeny.length > 0)) {
      build.step(headStep(p.headAllow, p.headDeny, false));
    }
  },
};

/** `filters` on the body: after the credential, user list and rate limit. */
export const bodyFilters: RouteFeature = {
  name: 'body-filters',
  compile(build) {
    const f = build.route.filters;
    if (f === undefined) return;
    const p = plan(f);
    if (!p.refuseAll && (p.bodyAllow.length > 0 || p.bodyDeny.length > 0)) {
      build.step(bodyStep(p));
    }
  },
};

/*
 * What `proxyauth explain` asks its worker process (worker/explain-main.ts, forked by the CLI:
 * the supervisor never imports the edge's code). One message, sent over the child's IPC channel
 * rather than its argv, so that a token given with --token never shows in the process list.
 */

/** The request to explain, as the command line gave it (parsed, not yet checked by the edge's code). */
export interface ExplainSpec {
  readonly configDir: string;
  readonly dataDir: string;
  /** As typed; the edge upper-cases it (uws-io.ts). */
  readonly method: string;
  /** The request target: path, then `?query` when there is one, as sent on the request line. */
  readonly target: string;
  /** Header lines in order, names as typed (lower-cased by the synthetic request, as uWS does). */
  readonly headers: readonly (readonly [name: string, value: string])[];
  /** The body's bytes, base64; undefined: no body. */
  readonly body: string | undefined;
  /** `--user NAME`: a token minted for NAME; `--token`: the given one; undefined: none. */
  readonly credential:
    | { readonly kind: 'user'; readonly user: string }
    | { readonly kind: 'token'; readonly token: string }
    | undefined;
  /** `--cookie`: the credential goes in the `session_token` cookie instead of a Bearer header. */
  readonly viaCookie: boolean;
  /** The socket peer's address (`--ip`). */
  readonly ip: string;
  /** `--json`: one JSON document instead of the text report. */
  readonly json: boolean;
}

/** Whether `value` is an ExplainSpec message (the worker checks what it was sent). */
export function isExplainSpec(value: unknown): value is ExplainSpec {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const strings = ['configDir', 'dataDir', 'method', 'target', 'ip'];
  if (!strings.every((k) => typeof v[k] === 'string')) return false;
  if (v.body !== undefined && typeof v.body !== 'string') return false;
  if (typeof v.json !== 'boolean' || typeof v.viaCookie !== 'boolean') return false;
  if (!Array.isArray(v.headers)) return false;
  const pairs = v.headers.every(
    (h: unknown) =>
      Array.isArray(h) && h.length === 2 && h.every((x: unknown) => typeof x === 'string'),
  );
  if (!pairs) return false;
  const c = v.credential as Record<string, unknown> | undefined;
  if (c === undefined) return true;
  if (c.kind === 'user') return typeof c.user === 'string';
  return c.kind === 'token' && typeof c.token === 'string';
}

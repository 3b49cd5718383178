import { z } from 'zod';
import { LATENCY_BUCKETS, MAX_REPORT_SERIES, type MetricsReport } from './metrics-report.js';
import type { SealedTotp } from './totp-seal.js';

/**
 * The messages between the supervisor and its edges (child_process IPC, JSON-serialized), one
 * union per direction. Both ends validate what they receive with the schemas below: a message
 * crosses a process boundary, and one that does not parse is logged and dropped, never acted on.
 *
 * A config snapshot travels raw and is re-validated by the edge with the same parser, so
 * compiled values (RegExp, matchers) never need to cross the process boundary.
 *
 * Adding a message: add it to the union and to its schema (the `satisfies` checks below keep
 * them in step), then the compiler points at every receiver's exhaustive switch.
 */
export interface ConfigSnapshot {
  generation: number;
  configDir: string;
  dataDir: string;
  files: { config: string; routes: string };
  raw: { config: unknown; routes: unknown };
  /** The routes' `cert` and `ca` files as the supervisor checked them: base64 by absolute path. */
  routeFiles?: Readonly<Record<string, string>>;
  /** config.json's `login_page` as the supervisor checked it (conf/login-page.ts). */
  loginPage?: string;
  /**
   * The token key ring in force (docs/token-format.md, Rotation): key material, as config.json's
   * `secret` is. `active` signs new tokens; every key, the active one included, verifies the
   * tokens carrying its key id. The supervisor builds it from config.json and the store.
   */
  keyRing: KeyRingSnapshot;
}

/** Key material of the ring, as an edge receives it. */
export interface KeyRingSnapshot {
  active: string;
  verifyOnly: string[];
}

/** The certificate pair an edge loads: validated copies owned by the supervisor. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** SHA-256 (hex) over both files' bytes, for logs and for the plan's process key. */
  fingerprint: string;
}

/**
 * A change to the node's revocations: written to the store by the supervisor, then applied by
 * every edge to its RAM set. Times are unix seconds.
 */
export type RevocationChange =
  /** Refuse the token with this id while `now < until`. */
  | { op: 'revoke-token'; tokenId: string; until: number; revokedAt: number }
  /** Refuse every token of `user` issued at or before `notBefore`, kept until `until`. */
  | { op: 'revoke-user'; user: string; notBefore: number; until: number; revokedAt: number }
  | { op: 'lift-token'; tokenId: string }
  | { op: 'lift-user'; user: string };

/**
 * A change to a user's TOTP records, carried out by the supervisor in one store transaction.
 * Secrets travel sealed (shared/totp-seal.ts): the edge encrypts before asking.
 */
export type TotpChange =
  /** Store `sealed` unless the user already has a secret (then `done` is false). */
  | { op: 'enrol'; user: string; sealed: SealedTotp }
  /** Replace the user's secret (or create it), dropping the old one's last step. */
  | { op: 'reset'; user: string; sealed: SealedTotp }
  /** Remove the user's secret; `done` is false when there was none. */
  | { op: 'remove'; user: string }
  /**
   * Record the smallest of `steps` greater than the last accepted step of the user's secret
   * `secretId` (its nonce, or '' for config.json's); `done` is false for a replay, or when
   * `secretId` is no longer the secret in force.
   */
  | { op: 'consume'; user: string; secretId: string; steps: number[] };

/** An issued token as the store records it (unix seconds). */
export interface IssuedToken {
  tokenId: string;
  user: string;
  iat: number;
  exp: number;
}

/** Uses of one token counted by an edge since its last flush. */
export interface TokenUseReport extends IssuedToken {
  count: number;
}

/**
 * One client's request for rate-limit tokens (shared/gcra.ts). `key` names the client under
 * one policy (worker/rate-limiter.ts builds it from the policy's parameters and the client
 * key); the parameters travel with it so that the supervisor needs no route config.
 */
export interface RateTakeItem {
  key: string;
  rps: number;
  burst: number;
  blockMs: number;
  /** Requests waiting on the edge for this key. */
  want: number;
}

/** The supervisor's decision for one RateTakeItem (ms are durations, not clock times). */
export interface RateTakeResult {
  /** Tokens granted: at least `want` when the bucket has them, possibly more (a lease). */
  granted: number;
  /** When nothing is granted: ms until a request may succeed. */
  refuseMs: number;
  /** Tokens left in the bucket after this grant. */
  remaining: number;
  /** Refused only because another edge holds the tokens: wait `refuseMs` and ask again. */
  held: boolean;
}

/** What an edge did with leased tokens since its last report: spent, or given back unspent. */
export interface RateSettleItem {
  key: string;
  spent: number;
  unspent: number;
  /** Ms since the newest of the spent tokens was spent (0 when none was). */
  ageMs: number;
}

/** Supervisor → edge requests: each carries an `id`, and the edge answers it exactly once. */
export type EdgeRequest =
  /** Build the runtime and the uWS app for `snapshot`; do not listen yet. */
  | { type: 'start'; id: number; snapshot: ConfigSnapshot; tls: TlsFiles | null }
  /** Listen on host:port (port 0: any free port). Replies with the port actually bound. */
  | { type: 'listen'; id: number; host: string; port: number }
  /** Swap the runtime for a new generation; requests in flight keep the old one. */
  | { type: 'apply-config'; id: number; snapshot: ConfigSnapshot }
  /** Apply revocation changes already written to the store (answered at once, not queued). */
  | { type: 'revocations'; id: number; changes: RevocationChange[] };

/** Supervisor → edge messages that expect no reply. */
export type EdgeNotice =
  /** Stop accepting, finish what is in flight (at most `timeoutMs`), then exit 0. */
  | { type: 'drain'; timeoutMs: number }
  /** A client went over its limit with a block_delay: refuse it for `ms`, drop its lease. */
  | { type: 'rate-block'; key: string; ms: number }
  /** The node's log level changed (SIGUSR1 or a reload): apply it. */
  | { type: 'log-level'; level: 'error' | 'warn' | 'info' | 'debug' };

/** Supervisor → edge answers to an edge's ask, naming its id. */
export type SupervisorAnswer =
  | { type: 'answer'; id: number; value: unknown }
  | { type: 'answer-error'; id: number; code: string; reason: string };

export type SupervisorMessage = EdgeRequest | EdgeNotice | SupervisorAnswer;

export type EdgeRequestType = EdgeRequest['type'];

/** A request as the caller writes it: the channel assigns the id. */
export type EdgeRequestBody<T extends EdgeRequestType> = { type: T } & Omit<
  Extract<EdgeRequest, { type: T }>,
  'id' | 'type'
>;

/** What a successful reply carries, per request type. */
export interface ReplyValues {
  start: { generation: number };
  listen: { port: number };
  'apply-config': { generation: number };
  revocations: { applied: number };
}

/** Edge → supervisor answers to a request, naming its id. */
export type EdgeReply =
  | { type: 'reply'; id: number; value: unknown }
  /** The request failed; `code` is the edge's CodedError code (or `EDGE_ERROR`). */
  | { type: 'reply-error'; id: number; code: string; reason: string };

/** Edge → supervisor messages sent on the edge's own initiative. */
export type EdgeEvent =
  /** The edge is about to exit because of an error it cannot recover from. */
  | { type: 'fatal'; reason: string }
  /** A login issued this token: the supervisor records it in the store. */
  | { type: 'token-issued'; token: IssuedToken }
  /** Use counts since the last flush (`stats: true`): added to the store. */
  | { type: 'token-uses'; uses: TokenUseReport[] }
  /** Leased rate-limit tokens spent, or given back unspent (lease expired or dropped). */
  | { type: 'rate-settle'; items: RateSettleItem[] }
  /** The outcome of a login attempt the supervisor admitted (`login-attempt`). */
  | { type: 'login-result'; ticket: number; outcome: 'success' | 'failure' | 'aborted' }
  /** Metrics counted since the last report (config `metrics`): added to the node's registry. */
  | { type: 'metrics'; report: MetricsReport };

/**
 * Edge → supervisor requests (asks): each carries an `id`, and the supervisor answers it
 * exactly once with `answer` or `answer-error`.
 */
export type EdgeAsk =
  /** Write a revocation change to the store, apply it on every edge, then answer. */
  | { type: 'change-revocations'; id: number; change: RevocationChange }
  /** Rate-limit tokens for the clients of requests waiting on the edge. */
  | { type: 'rate-take'; id: number; items: RateTakeItem[] }
  /**
   * May this password (user set) or admin token (user null) be checked for a client at `ip`
   * (its lockout key)? Answered once neither the user nor the address is locked out and the
   * attempt fits under max_failures; the edge then reports `login-result` with the ticket.
   */
  | { type: 'login-attempt'; id: number; user: string | null; ip: string }
  /**
   * Spend a verified CSRF token (csrf_single_use): its nonce is recorded in the store until
   * `exp` (unix seconds) unless it was spent before, atomically; the answer says which.
   */
  | { type: 'csrf-spend'; id: number; nonce: string; exp: number }
  /** Carry out a TOTP change in the store, then answer. */
  | { type: 'totp-change'; id: number; change: TotpChange }
  /** The newest `limit` lines of the node's log ring (`log.type: "http"`, GET /adm/logs). */
  | { type: 'recent-logs'; id: number; limit: number }
  /** The node's readiness, the verdict of the metrics listener's `/readyz` (health_on_main_port). */
  | { type: 'readiness'; id: number };

export type EdgeAskType = EdgeAsk['type'];

/** An ask as the caller writes it: the link assigns the id. */
export type EdgeAskBody<T extends EdgeAskType> = { type: T } & Omit<
  Extract<EdgeAsk, { type: T }>,
  'id' | 'type'
>;

/** What a successful answer carries, per ask type. */
export interface AnswerValues {
  /**
   * `changed`: false when a lift found nothing in force. `change`: what was stored and sent to
   * the edges (a revocation is never shortened by a later one, and a user's "not before" only
   * moves forward). `unconfirmed`: edges that did not confirm within the wait.
   */
  'change-revocations': { changed: boolean; change: RevocationChange; unconfirmed: number };
  /** One result per item, in order. */
  'rate-take': { results: RateTakeResult[] };
  /**
   * `lockedMs` > 0: refused, the user or the address is locked out for that long (no ticket).
   * Else `ticket` names the attempt in `login-result` (0 when lockouts are off).
   */
  'login-attempt': { ticket: number; lockedMs: number };
  /** `fresh`: this request spent the token; false: it was spent before (refuse it). */
  'csrf-spend': { fresh: boolean };
  /** Whether the change was made (see TotpChange for when it is not). */
  'totp-change': { done: boolean };
  /** Oldest first, newest last; `kept` false when the node keeps no ring (log.type not http). */
  'recent-logs': { kept: boolean; lines: string[] };
  /** Ready: not stopping, store open, no reload under way, every edge on the current generation. */
  readiness: { ready: boolean };
}

export type EdgeMessage = EdgeReply | EdgeEvent | EdgeAsk;

export type EdgeEventType = EdgeEvent['type'];

const id = z.int().nonnegative();
const snapshotSchema = z.strictObject({
  generation: z.int().nonnegative(),
  configDir: z.string(),
  dataDir: z.string(),
  files: z.strictObject({ config: z.string(), routes: z.string() }),
  raw: z.strictObject({ config: z.unknown(), routes: z.unknown() }),
  routeFiles: z.record(z.string(), z.string()).optional(),
  loginPage: z.string().optional(),
  keyRing: z.strictObject({
    active: z.string().min(1),
    verifyOnly: z.array(z.string().min(1)).max(64),
  }),
});
const tlsSchema = z.strictObject({
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  fingerprint: z.string(),
});
const portSchema = z.int().min(0).max(65_535);
const seconds = z.int().nonnegative();
// Token ids are 22 base64url characters (token-codec.ts); usernames are bounded by the config.
const tokenIdSchema = z.string().regex(/^[A-Za-z0-9_-]{22}$/);
const userSchema = z.string().min(1).max(1024);
// The nonce of a CSRF token: 12 bytes in base64url (worker/csrf-token.ts).
const csrfNonceSchema = z.string().regex(/^[A-Za-z0-9_-]{16}$/);
const revocationChangeSchema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('revoke-token'),
    tokenId: tokenIdSchema,
    until: seconds,
    revokedAt: seconds,
  }),
  z.strictObject({
    op: z.literal('revoke-user'),
    user: userSchema,
    notBefore: seconds,
    until: seconds,
    revokedAt: seconds,
  }),
  z.strictObject({ op: z.literal('lift-token'), tokenId: tokenIdSchema }),
  z.strictObject({ op: z.literal('lift-user'), user: userSchema }),
]) satisfies z.ZodType<RevocationChange>;
const base64url = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9_-]+$/);
const sealedTotpSchema = z.strictObject({
  nonce: base64url(64),
  box: base64url(256),
  algorithm: z.enum(['SHA1', 'SHA256', 'SHA512']),
  digits: z.int().min(6).max(8),
  period: z.int().min(1).max(300),
  createdAt: seconds,
}) satisfies z.ZodType<SealedTotp>;
const totpChangeSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('enrol'), user: userSchema, sealed: sealedTotpSchema }),
  z.strictObject({ op: z.literal('reset'), user: userSchema, sealed: sealedTotpSchema }),
  z.strictObject({ op: z.literal('remove'), user: userSchema }),
  z.strictObject({
    op: z.literal('consume'),
    user: userSchema,
    secretId: z.union([z.literal(''), base64url(64)]),
    steps: z.array(z.int().nonnegative()).min(1).max(16),
  }),
]) satisfies z.ZodType<TotpChange>;
const issuedTokenShape = { tokenId: tokenIdSchema, user: userSchema, iat: seconds, exp: seconds };
/** An edge flushes at most this many token counts per message. */
export const MAX_USES_PER_REPORT = 10_000;
/** GET /adm/logs returns at most this many lines. */
export const MAX_LOG_LINES = 10_000;
/** An edge sends at most this many rate-limit items per message. */
export const MAX_RATE_ITEMS = 10_000;
// A policy id and a client key (a username is at most 255 UTF-8 bytes): see rate-limiter.ts.
const rateKeySchema = z.string().min(1).max(1024);
const count = z.int().nonnegative().max(1_000_000_000);
const ms = z.number().nonnegative().max(1e10);

const supervisorMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('start'),
    id,
    snapshot: snapshotSchema,
    tls: tlsSchema.nullable(),
  }),
  z.strictObject({ type: z.literal('listen'), id, host: z.string().min(1), port: portSchema }),
  z.strictObject({ type: z.literal('apply-config'), id, snapshot: snapshotSchema }),
  z.strictObject({
    type: z.literal('revocations'),
    id,
    changes: z.array(revocationChangeSchema).max(10_000),
  }),
  z.strictObject({ type: z.literal('drain'), timeoutMs: z.number().nonnegative() }),
  z.strictObject({ type: z.literal('rate-block'), key: rateKeySchema, ms }),
  z.strictObject({
    type: z.literal('log-level'),
    level: z.enum(['error', 'warn', 'info', 'debug']),
  }),
  z.strictObject({ type: z.literal('answer'), id, value: z.unknown() }),
  z.strictObject({ type: z.literal('answer-error'), id, code: z.string(), reason: z.string() }),
]) satisfies z.ZodType<SupervisorMessage>;

// Labels are bounded strings; the series counts are bounded by MAX_REPORT_SERIES.
const label = z.string().min(1).max(1024);
const series = <T extends z.ZodType>(item: T) => z.array(item).max(MAX_REPORT_SERIES);
const latencySeries = z.strictObject({
  route: label,
  counts: z.array(z.number().nonnegative()).length(LATENCY_BUCKETS.length + 1),
  sum: z.number().nonnegative(),
});
const metricsReportSchema = z.strictObject({
  requests: series(
    z.strictObject({ route: label, method: label, status: label, count: z.number().positive() }),
  ),
  requestSeconds: series(latencySeries),
  upstreamSeconds: series(latencySeries),
  upstreamErrors: series(
    z.strictObject({ route: label, kind: label, count: z.number().positive() }),
  ),
  logins: series(z.strictObject({ result: label, count: z.number().positive() })),
  rateLimited: series(z.strictObject({ route: label, count: z.number().positive() })),
  tokenCache: z.strictObject({ hits: z.number().nonnegative(), misses: z.number().nonnegative() }),
  loopLagSeconds: z.number().nonnegative(),
}) satisfies z.ZodType<MetricsReport>;

const edgeMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('reply'), id, value: z.unknown() }),
  z.strictObject({ type: z.literal('reply-error'), id, code: z.string(), reason: z.string() }),
  z.strictObject({ type: z.literal('fatal'), reason: z.string() }),
  z.strictObject({ type: z.literal('token-issued'), token: z.strictObject(issuedTokenShape) }),
  z.strictObject({
    type: z.literal('token-uses'),
    uses: z
      .array(z.strictObject({ ...issuedTokenShape, count: z.int().positive() }))
      .max(MAX_USES_PER_REPORT),
  }),
  z.strictObject({
    type: z.literal('rate-settle'),
    items: z
      .array(z.strictObject({ key: rateKeySchema, spent: count, unspent: count, ageMs: ms }))
      .max(MAX_RATE_ITEMS),
  }),
  z.strictObject({
    type: z.literal('login-result'),
    ticket: z.int().positive(),
    outcome: z.enum(['success', 'failure', 'aborted']),
  }),
  z.strictObject({ type: z.literal('metrics'), report: metricsReportSchema }),
  z.strictObject({ type: z.literal('change-revocations'), id, change: revocationChangeSchema }),
  z.strictObject({
    type: z.literal('rate-take'),
    id,
    items: z
      .array(
        z.strictObject({
          key: rateKeySchema,
          rps: z.number().positive().max(1_000_000),
          burst: z.int().nonnegative().max(1_000_000),
          blockMs: z.int().nonnegative().max(86_400_000),
          want: count.min(1),
        }),
      )
      .min(1)
      .max(MAX_RATE_ITEMS),
  }),
  z.strictObject({
    type: z.literal('login-attempt'),
    id,
    user: userSchema.nullable(),
    ip: z.string().min(1).max(64),
  }),
  z.strictObject({ type: z.literal('csrf-spend'), id, nonce: csrfNonceSchema, exp: seconds }),
  z.strictObject({ type: z.literal('totp-change'), id, change: totpChangeSchema }),
  z.strictObject({
    type: z.literal('recent-logs'),
    id,
    limit: z.int().min(1).max(MAX_LOG_LINES),
  }),
  z.strictObject({ type: z.literal('readiness'), id }),
]) satisfies z.ZodType<EdgeMessage>;

const replySchemas = {
  start: z.strictObject({ generation: z.int().nonnegative() }),
  listen: z.strictObject({ port: portSchema.min(1) }),
  'apply-config': z.strictObject({ generation: z.int().nonnegative() }),
  revocations: z.strictObject({ applied: z.int().nonnegative() }),
} satisfies { [T in EdgeRequestType]: z.ZodType<ReplyValues[T]> };

const answerSchemas = {
  'change-revocations': z.strictObject({
    changed: z.boolean(),
    change: revocationChangeSchema,
    unconfirmed: z.int().nonnegative(),
  }),
  'rate-take': z.strictObject({
    results: z
      .array(z.strictObject({ granted: count, refuseMs: ms, remaining: count, held: z.boolean() }))
      .max(MAX_RATE_ITEMS),
  }),
  'login-attempt': z.strictObject({ ticket: z.int().nonnegative(), lockedMs: ms }),
  'csrf-spend': z.strictObject({ fresh: z.boolean() }),
  'totp-change': z.strictObject({ done: z.boolean() }),
  'recent-logs': z.strictObject({
    kept: z.boolean(),
    lines: z.array(z.string()).max(MAX_LOG_LINES),
  }),
  readiness: z.strictObject({ ready: z.boolean() }),
} satisfies { [T in EdgeAskType]: z.ZodType<AnswerValues[T]> };

/** A parse result: the typed message, or a short reason for the log. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function parseWith<T>(schema: z.ZodType<T>, value: unknown): Parsed<T> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { ok: false, reason: `${where}${issue?.message ?? 'invalid message'}` };
}

/** Validates a message received by an edge. */
export function parseSupervisorMessage(value: unknown): Parsed<SupervisorMessage> {
  return parseWith(supervisorMessageSchema, value);
}

/** Validates a message received by the supervisor. */
export function parseEdgeMessage(value: unknown): Parsed<EdgeMessage> {
  return parseWith(edgeMessageSchema, value);
}

/** Validates the value of a successful reply to a request of type `type`. */
export function parseReplyValue<T extends EdgeRequestType>(
  type: T,
  value: unknown,
): Parsed<ReplyValues[T]> {
  return parseWith(replySchemas[type] as unknown as z.ZodType<ReplyValues[T]>, value);
}

/** Validates the value of a successful answer to an ask of type `type`. */
export function parseAnswerValue<T extends EdgeAskType>(
  type: T,
  value: unknown,
): Parsed<AnswerValues[T]> {
  return parseWith(answerSchemas[type] as unknown as z.ZodType<AnswerValues[T]>, value);
}

/** A short label of an untrusted message for the log: its `type` when it has a string one. */
export function describeMessage(value: unknown): string {
  const type =
    typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type.slice(0, 64) : typeof value;
}

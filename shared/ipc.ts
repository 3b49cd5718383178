import { z } from 'zod';

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
}

/** The certificate pair an edge loads: validated copies owned by the supervisor. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** SHA-256 (hex) over both files' bytes, for logs and for the plan's process key. */
  fingerprint: string;
}

/** Supervisor → edge requests: each carries an `id`, and the edge answers it exactly once. */
export type EdgeRequest =
  /** Build the runtime and the uWS app for `snapshot`; do not listen yet. */
  | { type: 'start'; id: number; snapshot: ConfigSnapshot; tls: TlsFiles | null }
  /** Listen on host:port (port 0: any free port). Replies with the port actually bound. */
  | { type: 'listen'; id: number; host: string; port: number }
  /** Swap the runtime for a new generation; requests in flight keep the old one. */
  | { type: 'apply-config'; id: number; snapshot: ConfigSnapshot };

/** Supervisor → edge messages that expect no reply. */
export type EdgeNotice =
  /** Stop accepting, finish what is in flight (at most `timeoutMs`), then exit 0. */
  { type: 'drain'; timeoutMs: number };

export type SupervisorMessage = EdgeRequest | EdgeNotice;

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
}

/** Edge → supervisor answers to a request, naming its id. */
export type EdgeReply =
  | { type: 'reply'; id: number; value: unknown }
  /** The request failed; `code` is the edge's CodedError code (or `EDGE_ERROR`). */
  | { type: 'reply-error'; id: number; code: string; reason: string };

/** Edge → supervisor messages sent on the edge's own initiative. */
export type EdgeEvent =
  /** The edge is about to exit because of an error it cannot recover from. */
  { type: 'fatal'; reason: string };

export type EdgeMessage = EdgeReply | EdgeEvent;

export type EdgeEventType = EdgeEvent['type'];

const id = z.int().nonnegative();
const snapshotSchema = z.strictObject({
  generation: z.int().nonnegative(),
  configDir: z.string(),
  dataDir: z.string(),
  files: z.strictObject({ config: z.string(), routes: z.string() }),
  raw: z.strictObject({ config: z.unknown(), routes: z.unknown() }),
});
const tlsSchema = z.strictObject({
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  fingerprint: z.string(),
});
const portSchema = z.int().min(0).max(65_535);

const supervisorMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('start'),
    id,
    snapshot: snapshotSchema,
    tls: tlsSchema.nullable(),
  }),
  z.strictObject({ type: z.literal('listen'), id, host: z.string().min(1), port: portSchema }),
  z.strictObject({ type: z.literal('apply-config'), id, snapshot: snapshotSchema }),
  z.strictObject({ type: z.literal('drain'), timeoutMs: z.number().nonnegative() }),
]) satisfies z.ZodType<SupervisorMessage>;

const edgeMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('reply'), id, value: z.unknown() }),
  z.strictObject({ type: z.literal('reply-error'), id, code: z.string(), reason: z.string() }),
  z.strictObject({ type: z.literal('fatal'), reason: z.string() }),
]) satisfies z.ZodType<EdgeMessage>;

const replySchemas = {
  start: z.strictObject({ generation: z.int().nonnegative() }),
  listen: z.strictObject({ port: portSchema.min(1) }),
  'apply-config': z.strictObject({ generation: z.int().nonnegative() }),
} satisfies { [T in EdgeRequestType]: z.ZodType<ReplyValues[T]> };

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

/** A short label of an untrusted message for the log: its `type` when it has a string one. */
export function describeMessage(value: unknown): string {
  const type =
    typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type.slice(0, 64) : typeof value;
}

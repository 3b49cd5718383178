/**
 * What the revocation bus reads from Redis, validated before use (anything in Redis may have
 * been written by another version, another program, or by hand): the pub/sub message and the
 * hash of a record key. Layout (README "Several nodes"):
 *
 * - key `<prefix>rev:token:<tokenId>` / `<prefix>rev:user:<username>`: a hash with the fields
 *   state ('revoked'|'lifted', for people), revokedAt, liftedAt (ms), until, notBefore,
 *   expiresAt (unix s), origin (node id); the key expires at expiresAt;
 * - channel `<prefix>revocations`: JSON {v: 1, from, kind, subject, revokedAt, liftedAt, until,
 *   notBefore, expiresAt, origin}, one per change of a record, sent by the merge script.
 */
import { z } from 'zod';
import { TOKEN_EXPIRY_MAX_SECONDS } from '../conf/config-schema.js';
import type { SyncKind, SyncRecord } from '../shared/sync-record.js';

/** Milliseconds below 1e14 and seconds below 1e11: exact through Lua doubles and cjson. */
const ms = z.int().min(0).max(99_999_999_999_999);
const sec = z.int().min(0).max(99_999_999_999);
// Node ids are 16 hex digits; '' marks a record rebuilt from a revocation made before the bus.
const nodeId = z.string().regex(/^[0-9a-f]{0,64}$/);
// The store's key rule (shared/store-args.ts checkKey): 1-256 characters, no NUL.
const subject = z
  .string()
  .min(1)
  .max(256)
  .refine((s) => !s.includes('\0'));
const kind = z.enum(['token', 'user']);

const fields = { revokedAt: ms, liftedAt: ms, until: sec, notBefore: sec, expiresAt: sec };

const messageSchema = z.object({
  v: z.literal(1),
  from: nodeId,
  kind,
  subject,
  ...fields,
  origin: nodeId,
});

const decimal = (inner: z.ZodInt) =>
  z
    .string()
    .regex(/^[0-9]{1,15}$/)
    .transform(Number)
    .pipe(inner);

const hashSchema = z.object({
  revokedAt: decimal(ms),
  liftedAt: decimal(ms),
  until: decimal(sec),
  notBefore: decimal(sec),
  expiresAt: decimal(sec),
  origin: nodeId,
});

/** The channel of a prefix. */
export function channelName(prefix: string): string {
  return `${prefix}revocations`;
}

/** The key of a subject's record. */
export function recordKey(prefix: string, kind: SyncKind, subject: string): string {
  return `${prefix}rev:${kind}:${subject}`;
}

/** A parsed pub/sub message: the sender and the record, or the reason it was refused. */
export type ParsedMessage = { from: string; record: SyncRecord } | { problem: string };

/** Parses one message of the channel. */
export function parseMessage(text: string): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: 'a message that is not JSON' };
  }
  const parsed = messageSchema.safeParse(json);
  if (!parsed.success) return { problem: `a message with bad fields (${fieldsOf(parsed.error)})` };
  const { v: _v, from, ...record } = parsed.data;
  return { from, record };
}

/** Parses one record key and its hash (HGETALL), or says why it was refused. */
export function parseRecord(
  prefix: string,
  key: string,
  hash: Record<string, string>,
): SyncRecord | { problem: string } {
  const rest = key.startsWith(`${prefix}rev:`) ? key.slice(prefix.length + 4) : '';
  const colon = rest.indexOf(':');
  const k = kind.safeParse(rest.slice(0, colon));
  const s = subject.safeParse(rest.slice(colon + 1));
  if (colon < 0 || !k.success || !s.success) return { problem: 'a key with a bad name' };
  const parsed = hashSchema.safeParse(hash);
  if (!parsed.success) return { problem: `a key with bad fields (${fieldsOf(parsed.error)})` };
  return { kind: k.data, subject: s.data, ...parsed.data };
}

/** The merge script's reply as a record (the script's own output: checked all the same). */
export function parseMergeReply(
  record: SyncRecord,
  reply: unknown,
): { changed: boolean; record: SyncRecord } | { problem: string } {
  if (!Array.isArray(reply) || reply.length !== 7) return { problem: 'a merge reply of bad shape' };
  const [changed, revokedAt, liftedAt, until, notBefore, expiresAt, origin] = reply as unknown[];
  const parsed = hashSchema.safeParse({ revokedAt, liftedAt, until, notBefore, expiresAt, origin });
  if (!parsed.success)
    return { problem: `a merge reply with bad fields (${fieldsOf(parsed.error)})` };
  return {
    changed: changed === 1,
    record: { kind: record.kind, subject: record.subject, ...parsed.data },
  };
}

function fieldsOf(error: z.ZodError): string {
  return [...new Set(error.issues.map((i) => i.path.join('.') || '(root)'))].join(', ');
}

/**
 * How far ahead of this node's clock a record's times may be (seconds): the clock skew between
 * nodes (README: clocks agree within seconds) with a wide margin.
 */
export const MAX_CLOCK_AHEAD_SECONDS = 300;

/**
 * Why a well-formed record cannot be one a node made (undefined: it can): a change dated in the
 * future, a "not before" in the future, or an end later than any revocation lasts (a token's
 * life or an admin's `exp`, both at most TOKEN_EXPIRY_MAX_SECONDS). Such a record comes from a
 * clock far ahead or from someone writing to Redis; joined, a future lift would undo every
 * later revocation of the subject, a future "not before" would date every login after it.
 */
export function implausibleRecord(r: SyncRecord, nowSeconds: number): string | undefined {
  const ahead = nowSeconds + MAX_CLOCK_AHEAD_SECONDS;
  const fields: string[] = [];
  if (r.revokedAt > ahead * 1000) fields.push('revokedAt');
  if (r.liftedAt > ahead * 1000) fields.push('liftedAt');
  if (r.notBefore > ahead) fields.push('notBefore');
  if (r.until > ahead + TOKEN_EXPIRY_MAX_SECONDS) fields.push('until');
  if (r.expiresAt > ahead + TOKEN_EXPIRY_MAX_SECONDS) fields.push('expiresAt');
  return fields.length === 0
    ? undefined
    : `a record dated ahead of this clock by more than ${MAX_CLOCK_AHEAD_SECONDS} s (${fields.join(', ')}): check the nodes' clocks`;
}

/*
 * The admin API (`/adm/*`). Every admin call is checked (requireAdmin, a step of
 * every /adm endpoint in endpoints.ts), in this order and before any body is read: the API is
 * on (`token_admin` non-empty), the client address is in `admin_allow` (when set), and exactly
 * one `X-Auth-Token` header equals `token_admin` (SHA-256 of both compared in constant time,
 * so neither the length nor a prefix leaks), under the login lockout.
 *
 * Revocations are written by the supervisor, the store's only writer (revocation-ask.ts): when
 * the client gets its 200 the change is durable and in force on every edge.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { TOKEN_EXPIRY_MAX_SECONDS } from '../conf/config-schema.js';
import { GatewayError, refusal } from '../shared/errors.js';
import type { RevocationChange } from '../shared/ipc.js';
import { StoreError } from '../shared/store.js';
import { formatRfc3339 } from '../shared/time-format.js';
import { usernameProblem } from '../shared/username.js';
import { checkUnderLockout } from './login-lockout.js';
import type { RequestContext } from './request-context.js';
import { changeRevocations } from './revocation-ask.js';
import { header, readBody, sendJson, singleHeader } from './uws-io.js';

/** What the admin API needs of a config generation; undefined when `token_admin` is empty. */
export interface AdminAccess {
  /** SHA-256 of token_admin. */
  readonly digest: Buffer;
  /** `admin_allow`, when set. */
  readonly allows: ((ip: string) => boolean) | undefined;
}

/** Compiles `token_admin` and `admin_allow`. */
export function adminAccess(
  tokenAdmin: string,
  allows: ((ip: string) => boolean) | undefined,
): AdminAccess | undefined {
  if (tokenAdmin === '') return undefined;
  return { digest: sha256(tokenAdmin), allows };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Page sizes of the listing endpoints: default and maximum. */
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1_000;

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const REPEATED_TOKEN = new GatewayError('ADMIN_TOKEN_INVALID', {
  detail: 'X-Auth-Token is repeated: send it once',
});

/**
 * The admin checks, before anything is read: every /adm endpoint runs this step first
 * (endpoints.ts). The token comparison runs under the login lockout (login-lockout.ts): a
 * wrong token counts as a failure of the client's address, and a locked-out address gets 429
 * LOGIN_LOCKED without its token being compared. Synchronous when the lockout is off.
 */
export function requireAdmin(ctx: RequestContext): Promise<void> | undefined {
  const admin = ctx.rt.admin;
  if (admin === undefined) throw refusal('ADMIN_DISABLED');
  if (admin.allows && !admin.allows(ctx.clientIp)) throw refusal('ADMIN_IP_NOT_ALLOWED');
  const value = singleHeader(ctx.ex, 'x-auth-token');
  if (value === null) throw REPEATED_TOKEN;
  if (value === undefined || value === '') throw refusal('ADMIN_TOKEN_MISSING');
  const matches = () => timingSafeEqual(sha256(value), admin.digest);
  if (ctx.rt.config.login_lockout.max_failures === 0) {
    if (!matches()) throw refusal('ADMIN_TOKEN_INVALID');
    ctx.logUser = '(admin)';
    return undefined;
  }
  return checkUnderLockout(ctx, null, matches).then((ok) => {
    if (!ok) throw refusal('ADMIN_TOKEN_INVALID');
    ctx.logUser = '(admin)';
  });
}

function badRequest(detail: string): GatewayError {
  return new GatewayError('BAD_REQUEST', { detail });
}

/** A cursor the store did not issue is the client's mistake; any other failure is ours. */
function badCursor(err: unknown): unknown {
  if (err instanceof StoreError && err.code === 'STORE_BAD_CURSOR') {
    return badRequest('after is not a cursor this listing gave');
  }
  return err;
}

function badBody(detail: string): GatewayError {
  return new GatewayError('BAD_BODY', { detail });
}

/** Query parameters, refusing unknown and repeated names. */
function queryOf(ctx: RequestContext, allowed: readonly string[]): Map<string, string> {
  const params = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(ctx.ex.query)) {
    if (!allowed.includes(name)) {
      throw badRequest(`unknown query parameter ${JSON.stringify(name.slice(0, 64))}`);
    }
    if (params.has(name)) throw badRequest(`query parameter ${name} is repeated`);
    params.set(name, value);
  }
  return params;
}

function limitOf(params: Map<string, string>): number {
  const text = params.get('limit');
  if (text === undefined) return DEFAULT_PAGE;
  if (!/^[0-9]{1,7}$/.test(text) || Number(text) < 1 || Number(text) > MAX_PAGE) {
    throw badRequest(`limit must be a whole number from 1 to ${MAX_PAGE}`);
  }
  return Number(text);
}

const TOKEN_ID = /^[A-Za-z0-9_-]{22}$/;

function tokenIdOf(value: unknown): string {
  if (typeof value !== 'string' || !TOKEN_ID.test(value)) {
    throw badBody('token_id must be a token id: 22 characters of base64url');
  }
  return value;
}

function usernameOf(value: unknown, name = 'username'): string {
  const problem = usernameProblem(value);
  if (problem !== undefined) throw badBody(`${name} ${problem}`);
  return value as string;
}

const revokeBody = z.strictObject({
  token_id: z.unknown().optional(),
  username: z.unknown().optional(),
  exp: z.unknown().optional(),
});

const JSON_ONLY = new GatewayError('UNSUPPORTED_MEDIA_TYPE', {
  detail: 'the admin API takes application/json',
});

/** POST /adm/revoke: `{token_id[, exp]}` or `{username}`. */
export function handleRevoke(ctx: RequestContext): Promise<void> {
  const type = header(ctx.ex, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw JSON_ONLY;
  return revoke(ctx);
}

async function revoke(ctx: RequestContext): Promise<void> {
  const { ex, rt, services } = ctx;
  const body = await readBody(ex, rt.config.max_body_auth_bytes);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw badBody('the body is not valid JSON');
  }
  const parsed = revokeBody.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const unknown = issue?.code === 'unrecognized_keys' ? issue.keys : [];
    throw badBody(
      unknown.length > 0
        ? `unknown field ${JSON.stringify(unknown[0]!.slice(0, 64))}: expected token_id (and optional exp) or username`
        : 'expected a JSON object with token_id (and optional exp) or username',
    );
  }
  const { token_id, username, exp } = parsed.data;
  if ((token_id === undefined) === (username === undefined)) {
    throw badBody('give exactly one of token_id and username');
  }
  const now = nowSeconds();
  const expiry = rt.config.token_expiry_seconds;
  services.store.refresh();
  if (username !== undefined) {
    if (exp !== undefined) throw badBody('exp applies to token_id only');
    const user = usernameOf(username);
    // Kept while a token issued up to now may still be alive here (or on a node like this one).
    const until = Math.max(services.store.latestExpiryOf(user) ?? 0, now + expiry);
    const done = await changeRevocations(ctx, {
      op: 'revoke-user',
      user,
      notBefore: now,
      until,
      revokedAt: now,
    });
    const stored = done.change as RevocationChange & { op: 'revoke-user' };
    sendJson(
      ex,
      200,
      JSON.stringify({
        revoked: 'user',
        username: user,
        not_before: stored.notBefore,
        not_before_at: formatRfc3339(stored.notBefore),
        known_here: rt.users.has(user),
        unconfirmed_edges: done.unconfirmed,
      }),
    );
    return;
  }
  const tokenId = tokenIdOf(token_id);
  if (exp !== undefined) {
    if (typeof exp !== 'number' || !Number.isSafeInteger(exp)) {
      throw badBody('exp must be a whole number of unix seconds');
    }
    if (exp <= now) throw badBody('exp is not in the future: nothing would be revoked');
    if (exp > now + TOKEN_EXPIRY_MAX_SECONDS) {
      throw badBody(`exp is further than ${TOKEN_EXPIRY_MAX_SECONDS} seconds from now`);
    }
  }
  const record = services.store.getToken(tokenId);
  // Until `exp` when given; else until the token's own expiry, or for a token this node never
  // issued, for as long as a token of this node lives.
  let until = (exp as number | undefined) ?? record?.exp ?? now + expiry;
  let unconfirmed = 0;
  // A known token that already expired is refused anyway: nothing to store.
  if (until > now) {
    const done = await changeRevocations(ctx, {
      op: 'revoke-token',
      tokenId,
      until,
      revokedAt: now,
    });
    until = (done.change as RevocationChange & { op: 'revoke-token' }).until;
    unconfirmed = done.unconfirmed;
  }
  sendJson(
    ex,
    200,
    JSON.stringify({
      revoked: 'token',
      token_id: tokenId,
      until,
      until_at: formatRfc3339(until),
      known_here: record !== undefined,
      expired: until <= now,
      unconfirmed_edges: unconfirmed,
    }),
  );
}

/** GET /adm/revocations?limit=&after=: what is in force, one page. */
export function handleListRevocations(ctx: RequestContext): undefined {
  const params = queryOf(ctx, ['limit', 'after']);
  const limit = limitOf(params);
  const store = ctx.services.store;
  store.refresh();
  let page: ReturnType<typeof store.listRevocations>;
  try {
    page = store.listRevocations({ after: params.get('after'), limit, nowSeconds: nowSeconds() });
  } catch (err) {
    throw badCursor(err);
  }
  const items = page.items.map((r) =>
    r.kind === 'token'
      ? {
          kind: 'token',
          token_id: r.tokenId,
          until: r.until,
          until_at: formatRfc3339(r.until),
          revoked_at: formatRfc3339(r.revokedAt),
        }
      : {
          kind: 'user',
          username: r.user,
          not_before: r.notBefore,
          not_before_at: formatRfc3339(r.notBefore),
          until: r.until,
          revoked_at: formatRfc3339(r.revokedAt),
        },
  );
  sendJson(ctx.ex, 200, JSON.stringify({ revocations: items, next: page.next }));
  return undefined;
}

/** DELETE /adm/revocations?token_id= or ?username=: lifts one revocation. */
export function handleLiftRevocation(ctx: RequestContext): Promise<void> {
  const params = queryOf(ctx, ['token_id', 'username']);
  const tokenId = params.get('token_id');
  const username = params.get('username');
  if ((tokenId === undefined) === (username === undefined)) {
    throw badRequest('give exactly one of the query parameters token_id and username');
  }
  let c: RevocationChange;
  try {
    c =
      tokenId !== undefined
        ? { op: 'lift-token', tokenId: tokenIdOf(tokenId) }
        : { op: 'lift-user', user: usernameOf(username) };
  } catch (err) {
    throw badRequest((err as GatewayError).detail ?? 'bad query');
  }
  return lift(ctx, c);
}

async function lift(ctx: RequestContext, c: RevocationChange & { op: 'lift-token' | 'lift-user' }) {
  if (!(await changeRevocations(ctx, c)).changed) throw refusal('REVOCATION_NOT_FOUND');
  const named = c.op === 'lift-token' ? { token_id: c.tokenId } : { username: c.user };
  sendJson(
    ctx.ex,
    200,
    JSON.stringify({ lifted: c.op === 'lift-token' ? 'token' : 'user', ...named }),
  );
}

/**
 * GET /adm/stats?user=&limit=&after=: the original's shape,
 * `[{"user", "tokens": [{"token_id", "count", "delivery_at", "expire_at"}]}]`, times RFC 3339
 * UTC, at most `limit` tokens; a further page is announced by `Link: <...>; rel="next"`
 * (RFC 8288). With `stats: false`: `{"stats_enabled": false, "message": ...}`.
 */
export function handleStats(ctx: RequestContext): undefined {
  const params = queryOf(ctx, ['user', 'limit', 'after']);
  const limit = limitOf(params);
  if (!ctx.rt.config.stats) {
    sendJson(
      ctx.ex,
      200,
      JSON.stringify({
        stats_enabled: false,
        message: 'Stats are disabled: set "stats": true in config.json',
      }),
    );
    return undefined;
  }
  const user = params.get('user');
  if (user !== undefined) {
    const problem = usernameProblem(user);
    if (problem !== undefined) throw badRequest(`user ${problem}`);
  }
  const store = ctx.services.store;
  store.refresh();
  let page: ReturnType<typeof store.stats>;
  try {
    page = store.stats({ user, after: params.get('after'), limit, nowSeconds: nowSeconds() });
  } catch (err) {
    throw badCursor(err);
  }
  const body = page.users.map((u) => ({
    user: u.user,
    tokens: u.tokens.map((t) => ({
      token_id: t.tokenId,
      count: t.count,
      delivery_at: formatRfc3339(t.iat),
      expire_at: formatRfc3339(t.exp),
    })),
  }));
  const extra: [string, string][] = [];
  if (page.next !== null) {
    const next = new URLSearchParams({ limit: String(limit), after: page.next });
    if (user !== undefined) next.set('user', user);
    extra.push(['link', `</adm/stats?${next}>; rel="next"`]);
  }
  sendJson(ctx.ex, 200, JSON.stringify(body), extra);
  return undefined;
}

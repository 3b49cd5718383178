// The shapes the store takes and returns. All times are unix seconds.

/** A token the gateway issued: its id (the token's unique part), owner, issue and expiry times. */
export interface TokenRecord {
  tokenId: string;
  user: string;
  iat: number;
  exp: number;
}

/** One token refused until `until` (its expiry, usually); `revokedAt` says when. */
export interface TokenRevocation {
  tokenId: string;
  until: number;
  revokedAt: number;
}

/** Every token of `user` issued at or before `notBefore` is refused until `until`. */
export interface UserRevocation {
  user: string;
  notBefore: number;
  until: number;
  revokedAt: number;
}

/** An entry of listRevocations: a token or a user revocation. */
export type Revocation =
  | ({ kind: 'token' } & TokenRevocation)
  | ({ kind: 'user' } & UserRevocation);

/** Uses of one token counted by an edge since its last flush. */
export interface TokenUse {
  record: TokenRecord;
  count: number;
}

/** A token with the number of requests it authenticated (0 when never used). */
export type TokenStat = TokenRecord & { count: number };

/** One page of stats: tokens grouped by user; `next` is the cursor of the next page, if any. */
export interface StatsPage {
  users: { user: string; tokens: TokenStat[] }[];
  next: string | null;
}

/** One page of revocations in force; `next` is the cursor of the next page, if any. */
export interface RevocationPage {
  items: Revocation[];
  next: string | null;
}

/** Everything still refused at some time, for an edge loading its revocation set. */
export interface RevocationsInForce {
  tokens: TokenRevocation[];
  users: UserRevocation[];
}

/** What a login ban locks out: a username, or a client address (see LoginBan.subject). */
export type LoginBanKind = 'user' | 'ip';

/**
 * A login ban (a brute-force lockout): logins of `subject` are refused until `until`.
 * `subject` is a username for kind 'user'; for kind 'ip', the client as the gateway keys it:
 * IPv4 text ('203.0.113.7', an IPv4-mapped IPv6 client written as IPv4), or an IPv6 network in
 * CIDR form, RFC 5952 text ('2001:db8:1:2::/64', a whole address as '2001:db8::1/128').
 * `bannedAt` is when the ban started, `failures` the failed logins that led to it.
 */
export interface LoginBan {
  kind: LoginBanKind;
  subject: string;
  until: number;
  bannedAt: number;
  failures: number;
}

/** Entry counts, for health and metrics. */
export interface StoreCounts {
  tokens: number;
  revokedTokens: number;
  revokedUsers: number;
  /** Login bans, ended ones included until purged. */
  bans: number;
}

/** What purge removed. */
export interface PurgeResult {
  tokens: number;
  /** Token and user revocations. */
  revocations: number;
  /** Login bans. */
  bans: number;
  /** Spent CSRF token nonces. */
  csrfNonces: number;
}

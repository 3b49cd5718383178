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

/** Entry counts, for health and metrics. */
export interface StoreCounts {
  tokens: number;
  revokedTokens: number;
  revokedUsers: number;
}

/** What purge removed. */
export interface PurgeResult {
  tokens: number;
  revocations: number;
}

import { CodedError } from './coded-error.js';

/**
 * Stable codes of the errors the token codec and its key ring throw. They signal caller bugs or
 * an unusable key ring, never a bad token (verify answers those with a reason).
 */
export type TokenCodecErrorCode =
  | 'TOKEN_SECRET_EMPTY'
  | 'TOKEN_KEY_ID_COLLISION'
  | 'TOKEN_KEY_UNKNOWN'
  | 'TOKEN_USERNAME_INVALID'
  | 'TOKEN_TIME_INVALID'
  | 'TOKEN_RANDOM_INVALID';

/** Thrown by `TokenCodec` for a key ring it cannot hold or arguments it cannot encode. */
export class TokenCodecError extends CodedError<TokenCodecErrorCode> {}

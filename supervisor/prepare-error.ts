import { CodedError } from '../shared/coded-error.js';

/**
 * Why `proxyauth prepare` refused or failed. Every refusal is found before anything changes,
 * so an error of the first four codes means nothing was created or chowned.
 * - PREPARE_NOT_ROOT: not run as root (useradd and chown need it).
 * - PREPARE_USER_UNSAFE: the named user exists with uid 0 (a root alias, not a service user).
 * - PREPARE_DIR_REFUSED: a dir (or something in it) is another user's, not a directory, a
 *   symlink, a hard link or writable by others: taking it over could hand out files that are
 *   not the gateway's.
 * - PREPARE_UNSAFE_PARENT: a parent of a dir is not root's or is writable by others, who could
 *   then swap the dir for another after prepare.
 * - PREPARE_TOOL_FAILED: getent, groupadd or useradd is missing or failed (their stderr is in
 *   the message: it names no secret).
 */
export type PrepareErrorCode =
  | 'PREPARE_NOT_ROOT'
  | 'PREPARE_USER_UNSAFE'
  | 'PREPARE_DIR_REFUSED'
  | 'PREPARE_UNSAFE_PARENT'
  | 'PREPARE_TOOL_FAILED';

export class PrepareError extends CodedError<PrepareErrorCode> {}

import { constants } from 'node:os';
import { dirname } from 'node:path';
import { CodedError } from './coded-error.js';
import { isNearlyFull } from './store-file.js';

/**
 * Why the store failed. Open failures say what is wrong with the file or its place; a running
 * store reports STORE_WRITE_FAILED / STORE_READ_FAILED with the cause in the message.
 */
export type StoreErrorCode =
  /** A read-only open found no store: the writer (supervisor) has not created it yet. */
  | 'STORE_MISSING'
  /** EACCES / EPERM on the data dir, the store file or its lock file. */
  | 'STORE_ACCESS_DENIED'
  /** The writer cannot write: the file system is mounted read-only. */
  | 'STORE_READ_ONLY_FS'
  /** No room to write (ENOSPC, EDQUOT, EFBIG, MDB_MAP_FULL, or too little free space to open). */
  | 'STORE_FULL'
  /** Not an LMDB file, a truncated one, or damaged pages. */
  | 'STORE_CORRUPT'
  /** Written by a newer version of the gateway: its schema is unknown to this code. */
  | 'STORE_SCHEMA_NEWER'
  /** A reader found an older schema: the writer has not migrated the store yet. */
  | 'STORE_SCHEMA_OLDER'
  /**
   * Another process opened or closed the store at the same instant and LMDB refused its lock
   * table (EINVAL): running the command again works.
   */
  | 'STORE_BUSY'
  /** Any other open failure. */
  | 'STORE_OPEN_FAILED'
  | 'STORE_WRITE_FAILED'
  | 'STORE_READ_FAILED'
  /** A write was called on a handle opened read-only. */
  | 'STORE_READ_ONLY'
  /** The handle was used after close(). */
  | 'STORE_CLOSED'
  /** A pagination cursor that this store did not issue (or one for another listing). */
  | 'STORE_BAD_CURSOR';

/** An error of the LMDB store. The message names the store file and says the cause plainly. */
export class StoreError extends CodedError<StoreErrorCode> {}

/** The open-time code for a cause, and the cause in plain words. */
export interface StoreFailure {
  readonly code: StoreErrorCode;
  readonly cause: string;
}

// lmdb.h return codes (MDB_*): LMDB reports its own failures with these negative numbers and
// system failures with the errno; lmdb-js puts either in `error.code`.
const MDB_PAGE_NOTFOUND = -30797;
const MDB_CORRUPTED = -30796;
const MDB_PANIC = -30795;
const MDB_VERSION_MISMATCH = -30794;
const MDB_INVALID = -30793;
const MDB_MAP_FULL = -30792;
const MDB_READERS_FULL = -30790;

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

const BY_NAME: Record<string, StoreFailure> = {
  EACCES: { code: 'STORE_ACCESS_DENIED', cause: 'permission denied' },
  EPERM: { code: 'STORE_ACCESS_DENIED', cause: 'operation not permitted' },
  EROFS: { code: 'STORE_READ_ONLY_FS', cause: 'the file system is read-only' },
  ENOSPC: { code: 'STORE_FULL', cause: 'no space left on the device' },
  EDQUOT: { code: 'STORE_FULL', cause: 'the disk quota is used up' },
  EFBIG: { code: 'STORE_FULL', cause: 'the file size limit was reached' },
  ENOENT: { code: 'STORE_OPEN_FAILED', cause: 'no such file or directory' },
  ENOTDIR: { code: 'STORE_OPEN_FAILED', cause: 'a part of the path is not a directory' },
  EEXIST: { code: 'STORE_OPEN_FAILED', cause: 'a file that is not a directory is in the way' },
  EISDIR: { code: 'STORE_OPEN_FAILED', cause: 'the path is a directory' },
  ENOMEM: { code: 'STORE_OPEN_FAILED', cause: 'out of memory (the file could not be mapped)' },
  // LMDB turns a short write into EIO; storeFailure says "full" when the disk is.
  EIO: { code: 'STORE_OPEN_FAILED', cause: 'input/output error (the disk may be full or failing)' },
};

const CORRUPT: StoreFailure = {
  code: 'STORE_CORRUPT',
  cause: 'it is not an LMDB file, or it is damaged',
};

const BY_MDB_CODE = new Map<number, StoreFailure>([
  [MDB_INVALID, CORRUPT],
  [MDB_CORRUPTED, CORRUPT],
  [MDB_PAGE_NOTFOUND, CORRUPT],
  [MDB_PANIC, { code: 'STORE_CORRUPT', cause: 'LMDB hit a fatal error and must be reopened' }],
  [
    MDB_VERSION_MISMATCH,
    { code: 'STORE_CORRUPT', cause: 'it was written by an incompatible LMDB version' },
  ],
  [MDB_MAP_FULL, { code: 'STORE_FULL', cause: 'the store reached its map size limit' }],
  [
    MDB_READERS_FULL,
    { code: 'STORE_OPEN_FAILED', cause: 'too many processes have the store open' },
  ],
]);

const FULL: StoreFailure = { code: 'STORE_FULL', cause: 'no space left on the device' };

/**
 * Classifies a failure from node:fs (`code` is an errno name such as 'EACCES') or from lmdb-js
 * (`code` is an errno number or an MDB_* code). Anything else keeps its own message. LMDB
 * reports a short write as EIO: given the store's `dir`, an EIO on a (nearly) full file system
 * is reported as full.
 */
export function storeFailure(err: unknown, dir?: string): StoreFailure {
  const code = (err as { code?: unknown } | null)?.code;
  const name = typeof code === 'number' ? ERRNO_NAMES.get(code) : code;
  if (name === 'EIO' && dir !== undefined && isNearlyFull(dir)) return FULL;
  if (typeof name === 'string' && Object.hasOwn(BY_NAME, name)) return BY_NAME[name]!;
  if (typeof code === 'number') {
    const known = BY_MDB_CODE.get(code);
    if (known) return known;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'STORE_OPEN_FAILED', cause: message };
}

const HINTS: Partial<Record<StoreErrorCode, string>> = {
  STORE_ACCESS_DENIED: ' (check the owner and mode of the data dir and of the files in it)',
  STORE_READ_ONLY_FS: ' (the supervisor writes to its store: mount the data dir read-write)',
  STORE_FULL: ' (free some space, or raise the limit)',
  STORE_BUSY: ' (run the command, or start the gateway, again)',
  STORE_CORRUPT:
    ' (restore a backup, or move it aside to start empty: its revocations and stats are lost)',
};

/** The open error for `failure`: its code, and a message naming `path` with the cause. */
export function openError(path: string, failure: StoreFailure, err?: unknown): StoreError {
  return new StoreError(
    failure.code,
    `cannot open the store at ${path}: ${failure.cause}${HINTS[failure.code] ?? ''}`,
    err === undefined ? undefined : { cause: err },
  );
}

/**
 * The StoreError for a failed write. lmdb-js rejects every write of a failed commit with a
 * generic error whose `commitError` promise holds the cause: it is awaited here, which also
 * keeps it from ending the process as an unhandled rejection.
 */
export async function writeError(path: string, err: unknown): Promise<StoreError> {
  const pending = (err as { commitError?: unknown } | null)?.commitError;
  const cause = pending instanceof Promise ? await settled(pending, err) : err;
  const failure = storeFailure(cause, dirname(path));
  return new StoreError(
    'STORE_WRITE_FAILED',
    `cannot write to the store at ${path}: ${failure.cause}`,
    {
      cause,
    },
  );
}

function settled(pending: Promise<unknown>, fallback: unknown): Promise<unknown> {
  return pending.then(
    () => fallback,
    (err: unknown) => err,
  );
}

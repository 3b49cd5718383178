// Opening the environment: check the place and the file first (lmdb-js crashes the process on
// a file LMDB refuses, see store-file.ts), then open, then bring the schema up to date (writer)
// or check it (reader). Every failure becomes a StoreError naming the file.
import { accessSync, chmodSync, constants, mkdirSync, type Stats, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { openError, StoreError, type StoreFailure, storeFailure } from './store-error.js';
import { freeBytes, lmdbFileProblem, MIN_FREE_BYTES, preallocateLockFile } from './store-file.js';
import { holdStoreGate } from './store-gate.js';
import {
  DB,
  MAX_DBS,
  migrate,
  OPENED_AT_KEY,
  openDatabases,
  openExisting,
  SCHEMA_KEY,
  SCHEMA_VERSION,
  type StoreDbs,
} from './store-schema.js';

const EINVAL = osConstants.errno.EINVAL;
const DIR_OPTIONS = { recursive: true, mode: 0o700 } as const;

/** The open environment and its databases. */
export interface OpenEnvironment {
  readonly root: RootDatabase;
  readonly dbs: StoreDbs;
}

/**
 * Opens the store file at `path`; throws StoreError. A writer creates it (and its dir) unless
 * `create` is false: then a missing store is STORE_MISSING, as for a reader.
 */
export function openEnvironment(path: string, readOnly: boolean, create = true): OpenEnvironment {
  // The gate lives in the data dir: a writer that creates the store makes the dir first.
  if (!readOnly && create) attempt(path, () => mkdirSync(dirname(path), DIR_OPTIONS));
  // Held from the checks on: a store being created is seen only once its schema is written
  // (not as an empty file, nor as schema version 0); see store-gate.ts for the main reason.
  const release = holdStoreGate(path);
  try {
    return openGated(path, readOnly, create);
  } finally {
    release();
  }
}

function openGated(path: string, readOnly: boolean, create: boolean): OpenEnvironment {
  if (readOnly) checkReaderPlace(path);
  else checkWriterPlace(path, create);
  let root: RootDatabase;
  try {
    root = open(path, {
      maxDbs: MAX_DBS,
      readOnly,
      noSubdir: true,
      // Both off for the same reason: after a failed commit (a full disk), lmdb-js 3.5 leaves
      // promises of its own behind. With event-turn batching, the batch's promise is rejected
      // and unhandled, which ends the process; with overlapping sync, the flush promise never
      // settles, and close() waits for it forever. Without overlapping sync a commit is durable
      // when its promise resolves; every write here is an explicit transaction anyway.
      eventTurnBatching: false,
      overlappingSync: false,
    });
  } catch (err) {
    throw openError(path, lmdbOpenFailure(err, path), err);
  }
  try {
    return { root, dbs: readOnly ? attachReader(root, path) : attachWriter(root, path) };
  } catch (err) {
    // The open already failed: that error is the one to report, not a failure to close.
    root.close().catch(() => undefined);
    if (err instanceof StoreError) throw err;
    throw openError(path, lmdbOpenFailure(err, path), err);
  }
}

// EINVAL from lmdb-js while opening: a lock table mutex destroyed by a process that closed the
// store at that instant (store-gate.ts), left to happen only beside a process that opens or
// closes it without the gate (an older gateway, or one that waited for the gate in vain).
// lmdb-js also answers EINVAL to a writer opened in a process that holds the store open
// read-only (it shares one environment per file in a process): no process of the gateway does.
function lmdbOpenFailure(err: unknown, path: string): StoreFailure {
  if ((err as { code?: unknown } | null)?.code !== EINVAL) return storeFailure(err, dirname(path));
  return {
    code: 'STORE_BUSY',
    cause:
      `LMDB refused its lock table ${lockOf(path)} (Invalid argument): another process ` +
      'opened or closed the store at the same instant',
  };
}

function attachWriter(root: RootDatabase, path: string): StoreDbs {
  const version = schemaOf(root, path);
  if (version < SCHEMA_VERSION) migrate(root, version);
  const dbs = databases(root, path);
  // The probe: a writer that cannot commit (read-only mount, full disk) fails now, not later.
  dbs.meta.putSync(OPENED_AT_KEY, Math.floor(Date.now() / 1000));
  // Usernames, token ids and use counts: readable by the gateway's user only (LMDB creates the
  // file with the umask's mode).
  chmodSync(path, 0o600);
  return dbs;
}

function attachReader(root: RootDatabase, path: string): StoreDbs {
  const version = schemaOf(root, path);
  if (version < SCHEMA_VERSION) {
    throw new StoreError(
      'STORE_SCHEMA_OLDER',
      `the store at ${path} has schema version ${version}, this gateway reads ${SCHEMA_VERSION}: ` +
        'the supervisor migrates it when it starts, start it first',
    );
  }
  return databases(root, path);
}

function databases(root: RootDatabase, path: string): StoreDbs {
  const dbs = openDatabases(root);
  if (typeof dbs !== 'string') return dbs;
  throw openError(path, { code: 'STORE_CORRUPT', cause: `its database "${dbs}" is missing` });
}

function schemaOf(root: RootDatabase, path: string): number {
  const meta = openExisting<number, string>(root, DB.meta);
  const version: unknown = meta?.get(SCHEMA_KEY) ?? 0;
  if (!Number.isSafeInteger(version) || (version as number) < 0) {
    const cause = `its schema version is not a version number: ${JSON.stringify(version)}`;
    throw openError(path, { code: 'STORE_CORRUPT', cause });
  }
  if ((version as number) > SCHEMA_VERSION) {
    throw new StoreError(
      'STORE_SCHEMA_NEWER',
      `the store at ${path} has schema version ${version}, newer than this gateway knows ` +
        `(${SCHEMA_VERSION}): run the newer gateway that wrote it, or restore an older store`,
    );
  }
  return version as number;
}

function checkWriterPlace(path: string, create: boolean): void {
  const dir = dirname(path);
  if (!create && !statOf(path, path)) throw missing(path, '');
  const stats = statOf(path, path);
  if (stats) {
    checkRegular(path, stats);
    checkAccess(path, path, constants.R_OK | constants.W_OK);
    if (statOf(path, lockOf(path)))
      checkAccess(path, lockOf(path), constants.R_OK | constants.W_OK);
  } else {
    checkAccess(path, dir, constants.W_OK | constants.X_OK);
  }
  const free = attempt(path, () => freeBytes(dir));
  if (free < MIN_FREE_BYTES) {
    const cause = `only ${free} bytes are free on its file system, it needs ${MIN_FREE_BYTES}`;
    throw openError(path, { code: 'STORE_FULL', cause });
  }
  // LMDB writes its meta pages when it creates the file: an empty one was cut (a crash, a full
  // disk). Opening it would start an empty store in silence and forget every revocation.
  if (stats && stats.size === 0) {
    const cause =
      'the file is empty (0 bytes): a crash or a full disk cut it. Restore it from a backup, ' +
      'or remove it to start with an empty store (revocations and token records are lost)';
    throw openError(path, { code: 'STORE_CORRUPT', cause });
  }
  if (stats) checkContent(path);
  attempt(path, () => preallocateLockFile(lockOf(path)));
}

function checkReaderPlace(path: string): void {
  const stats = statOf(path, path);
  if (!stats || stats.size === 0) throw missing(path, stats ? ' (the file is empty)' : '');
  checkRegular(path, stats);
  checkAccess(path, path, constants.R_OK);
  // A reader registers in the lock file (creating it if needed); one that cannot would read
  // pages the writer reuses meanwhile. On a read-only mount there is no writer, and LMDB reads
  // without registering.
  const lock = lockOf(path);
  const where = statOf(path, lock) ? lock : dirname(path);
  try {
    accessSync(where, constants.W_OK);
  } catch (err) {
    const failure = storeFailure(err);
    if (failure.code !== 'STORE_READ_ONLY_FS') {
      throw openError(path, { ...failure, cause: `${failure.cause} (${where})` }, err);
    }
  }
  checkContent(path);
}

function missing(path: string, what: string): StoreError {
  return new StoreError(
    'STORE_MISSING',
    `no store at ${path}${what}; start the gateway once to create it`,
  );
}

function checkRegular(path: string, stats: Stats): void {
  if (!stats.isFile()) {
    throw openError(path, { code: 'STORE_OPEN_FAILED', cause: 'it is not a regular file' });
  }
}

function checkContent(path: string): void {
  const problem = attempt(path, () => lmdbFileProblem(path));
  if (problem) throw openError(path, { code: 'STORE_CORRUPT', cause: problem });
}

// access(2) answers for the process's user as LMDB's own open(2) will: EACCES, EROFS...
function checkAccess(path: string, file: string, mode: number): void {
  try {
    accessSync(file, mode);
  } catch (err) {
    const failure = storeFailure(err);
    const cause = file === path ? failure.cause : `${failure.cause} (${file})`;
    throw openError(path, { ...failure, cause }, err);
  }
}

function statOf(path: string, file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw openError(path, storeFailure(err), err);
  }
}

function lockOf(path: string): string {
  return `${path}-lock`;
}

function attempt<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw openError(path, storeFailure(err), err);
  }
}

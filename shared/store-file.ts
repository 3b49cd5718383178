// Checks made on the store file before lmdb-js sees it. lmdb-js 3.5 crashes the process
// (SIGSEGV, a double free in its open error path) when LMDB refuses the file's header
// (MDB_INVALID, MDB_VERSION_MISMATCH, a short read), and an mmap read or write past what the
// disk holds kills it with SIGBUS: a gateway must refuse such a file with a message instead.
//
// The layout checked is LMDB's (mdb.c, data format 2 as built into lmdb-js): pages 0 and 1 are
// meta pages; each starts with a 24-byte page header (pgno u64, txnid u64, pad u16, flags u16,
// lower/upper u16) and holds an MDB_meta: magic u32 = 0xBEEFC0DE, version u32 (low 16 bits = 2),
// address u64, mapsize u64, then two MDB_db of 48 bytes (free space, main), whose first u32 in
// the first one is the page size and whose last u64 is the root page, then last_pg u64, txnid
// u64. Little-endian on every platform Node supports with lmdb prebuilds.
import { closeSync, fstatSync, openSync, readSync, statfsSync, writeFileSync } from 'node:fs';

const PAGE_HEADER = 24;
const P_META = 0x08;
const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 2;
const META = {
  flags: 18,
  magic: PAGE_HEADER,
  version: PAGE_HEADER + 4,
  pageSize: PAGE_HEADER + 24,
  freeRoot: PAGE_HEADER + 24 + 40,
  mainRoot: PAGE_HEADER + 24 + 48 + 40,
  txnid: PAGE_HEADER + 24 + 96 + 8,
  end: PAGE_HEADER + 24 + 96 + 16,
} as const;
const NO_PAGE = 0xffff_ffff_ffff_ffffn;

/**
 * The problem with the LMDB file at `path`, in plain words, or undefined when its meta pages
 * are sound and the root pages they name lie inside the file. A file damaged past its roots
 * still passes: only a full walk of the tree would tell. Throws the fs error when the file
 * cannot be read.
 *
 * A writer may commit while this reads (an edge opens the store while the supervisor writes
 * the revocations it caught up on): the file's size is taken after its meta pages are read
 * (LMDB writes a commit's pages before the meta page that names them, and a store file only
 * grows, so a sound file's roots always lie inside a size measured afterwards), and a file
 * found wrong is read once more before it is called so (a meta page read while LMDB rewrote
 * it can hold half of each commit's fields). A file that is really damaged stays damaged.
 */
export function lmdbFileProblem(path: string): string | undefined {
  return fileProblem(path) === undefined ? undefined : fileProblem(path);
}

function fileProblem(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const first = readAt(fd, 0, META.end);
    if (first.length < META.end) return 'it is too short to be an LMDB file';
    const problem = metaProblem(first);
    if (problem) return problem;
    const pageSize = first.readUInt32LE(META.pageSize);
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
      return 'it is not an LMDB file (impossible page size)';
    }
    const second = readAt(fd, pageSize, META.end);
    if (second.length < META.end) return 'it is truncated (it ends inside its meta pages)';
    const other = metaProblem(second);
    if (other) return other;
    // After the metas: see above. fstat of the descriptor read, not the path (a file moved
    // in its place meanwhile is not this one).
    const size = fstatSync(fd).size;
    if (size < 2 * pageSize) return 'it is truncated (it ends inside its meta pages)';
    return rootProblem(first, size / pageSize) ?? rootProblem(second, size / pageSize);
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const read = readSync(fd, buffer, 0, length, position);
  return buffer.subarray(0, read);
}

function metaProblem(page: Buffer): string | undefined {
  if ((page.readUInt16LE(META.flags) & P_META) === 0) return 'it is not an LMDB file';
  if (page.readUInt32LE(META.magic) !== MDB_MAGIC) return 'it is not an LMDB file';
  const version = page.readUInt32LE(META.version) & 0xffff;
  if (version !== MDB_DATA_VERSION) {
    return `it was written by an incompatible LMDB version (data format ${version})`;
  }
  return undefined;
}

// Only a meta that some commit wrote (txnid > 0) names roots; a fresh file has none.
function rootProblem(meta: Buffer, pages: number): string | undefined {
  if (meta.readBigUInt64LE(META.txnid) === 0n) return undefined;
  for (const at of [META.freeRoot, META.mainRoot]) {
    const root = meta.readBigUInt64LE(at);
    if (root !== NO_PAGE && root >= BigInt(Math.floor(pages))) {
      return `it is truncated (page ${root} is past its end)`;
    }
  }
  return undefined;
}

/**
 * A writer refuses to open with less free space than this: LMDB maps its lock file, and a
 * page the disk cannot hold kills the process (SIGBUS) instead of failing a call.
 */
export const MIN_FREE_BYTES = 1024 * 1024;

/**
 * Bytes a writer may still use on the file system holding `dir` (the root reserve counts when
 * running as root, as it does for the kernel).
 */
export function freeBytes(dir: string): number {
  const fs = statfsSync(dir);
  const blocks = process.getuid?.() === 0 ? fs.bfree : fs.bavail;
  return blocks * fs.bsize;
}

/** True when `dir`'s file system has less than MIN_FREE_BYTES free (false if statfs fails). */
export function isNearlyFull(dir: string): boolean {
  try {
    return freeBytes(dir) < MIN_FREE_BYTES;
  } catch {
    return false; // statfs failed too: the caller keeps the cause it had
  }
}

// The size LMDB gives the lock file for lmdb-js's 126 readers (sizeof(MDB_txninfo) + 125
// MDB_reader slots, observed with lmdb 3.5.6). Another size is harmless: LMDB extends a
// smaller file and maps a larger one whole.
const LOCK_FILE_BYTES = 8272;

/**
 * Creates `lockPath` filled with zeros when it does not exist yet, as LMDB would but with its
 * blocks allocated: LMDB only ftruncates it (a sparse file), so a reader slot written later on
 * a full disk would kill that process with SIGBUS, and a failed ftruncate (a file size limit)
 * crashes lmdb-js's open. Never touches an existing file: another process may be using it.
 * Throws the fs error (EROFS, ENOSPC, EFBIG...).
 */
export function preallocateLockFile(lockPath: string): void {
  try {
    writeFileSync(lockPath, Buffer.alloc(LOCK_FILE_BYTES), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

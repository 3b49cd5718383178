// The store's gate: `<store>-gate`, a file that a process creates (O_EXCL) before it opens or
// closes the store and removes afterwards, so that no two processes open or close it at once.
//
// Why (attack 24): LMDB as built into lmdb-js 3.5 (Linux: robust pthread mutexes in the lock
// file) destroys the lock file's mutexes when a closing process finds itself the last user
// (mdb_env_close0 takes the exclusive fcntl lock, then pthread_mutex_destroy). An opener that
// failed to take that same exclusive lock a moment before, because the closer still held its
// shared one, then waits for a shared lock, gets it, and does not initialise the mutexes: its
// first transaction locks a destroyed mutex, glibc answers EINVAL, and lmdb-js reports a bare
// "Invalid argument" (its later messages, "No transaction to renew", "Attempting to setup locks
// after open", are stale texts of that library). The failed open also stays open in that
// process, holding its shared lock, so every later open there fails the same way, and so does
// every open of any other process until both exit. Upstream LMDB removed that destroy
// (ITS#10095, LMDB 0.9.32); lmdb-js 3.5.6 still has it. Measured: two processes opening and
// closing a stopped gateway's store in a loop, each 1.5 s: one failed within the first 100
// opens in most runs (rw + ro, rw + rw), then every open of both failed.
//
// Node has no flock(2), hence a file created with O_EXCL holding the owner's pid. A gate left
// by a process that died holding it (kill -9 in the milliseconds of an open) is taken over once
// its pid is gone or it is older than STALE_MS (two processes taking over the same stale gate
// at once may both go on: the race above, as rare as a kill -9 in an open). A process that
// cannot create the gate (a reader on a read-only mount, a data dir it cannot write), or cannot
// remove a stale one, opens without it, as before.
//
// The gate is read as something anyone who can write the data dir may have put there (attack
// 24b): by lstat, then at most a few bytes, never following a link nor waiting on a FIFO. A
// directory, link, FIFO or device is no process's gate: it is stale. A gate this process cannot
// read (left by root's CLI, mode 0600) is judged by its age alone.
import {
  closeSync,
  constants,
  lstatSync,
  openSync,
  readSync,
  type Stats,
  unlinkSync,
  writeFileSync,
} from 'node:fs';

// An open takes milliseconds (a writer's migration of a large store, seconds); past this, the
// process opens without the gate rather than not at all.
const WAIT_MS = 10_000;
const STALE_MS = 60_000;

// Gates this process holds, with how many opens/closes of its own hold each: within a process
// lmdb-js shares one environment per file, so they need not wait for each other.
const held = new Map<string, number>();
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits until this process holds the gate of the store file `path` (at most WAIT_MS), and
 * returns the function that lets it go. Never throws: without a gate, the open goes on as
 * LMDB alone would do it.
 */
export function holdStoreGate(path: string): () => void {
  const gate = `${path}-gate`;
  const count = held.get(gate) ?? 0;
  if (count === 0 && !acquire(gate)) return () => undefined;
  held.set(gate, count + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    release(gate);
  };
}

function acquire(gate: string): boolean {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      writeFileSync(gate, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    }
    const state = stateOf(gate);
    // A stale gate this process cannot remove would otherwise be retried without a pause.
    if (state === 'stale' && !removeGate(gate)) return false;
    if (Date.now() >= deadline) return false;
    if (state === 'held') Atomics.wait(sleeper, 0, 0, 1 + Math.random() * 4);
  }
}

function release(gate: string): void {
  const count = (held.get(gate) ?? 1) - 1;
  if (count > 0) {
    held.set(gate, count);
    return;
  }
  held.delete(gate);
  removeGate(gate);
}

function stateOf(gate: string): 'held' | 'stale' | 'gone' {
  let stats: Stats;
  try {
    stats = lstatSync(gate);
  } catch {
    return 'gone'; // the next attempt creates it
  }
  if (!stats.isFile() || Date.now() - stats.mtimeMs > STALE_MS) return 'stale';
  // The holder's pid is written just after the file is created: an empty gate is a live one,
  // and so is one this process cannot read (until STALE_MS).
  const pid = Number.parseInt(readHead(gate), 10);
  return Number.isSafeInteger(pid) && pid > 0 && !isAlive(pid) ? 'stale' : 'held';
}

// The first bytes of the gate: a pid and a newline. O_NONBLOCK: a FIFO swapped in after the
// lstat answers at once instead of waiting for a writer.
function readHead(gate: string): string {
  let fd: number;
  try {
    fd = openSync(gate, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    const head = Buffer.alloc(24);
    return head.toString('latin1', 0, readSync(fd, head, 0, head.length, 0));
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}

function isAlive(pid: number): boolean {
  // Our own pid on a gate this process does not hold: one it failed to remove.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

// False when the gate is still there: a directory, or a dir this process cannot write (the
// next opener that can judges it stale by its pid or age).
function removeGate(gate: string): boolean {
  try {
    unlinkSync(gate);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT'; // a process took it over as stale
  }
}

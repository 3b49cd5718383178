import type { AnswerValues } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import type { LoginBan, LoginBanKind, Store } from '../shared/store.js';

/** `login_lockout` (config.json), in the guard's units. */
export interface LockoutSettings {
  /** Failures within findTimeMs that ban; 0 turns the guard off. */
  maxFailures: number;
  findTimeMs: number;
  banTimeMs: number;
  /**
   * The configured usernames: only these appear in the ban log line. A name that is none of
   * them is most often a password typed into the username field, so it is never logged.
   */
  knownUsers: ReadonlySet<string>;
}

/** What the ban log line says instead of a name that is not a configured user. */
export const UNKNOWN_USER = '(not a configured user)';

/** Failure counters kept at most (users and addresses together). */
export const MAX_COUNTERS = 100_000;
/** Attempts waiting for a slot at most, node-wide. */
export const MAX_WAITING = 10_000;
/** An attempt waits this long for a slot, then is refused as locked out for a second. */
const WAIT_MS = 10_000;
/** An admitted attempt whose result never came (its edge died) is released after this. */
const TICKET_MS = 120_000;
const SWEEP_MS = 10_000;
/** A table found full of active counters is not rescanned for this long. */
const FULL_RESCAN_MS = 100;
/** The "table full" warning is logged at most this often. */
const FULL_LOG_MS = 10_000;

/** How an admitted attempt ended, as its edge reports it. */
export type AttemptOutcome = 'success' | 'failure' | 'aborted';

interface Counter {
  /** Times (ms) of recent failures, oldest first, at most maxFailures of them. */
  failures: number[];
  /** Attempts admitted and not yet reported. */
  inflight: number;
  /** The subject (user or address) of the last failure on the other kind, for the ban log. */
  lastOther: string | null;
}

interface Ticket {
  user: string | null;
  ip: string;
  at: number;
}

interface Waiter {
  user: string | null;
  ip: string;
  at: number;
  resolve: (answer: AnswerValues['login-attempt']) => void;
}

/**
 * Brute-force protection of password and admin-token checks, for the whole node (the
 * supervisor holds it; edges ask before every check). Failed checks are counted per username
 * and per client address; at `maxFailures` within `findTimeMs` the user (or the address) is
 * banned for `banTimeMs`: bans are written to the store, so they hold across edges and
 * restarts, and `proxyauth unban` lifts them (the store is read on every attempt).
 *
 * Exact: an attempt is admitted only while the failures already counted plus the attempts in
 * flight stay under `maxFailures`, for the user and for the address; others wait for a slot.
 * So however many connections a guesser opens, at most `maxFailures` guesses are checked per
 * ban period. A success forgets the user's failures (not the address's: an attacker with an
 * account of their own must not reset their address's count by logging into it).
 *
 * Memory: MAX_COUNTERS counters. Idle ones (no failure in the window, nothing in flight) are
 * dropped by the sweep and, when the table is full, down to 90% of it; a counter that holds
 * failures is never dropped (its subject would get fresh guesses), so when every counter is
 * active an attempt from a new user or address is refused (429 for a second, logged): fail
 * closed. MAX_WAITING waiting attempts (beyond, refused the same way). Bans themselves are
 * bounded by the rate of Argon2 checks: each one costs a failed check.
 */
export class LoginGuard {
  readonly #store: Store;
  readonly #log: Logger;
  #settings: LockoutSettings;
  readonly #counters = new Map<string, Counter>();
  readonly #tickets = new Map<number, Ticket>();
  #waiting: Waiter[] = [];
  /** Bans written but not yet committed: checked with the store's. */
  readonly #pendingBans = new Map<string, number>();
  #nextTicket = 1;
  readonly #maxCounters: number;
  #fullUntil = Number.NEGATIVE_INFINITY;
  #lastFullLog = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  constructor(options: {
    store: Store;
    log: Logger;
    settings: LockoutSettings;
    /** Wall-clock ms (bans are unix times in the store); Date.now unless a test drives time. */
    now?: () => number;
    /** MAX_COUNTERS unless a test wants a small table. */
    maxCounters?: number;
  }) {
    this.#maxCounters = options.maxCounters ?? MAX_COUNTERS;
    this.#store = options.store;
    this.#log = options.log;
    this.#settings = options.settings;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    this.#timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** A reload's settings; counters and bans are kept. */
  configure(settings: LockoutSettings): void {
    this.#settings = settings;
    this.#wake();
  }

  /** Counters held now (for tests and the memory bound). */
  get counters(): number {
    return this.#counters.size;
  }

  /**
   * Admits a check of `user`'s password (null: the admin token) from the client keyed `ip`:
   * `{ticket}` to report with result(), or `{lockedMs}` while the user or address is banned.
   * Waits while the attempts in flight fill the remaining failures.
   */
  attempt(user: string | null, ip: string): Promise<AnswerValues['login-attempt']> {
    if (this.#settings.maxFailures === 0) return Promise.resolve({ ticket: 0, lockedMs: 0 });
    const now = this.#now();
    const decided = this.#decide(user, ip, now);
    if (decided !== undefined) return Promise.resolve(decided);
    if (this.#waiting.length >= MAX_WAITING) {
      return Promise.resolve({ ticket: 0, lockedMs: 1_000 });
    }
    return new Promise((resolve) => this.#waiting.push({ user, ip, at: now, resolve }));
  }

  /** Records how an admitted attempt ended; bans when the failures reach the limit. */
  result(ticket: number, outcome: AttemptOutcome): void {
    const t = this.#tickets.get(ticket);
    if (t === undefined) return;
    this.#tickets.delete(ticket);
    const now = this.#now();
    // Counters with an attempt in flight are never dropped: these exist.
    const user = t.user === null ? undefined : this.#counters.get(`user ${t.user}`);
    const ip = this.#counters.get(`ip ${t.ip}`);
    if (user) user.inflight = Math.max(0, user.inflight - 1);
    if (ip) ip.inflight = Math.max(0, ip.inflight - 1);
    if (outcome === 'success' && user) user.failures = [];
    if (outcome === 'failure') {
      if (user && t.user !== null) this.#fail('user', t.user, user, t.ip, now);
      if (ip) this.#fail('ip', t.ip, ip, t.user, now);
    }
    this.#wake();
  }

  /** Releases lost tickets, refuses attempts that waited too long, drops idle counters. */
  sweep(now = this.#now()): void {
    for (const [id, t] of this.#tickets) if (now - t.at >= TICKET_MS) this.result(id, 'aborted');
    const still: Waiter[] = [];
    for (const w of this.#waiting) {
      if (now - w.at >= WAIT_MS) w.resolve({ ticket: 0, lockedMs: 1_000 });
      else still.push(w);
    }
    this.#waiting = still;
    for (const [key, c] of this.#counters) {
      if (this.#idle(c, now)) this.#counters.delete(key);
    }
  }

  #decide(user: string | null, ip: string, now: number): AnswerValues['login-attempt'] | undefined {
    const lockedMs = Math.max(
      user === null ? 0 : this.#banLeft('user', user, now),
      this.#banLeft('ip', ip, now),
    );
    if (lockedMs > 0) return { ticket: 0, lockedMs };
    const u = user === null ? undefined : this.#counter('user', user);
    const i = this.#counter('ip', ip);
    // No room to count this attempt: refused, never checked uncounted (fail closed).
    if (i === undefined || (user !== null && u === undefined))
      return { ticket: 0, lockedMs: 1_000 };
    if ((u && !this.#fits(u, now)) || !this.#fits(i, now)) return undefined;
    if (u) u.inflight++;
    i.inflight++;
    const ticket = this.#nextTicket++;
    this.#tickets.set(ticket, { user, ip, at: now });
    return { ticket, lockedMs: 0 };
  }

  #wake(): void {
    if (this.#waiting.length === 0) return;
    const now = this.#now();
    const still: Waiter[] = [];
    for (const w of this.#waiting) {
      const decided =
        this.#settings.maxFailures === 0
          ? { ticket: 0, lockedMs: 0 }
          : this.#decide(w.user, w.ip, now);
      if (decided === undefined) still.push(w);
      else w.resolve(decided);
    }
    this.#waiting = still;
  }

  #fits(c: Counter, now: number): boolean {
    prune(c, now - this.#settings.findTimeMs);
    return c.failures.length + c.inflight < this.#settings.maxFailures;
  }

  #idle(c: Counter, now: number): boolean {
    prune(c, now - this.#settings.findTimeMs);
    return c.inflight === 0 && c.failures.length === 0;
  }

  /** The counter of a subject, created if there is room; undefined when the table is full. */
  #counter(kind: LoginBanKind, subject: string): Counter | undefined {
    const key = `${kind} ${subject}`;
    let c = this.#counters.get(key);
    if (c === undefined) {
      if (this.#counters.size >= this.#maxCounters && !this.#makeRoom()) return undefined;
      c = { failures: [], inflight: 0, lastOther: null };
    } else {
      this.#counters.delete(key);
    }
    this.#counters.set(key, c);
    return c;
  }

  /**
   * Drops idle counters (no failure in the window, nothing in flight) down to the low-water
   * mark. A counter that holds failures is never dropped: that would give its subject fresh
   * guesses. False when nothing could be dropped; the table is then not rescanned for a while.
   */
  #makeRoom(): boolean {
    const now = this.#now();
    if (now < this.#fullUntil) return false;
    const target = Math.floor(this.#maxCounters * 0.9);
    for (const [key, c] of this.#counters) {
      if (this.#counters.size <= target) break;
      if (this.#idle(c, now)) this.#counters.delete(key);
    }
    if (this.#counters.size < this.#maxCounters) return true;
    this.#fullUntil = now + FULL_RESCAN_MS;
    if (now - this.#lastFullLog >= FULL_LOG_MS) {
      this.#lastFullLog = now;
      this.#log.warn('lockout table full: attempts from new users and addresses are refused', {
        counters: this.#counters.size,
      });
    }
    return false;
  }

  #fail(kind: LoginBanKind, subject: string, c: Counter, other: string | null, now: number): void {
    c.failures.push(now);
    c.lastOther = other;
    prune(c, now - this.#settings.findTimeMs);
    if (c.failures.length < this.#settings.maxFailures) return;
    const failures = c.failures.length;
    c.failures = [];
    const bannedAt = Math.floor(now / 1000);
    // Rounded down: a ban never outlasts ban_time (Retry-After at most ban_time).
    const until = Math.floor((now + this.#settings.banTimeMs) / 1000);
    const ban: LoginBan = { kind, subject, until, bannedAt, failures };
    const key = `${kind} ${subject}`;
    this.#pendingBans.set(key, until);
    const user = kind === 'user' ? subject : other;
    this.#log.warn('login ban', {
      kind,
      user:
        user === null ? '(admin token)' : this.#settings.knownUsers.has(user) ? user : UNKNOWN_USER,
      ip: kind === 'ip' ? subject : (other ?? undefined),
      failures,
      until: new Date(until * 1000).toISOString(),
    });
    this.#store.ban(ban).then(
      () => {
        if (this.#pendingBans.get(key) === until) this.#pendingBans.delete(key);
      },
      (err: Error) => {
        // Kept in memory for its whole time: it still holds on this node until a restart.
        this.#log.error('could not store a login ban; it holds until a restart', {
          kind,
          reason: err.message,
        });
      },
    );
  }

  /** Ms left of the ban of a subject (the store's, or one still being written), 0 if none. */
  #banLeft(kind: LoginBanKind, subject: string, now: number): number {
    const key = `${kind} ${subject}`;
    const pending = this.#pendingBans.get(key);
    let until = pending ?? 0;
    if (pending !== undefined && pending * 1000 <= now) {
      this.#pendingBans.delete(key);
      until = 0;
    }
    const stored = this.#store.getBan(kind, subject, Math.floor(now / 1000));
    if (stored !== undefined) until = Math.max(until, stored.until);
    return Math.max(0, until * 1000 - now);
  }
}

/** Drops failures before `since` (they are kept oldest first). */
function prune(c: Counter, since: number): void {
  let drop = 0;
  while (drop < c.failures.length && c.failures[drop]! <= since) drop++;
  if (drop > 0) c.failures.splice(0, drop);
}

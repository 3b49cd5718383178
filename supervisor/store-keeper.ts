import type { AnswerValues, RevocationChange } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import type { Store, TokenRecord } from '../shared/store.js';
import { checkRecord } from '../shared/store-args.js';
import type { SyncRecord } from '../shared/sync-record.js';
import type { Fleet } from './fleet.js';
import { applyTotpChange } from './totp-changes.js';

/** How long the supervisor waits for every edge to apply a revocation change. */
const APPLY_TIMEOUT_MS = 2_000;
/** Expired token records and revocations leave the store this often. */
const PURGE_MS = 60_000;
/**
 * Issued tokens wait at most this long to be written together, in one commit. Measured
 * (2026-12-01, this machine): a commit of one record costs ~0.95 ms of the supervisor's CPU
 * (LMDB's synced commit: most of it the fdatasync), one of ten ~1.5 ms; at the bench's ~90
 * logins/s one commit per login was ~5% of a login's CPU.
 */
export const TOKEN_BATCH_MS = 50;
/** A batch is written at once when it reaches this many records. */
export const TOKEN_BATCH_MAX = 256;

/** What the keeper needs of the fleet. */
export type KeeperFleet = Pick<Fleet, 'broadcast' | 'on' | 'answer'>;

/** The Redis bus's hook (supervisor/revocation-bus.ts): on when `redis` is configured. */
export interface KeeperSync {
  /** This node's id, written as the origin of its changes. */
  origin: string;
  /** Called after a local change was committed with its outbox entry. */
  queued: () => void;
  /** The clock of sync records (ms); Date.now by default. */
  nowMs?: () => number;
}

/**
 * The supervisor's side of the store: it is the store's only writer. Edges report issued
 * tokens and use counts (events) and ask for revocation changes; a change is committed to the
 * store first, then sent to every edge, and only then answered, so a 200 from the admin API
 * means durable and in force on every edge. Expired records are purged on a timer.
 */
export class StoreKeeper {
  readonly #store: Store;
  readonly #fleet: KeeperFleet;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  /** Writes in flight, awaited by close(). */
  readonly #writes = new Set<Promise<unknown>>();
  #failing = false;
  /** Revocation changes, one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #now: () => number;
  readonly #sync: KeeperSync | undefined;
  /** Issued tokens waiting for their batch's commit. */
  #issued: TokenRecord[] = [];
  #issuedTimer: NodeJS.Timeout | undefined;
  /** Called with every change put in force (local or from another node): the node's metrics. */
  onChange: ((change: RevocationChange) => void) | undefined;

  constructor(
    store: Store,
    fleet: KeeperFleet,
    log: Logger,
    now: () => number = () => Math.floor(Date.now() / 1000),
    sync?: KeeperSync,
  ) {
    this.#store = store;
    this.#fleet = fleet;
    this.#log = log;
    this.#now = now;
    this.#sync = sync;
  }

  /** Starts serving the edges and the purge timer. */
  start(): void {
    this.#fleet.on('token-issued', (event) => this.#recordIssued(event.token));
    this.#fleet.on('token-uses', (event) => {
      const uses = event.uses.map(({ count, ...record }) => ({ record, count }));
      this.#track(this.#store.addUses(uses), 'add token uses');
    });
    this.#fleet.answer('change-revocations', (ask) => this.change(ask.change));
    this.#fleet.answer('csrf-spend', (ask) => this.spendCsrf(ask.nonce, ask.exp));
    this.#fleet.answer('totp-change', (ask) => {
      const done = applyTotpChange(this.#store, ask.change, this.#log);
      this.#track(done, `write a TOTP change (${ask.change.op})`);
      return done;
    });
    this.#timer = setInterval(() => void this.purge(), PURGE_MS);
    this.#timer.unref();
  }

  /** Removes expired token records and revocations now. */
  async purge(nowSeconds = this.#now()): Promise<void> {
    const done = this.#store.purge(nowSeconds);
    this.#track(done, 'purge expired records');
    const removed = await done.catch(() => undefined);
    if (removed && removed.tokens + removed.revocations + removed.bans + removed.csrfNonces > 0) {
      this.#log.info('purged expired records', { ...removed });
    }
  }

  /**
   * Spends a CSRF token (csrf_single_use): records its nonce until `exp` unless it was spent
   * before, in one write transaction, and resolves with `fresh`. Rejects when the store cannot
   * be written: the edge then refuses the request (fail closed), it never guesses.
   */
  async spendCsrf(nonce: string, exp: number): Promise<AnswerValues['csrf-spend']> {
    const write = this.#store.spendCsrfNonce(nonce, exp);
    this.#track(write, 'record a spent CSRF token');
    return { fresh: await write };
  }

  /**
   * Stops the timer, writes the issued tokens still waiting, waits for the writes in flight,
   * then closes the store.
   */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#flushIssued();
    await Promise.allSettled([...this.#writes]);
    await this.#store.close();
  }

  /**
   * Commits `change` to the store, then applies it on every edge (waiting for each, at most
   * APPLY_TIMEOUT_MS; an edge that misses it reads the store when it restarts, and the answer
   * counts it as unconfirmed). Changes are carried out one at a time, each against what the
   * store holds: a revocation is never shortened by a later one (lift it instead), a user's
   * "not before" moves past the previous one (a login dated just after a first revocation is
   * caught by a second one in the same second), and a lift finds only what is in force.
   * Rejects (nothing sent to the edges) when the store write fails.
   */
  change(change: RevocationChange): Promise<AnswerValues['change-revocations']> {
    const next = this.#queue.then(() => this.#apply(change));
    this.#queue = next.catch(() => {});
    return next;
  }

  /**
   * Applies a sync record from another node (the Redis bus), in turn with local changes: the
   * store first (store.applySyncRecord: the same merge rules, nothing queued for publishing),
   * then the edges. Resolves with the change the edges were sent, or undefined when the record
   * changed nothing here. Rejects when the store write fails.
   */
  applyRemote(record: SyncRecord): Promise<RevocationChange | undefined> {
    const next = this.#queue.then(async () => {
      const write = this.#store.applySyncRecord(record, this.#now());
      this.#track(write, 'apply a revocation from another node');
      const change = await write;
      if (change !== undefined) await this.#tellEdges(change);
      return change;
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #apply(requested: RevocationChange): Promise<AnswerValues['change-revocations']> {
    const store = this.#store;
    const now = this.#now();
    const sync = this.#sync && {
      origin: this.#sync.origin,
      atMs: (this.#sync.nowMs ?? Date.now)(),
      nowSeconds: now,
    };
    let change = requested;
    let changed = true;
    const write = (async () => {
      switch (requested.op) {
        case 'revoke-token': {
          const old = store.getTokenRevocation(requested.tokenId);
          if (old !== undefined && old.until > now && old.until > requested.until) {
            change = { ...requested, until: old.until };
          }
          await store.revokeToken(change as typeof requested, sync);
          break;
        }
        case 'revoke-user': {
          const old = store.getUserRevocation(requested.user);
          if (old !== undefined && old.until > now) {
            change = {
              ...requested,
              notBefore: Math.max(requested.notBefore, old.notBefore + 1),
              until: Math.max(requested.until, old.until),
            };
          }
          await store.revokeUser(change as typeof requested, sync);
          break;
        }
        case 'lift-token': {
          const old = store.getTokenRevocation(requested.tokenId);
          changed = old !== undefined && old.until > now;
          // One that ended is gone from the edges already: drop it, report nothing lifted.
          if (old !== undefined) await store.liftToken(requested.tokenId, sync);
          break;
        }
        case 'lift-user': {
          const old = store.getUserRevocation(requested.user);
          changed = old !== undefined && old.until > now;
          if (old !== undefined) await store.liftUser(requested.user, sync);
          break;
        }
      }
    })();
    this.#track(write, `write a revocation change (${requested.op})`);
    await write;
    if (!changed) return { changed, change, unconfirmed: 0 };
    this.#sync?.queued();
    const unconfirmed = await this.#tellEdges(change);
    this.#log.info('revocation change in force', { op: change.op, unconfirmed });
    return { changed, change, unconfirmed };
  }

  /** Sends a committed change to every edge; resolves with how many did not confirm it. */
  async #tellEdges(change: RevocationChange): Promise<number> {
    this.onChange?.(change);
    const results = await this.#fleet.broadcast(
      { type: 'revocations', changes: [change] },
      APPLY_TIMEOUT_MS,
    );
    let unconfirmed = 0;
    for (const r of results) {
      if (r.ok) continue;
      unconfirmed++;
      this.#log.warn(
        'an edge did not confirm a revocation change (it reads the store on restart)',
        {
          slot: r.slot,
          reason: r.error.message,
        },
      );
    }
    return unconfirmed;
  }

  /**
   * Queues an issued token's record: written with the others of its batch, TOKEN_BATCH_MS after
   * the first one at the latest (the edge answered the login already: a record is for stats and
   * listings, and a crash loses at most that window of them, as it loses the last second of
   * use counts).
   */
  #recordIssued(token: TokenRecord): void {
    // Checked alone: one bad record must not fail the commit of the others.
    try {
      checkRecord(token);
    } catch (err) {
      this.#log.error('store write refused: an issued token record is invalid', {
        reason: (err as Error).message,
      });
      return;
    }
    this.#issued.push(token);
    if (this.#issued.length >= TOKEN_BATCH_MAX) this.#flushIssued();
    else this.#issuedTimer ??= setTimeout(() => this.#flushIssued(), TOKEN_BATCH_MS);
  }

  #flushIssued(): void {
    clearTimeout(this.#issuedTimer);
    this.#issuedTimer = undefined;
    if (this.#issued.length === 0) return;
    const records = this.#issued;
    this.#issued = [];
    const what =
      records.length === 1 ? 'record an issued token' : `record ${records.length} issued tokens`;
    this.#track(this.#store.recordTokens(records), what);
  }

  /** Keeps a write for close(); a failure is logged once until a write succeeds again. */
  #track(write: Promise<unknown>, what: string): void {
    this.#writes.add(write);
    write.then(
      () => {
        this.#writes.delete(write);
        if (this.#failing) this.#log.info('store writes work again', { path: this.#store.path });
        this.#failing = false;
      },
      (err: Error) => {
        this.#writes.delete(write);
        if (!this.#failing) {
          this.#log.error(`store write failed: could not ${what}`, { reason: err.message });
        }
        this.#failing = true;
      },
    );
  }
}

import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl, redactRedisUrl } from '../conf/redis-url.js';
import type { Logger } from '../shared/log.js';
import type { OutboxEntry, Store } from '../shared/store.js';
import type { SyncRecord } from '../shared/sync-record.js';
import { MERGE_SCRIPT } from './redis-merge-script.js';
import {
  channelName,
  implausibleRecord,
  parseMergeReply,
  parseMessage,
  parseRecord,
  recordKey,
} from './redis-records.js';

/** Outbox entries and reconcile records sent per round trip. */
const BATCH = 256;
/** SCAN's COUNT hint during catch-up. */
const SCAN_COUNT = 500;
/** At most this many distinct kinds of malformed input are logged (each once). */
const MAX_PROBLEM_KINDS = 32;

/** What the bus needs of the store (the supervisor's writer handle). */
export type BusStore = Pick<Store, 'syncOutbox' | 'removeSyncOutbox' | 'syncRecordsInForce'>;

/** What the bus needs of the keeper: remote records go through its merge rules and queue. */
export interface BusKeeper {
  applyRemote(record: SyncRecord): Promise<unknown>;
}

export interface RevocationBusOptions {
  /** config.json's `redis` (validated: conf/redis-url.ts). */
  url: string;
  /** config.json's `redis_prefix`. */
  prefix: string;
  /** This node's id (16 hex digits): its own messages are skipped. */
  nodeId: string;
  store: BusStore;
  keeper: BusKeeper;
  log: Logger;
  /** Extra TLS options for `rediss://` (tests: a private CA); the system's CAs otherwise. */
  tls?: ConnectionOptions;
  /** Reconnect delays: `minMs` doubling up to `maxMs` (default 100 ms to 5 s). */
  retry?: { minMs: number; maxMs: number };
  /** Unix seconds; the clock by default. */
  now?: () => number;
}

type MergeClient = Redis & {
  proxyauthMerge(key: string, ...args: string[]): Promise<unknown>;
};

/**
 * The Redis revocation bus (README "Several nodes"): publishes this node's revocation changes
 * (the store's outbox, filled in the same transaction as each change) through an atomic merge
 * script, and applies other nodes' changes through the keeper. Two connections: one for
 * commands, one subscribed to the channel. On every (re)connect of either: subscribe, publish
 * the outbox, write every record in force back (re-seeds a Redis that came back empty), then
 * SCAN every record key and apply it (catch-up). Redis never blocks a request or a revocation:
 * commands fail fast while it is down (no offline queue), the outbox is the queue, the outage is
 * logged once and its end once.
 */
export class RevocationBus {
  readonly #o: RevocationBusOptions;
  readonly #cmd: MergeClient;
  readonly #sub: Redis;
  readonly #channel: string;
  readonly #redacted: string;
  readonly #now: () => number;
  readonly #problems = new Set<string>();
  #down = false;
  #everUp = false;
  #closed = false;
  /** One sync task at a time; a request made while one runs is served by a rerun. */
  #running: Promise<void> | undefined;
  #wanted: 'flush' | 'full' | undefined;

  constructor(options: RevocationBusOptions) {
    this.#o = options;
    this.#channel = channelName(options.prefix);
    this.#redacted = redactRedisUrl(options.url);
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    const base = connectionOptions(options);
    this.#cmd = new Redis(base) as MergeClient;
    this.#cmd.defineCommand('proxyauthMerge', { numberOfKeys: 1, lua: MERGE_SCRIPT });
    this.#sub = new Redis(base);
  }

  /** Connects (in the background: start never waits for Redis). */
  start(): void {
    this.#cmd.on('ready', () => {
      if (this.#down) this.#o.log.info('redis reachable again: catching up', this.#fields());
      else if (!this.#everUp) this.#o.log.info('redis revocation bus connected', this.#fields());
      this.#down = false;
      this.#everUp = true;
      this.#request('full');
    });
    this.#cmd.on('error', (err: Error) => this.#outage(err.message));
    this.#cmd.on('close', () => this.#outage('connection closed'));
    this.#sub.on('ready', () => {
      this.#sub.subscribe(this.#channel).then(
        () => this.#request('full'),
        (err: Error) => this.#problem(`subscribe refused: ${err.message}`),
      );
    });
    // The command connection reports the outage; the subscriber's errors are the same outage.
    this.#sub.on('error', () => {});
    this.#sub.on('message', (_channel: string, text: string) => this.#onMessage(text));
    void this.#cmd.connect().catch(() => {});
    void this.#sub.connect().catch(() => {});
  }

  /** Publishes the outbox now, when connected (the keeper calls it after each local change). */
  flush(): void {
    this.#request('flush');
  }

  /** True while the command connection is ready. */
  get connected(): boolean {
    return this.#cmd.status === 'ready';
  }

  /** Disconnects; waits for the sync task in flight. What is left in the outbox stays there. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cmd.disconnect();
    this.#sub.disconnect();
    await this.#running?.catch(() => {});
  }

  /**
   * Resolves once no sync task runs or is wanted (tests and the benchmark wait on it).
   */
  async idle(): Promise<void> {
    while (this.#running) await this.#running.catch(() => {});
  }

  #request(kind: 'flush' | 'full'): void {
    if (this.#closed) return;
    if (this.#wanted !== 'full') this.#wanted = kind;
    if (this.#running) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
    });
  }

  async #drain(): Promise<void> {
    while (this.#wanted && !this.#closed) {
      const kind = this.#wanted;
      this.#wanted = undefined;
      if (!this.connected) return;
      try {
        await this.#publishOutbox();
        if (kind === 'full') {
          if (this.#sub.status !== 'ready') return; // its 'ready' asks again, subscribed first
          await this.#reconcile();
          await this.#catchUp();
        }
      } catch (err) {
        // A command failed: Redis went away mid-way (logged by the connection's events) or
        // refused a command (ACL): logged once per kind. The next ready runs it all again.
        if (this.connected) this.#problem(`redis command failed: ${(err as Error).message}`);
        return;
      }
    }
  }

  /** Sends the outbox, oldest first; removes each batch once Redis accepted all of it. */
  async #publishOutbox(): Promise<void> {
    for (;;) {
      const entries: OutboxEntry[] = this.#o.store.syncOutbox(BATCH);
      if (entries.length === 0) return;
      const replies = await Promise.all(entries.map((e) => this.#merge(e.record)));
      await this.#o.store.removeSyncOutbox(entries.map((e) => e.seq));
      // What Redis holds now may include changes this node missed: join it back.
      await Promise.all(replies.map((r) => (r ? this.#applyRemote(r) : undefined)));
    }
  }

  /** Writes every record in force here back through the merge script. */
  async #reconcile(): Promise<void> {
    const records = this.#o.store.syncRecordsInForce(this.#now(), this.#o.nodeId);
    for (let i = 0; i < records.length; i += BATCH) {
      await Promise.all(records.slice(i, i + BATCH).map((r) => this.#merge(r)));
    }
  }

  /** Applies every record key in Redis (what this node missed while away). */
  async #catchUp(): Promise<void> {
    const { prefix } = this.#o;
    let cursor = '0';
    do {
      const [next, keys] = await this.#cmd.scan(
        cursor,
        'MATCH',
        `${prefix}rev:*`,
        'COUNT',
        SCAN_COUNT,
      );
      cursor = next;
      const hashes = await Promise.all(keys.map((k) => this.#cmd.hgetall(k)));
      const applied: Promise<void>[] = [];
      keys.forEach((key, i) => {
        const hash = hashes[i];
        if (hash === undefined || Object.keys(hash).length === 0) return; // expired meanwhile
        const parsed = parseRecord(prefix, key, hash);
        if ('problem' in parsed) this.#problem(`dropped ${parsed.problem}`);
        else applied.push(this.#applyRemote(parsed));
      });
      await Promise.all(applied);
    } while (cursor !== '0' && !this.#closed);
  }

  /** Runs the merge script; resolves with the record Redis holds after it. */
  async #merge(record: SyncRecord): Promise<SyncRecord | undefined> {
    if (record.expiresAt <= this.#now()) return undefined;
    const reply = await this.#cmd.proxyauthMerge(
      recordKey(this.#o.prefix, record.kind, record.subject),
      String(record.revokedAt),
      String(record.liftedAt),
      String(record.until),
      String(record.notBefore),
      String(record.expiresAt),
      record.origin,
      this.#channel,
      this.#o.nodeId,
      record.kind,
      record.subject,
    );
    const parsed = parseMergeReply(record, reply);
    if ('problem' in parsed) {
      this.#problem(`dropped ${parsed.problem}`);
      return undefined;
    }
    return parsed.record;
  }

  #onMessage(text: string): void {
    const parsed = parseMessage(text);
    if ('problem' in parsed) {
      this.#problem(`dropped ${parsed.problem}`);
      return;
    }
    if (parsed.from === this.#o.nodeId) return;
    void this.#applyRemote(parsed.record);
  }

  /**
   * Applies through the keeper; a failed store write is logged by the keeper, once. A record
   * dated far ahead of this clock is dropped (logged once per kind), from every source.
   */
  async #applyRemote(record: SyncRecord): Promise<void> {
    const implausible = implausibleRecord(record, this.#now());
    if (implausible !== undefined) {
      this.#problem(`dropped ${implausible}`);
      return;
    }
    await this.#o.keeper.applyRemote(record).catch(() => {});
  }

  #outage(reason: string): void {
    if (this.#down || this.#closed) return;
    this.#down = true;
    this.#o.log.warn(
      'redis unreachable: revocations are applied on this node and queued; retrying',
      { ...this.#fields(), reason },
    );
  }

  /** Logs a kind of problem once (at most MAX_PROBLEM_KINDS kinds). */
  #problem(kind: string): void {
    if (this.#problems.has(kind) || this.#problems.size >= MAX_PROBLEM_KINDS) return;
    this.#problems.add(kind);
    this.#o.log.warn(`redis revocation bus: ${kind} (logged once)`, this.#fields());
  }

  #fields(): { redis: string; prefix: string; node: string } {
    return { redis: this.#redacted, prefix: this.#o.prefix, node: this.#o.nodeId };
  }
}

/** ioredis options from the validated URL: fail fast, reconnect with capped backoff. */
function connectionOptions(o: RevocationBusOptions): RedisOptions {
  const target = parseRedisUrl(o.url);
  const { minMs, maxMs } = o.retry ?? { minMs: 100, maxMs: 5_000 };
  return {
    host: target.host,
    port: target.port,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    db: target.db,
    ...(target.tls ? { tls: { servername: target.host, ...o.tls } } : {}),
    lazyConnect: true,
    // Commands fail at once while disconnected instead of piling up in memory: the outbox is
    // the queue, and nothing waits on Redis.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // INFO would need one more ACL permission; loading state shows as a failed command.
    enableReadyCheck: false,
    autoResubscribe: false,
    connectTimeout: 2_000,
    retryStrategy: (times: number) => Math.min(minMs * 2 ** Math.min(times - 1, 20), maxMs),
  };
}

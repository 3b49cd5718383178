import { ConfigError } from '../conf/config-error.js';
import { CodedError } from '../shared/coded-error.js';
import type { Logger } from '../shared/log.js';
import type { ConfigSource, Loaded } from './config-source.js';
import type { Fleet } from './fleet.js';

/**
 * How a reload ended, logged as the `reload` field of its log line: `unchanged` (config and
 * certificates as running), `applied` (new generation swapped in place), `rolled` (new edges
 * replaced the old ones), `invalid` (config or certificate refused, see `file`), `failed`
 * (valid, but the edges could not take it: port taken, no edge applied it...). In every case but
 * `applied` and `rolled`, the running configuration stays.
 */
export type ReloadOutcome = 'unchanged' | 'applied' | 'rolled' | 'invalid' | 'failed';

/** What started a reload. */
export type ReloadTrigger = 'SIGHUP' | 'file change';

export interface ReloaderOptions {
  source: Pick<ConfigSource, 'load'>;
  fleet: Pick<Fleet, 'apply' | 'address'>;
  log: Logger;
  /** The load the fleet was started with. */
  initial: Loaded;
  /** Logs a load's warnings (shared with the start). */
  logLoad: (loaded: Loaded) => void;
  /** After every pass, whatever its outcome. */
  onSettled?: (outcome: ReloadOutcome, running: Loaded) => void;
}

/**
 * Reloads are serialized: triggers that arrive during a reload cause one more pass after it.
 * An invalid config or certificate is logged and the running one stays.
 */
export class Reloader {
  readonly #options: ReloaderOptions;
  #running: Loaded;
  #busy = false;
  readonly #queued = new Set<ReloadTrigger>();

  constructor(options: ReloaderOptions) {
    this.#options = options;
    this.#running = options.initial;
  }

  /** Whether a reload pass is under way (readiness: supervisor/health.ts). */
  get busy(): boolean {
    return this.#busy;
  }

  /** Asks for a reload; returns at once. */
  trigger(cause: ReloadTrigger): void {
    this.#queued.add(cause);
    if (!this.#busy) void this.#drainQueue();
  }

  async #drainQueue(): Promise<void> {
    this.#busy = true;
    while (this.#queued.size > 0) {
      const causes = [...this.#queued].join(',');
      this.#queued.clear();
      const outcome = await this.#pass(causes);
      this.#options.onSettled?.(outcome, this.#running);
    }
    this.#busy = false;
  }

  async #pass(trigger: string): Promise<ReloadOutcome> {
    const { source, fleet, log, logLoad } = this.#options;
    const running = this.#running.plan;
    try {
      const loaded = await source.load();
      const { plan } = loaded;
      if (
        plan.processKey === running.processKey &&
        JSON.stringify(plan.snapshot.raw) === JSON.stringify(running.snapshot.raw) &&
        // A route's client certificate or CA file, or the login page, replaced on disk is a
        // change too, and so is a key ring changed in the store.
        JSON.stringify(plan.snapshot.routeFiles) === JSON.stringify(running.snapshot.routeFiles) &&
        plan.snapshot.loginPage === running.snapshot.loginPage &&
        JSON.stringify(plan.snapshot.keyRing) === JSON.stringify(running.snapshot.keyRing) &&
        // So is a rotated Loki password file (the supervisor's own, not in the snapshot).
        JSON.stringify(loaded.loaded.lokiHeaders) ===
          JSON.stringify(this.#running.loaded.lokiHeaders)
      ) {
        log.info('reload: configuration and certificates unchanged', {
          reload: 'unchanged',
          trigger,
          generation: running.snapshot.generation,
        });
        return 'unchanged';
      }
      logLoad(loaded);
      const outcome = await fleet.apply(plan);
      this.#running = loaded;
      log.info('configuration reloaded', {
        reload: outcome,
        trigger,
        generation: plan.snapshot.generation,
        port: fleet.address?.port,
        certificate: loaded.tls?.certFingerprint256,
      });
      return outcome;
    } catch (err) {
      return this.#failed(err, trigger);
    }
  }

  #failed(err: unknown, trigger: string): ReloadOutcome {
    const { log } = this.#options;
    if (err instanceof ConfigError) {
      for (const issue of err.issues)
        log.error('invalid configuration, keeping the running one', {
          reload: 'invalid',
          trigger,
          file: issue.file,
          key: issue.key,
          rule: issue.message,
        });
      return 'invalid';
    }
    log.error('reload failed, keeping the running configuration', {
      reload: 'failed',
      trigger,
      code: err instanceof CodedError ? err.code : undefined,
      reason: err instanceof Error ? err.message : String(err),
    });
    return 'failed';
  }
}

import { readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../conf/config-error.js';
import type { LoadedConfig } from '../conf/load.js';
import { CodedError } from '../shared/coded-error.js';
import type { KeyRingSnapshot } from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import { KeyRingError, keyIdHex, keyState, type Store } from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';
import type { Dirs } from './dirs.js';
import { installBundle, readBundleFile } from './sync-import.js';

/** Where other nodes' exports encrypted to this node's key are dropped (the original's). */
export const IMPORT_DIR = 'import';
/** The ring an edge receives holds at most this many verify-only keys (shared/ipc.ts). */
const MAX_VERIFY_ONLY = 64;

/**
 * The key ring's lifecycle in the supervisor, run at start and at every reload before the
 * snapshot is built (ConfigSource): config.json's `secret`, then the `*.pgp` files of
 * `<config dir>/import/`, then the ring in force.
 *
 * config.json's `secret` whose key id the ring does not hold yet is added and made active: a
 * new secret is a rotation, and the old one verifies its tokens until they expire. A key id the
 * ring holds (in any state: retired, removed, expired) is left alone, so a `keys rotate` or an
 * import is not undone by the unchanged config.json at the next reload.
 */
export class KeyRingKeeper {
  readonly #store: Store;
  readonly #dirs: Dirs;
  readonly #log: Logger;
  readonly #now: () => number;
  #last = '';

  constructor(store: Store, dirs: Dirs, log: Logger, now = unixNow) {
    this.#store = store;
    this.#dirs = dirs;
    this.#log = log;
    this.#now = now;
  }

  /**
   * The ring for the next snapshot. Throws ConfigError naming the file and key for a secret
   * whose key id collides with another key, and for an import file that cannot be installed
   * (the reload then keeps the running config; the file stays for the operator to look at).
   */
  async snapshot(loaded: LoadedConfig): Promise<KeyRingSnapshot> {
    const { config, files } = loaded;
    const keyId = deriveTokenKeys(config.secret).keyId;
    const now = this.#now();
    try {
      const seeded = await this.#store.addActiveKey(
        keyId,
        config.secret,
        'config',
        now,
        config.token_expiry_seconds,
      );
      // A ring without an active key (config.json's key imported verify-only before the first
      // start) gets config.json's key as the active one.
      const orphan = !seeded.added && !this.#hasActive(now);
      if (orphan) await this.#store.activateKey(keyId, now, config.token_expiry_seconds);
      if (seeded.added || orphan) {
        this.#log.info('key ring: config.json secret is the new active key', {
          key_id: keyIdHex(keyId),
        });
      }
    } catch (err) {
      if (!(err instanceof KeyRingError)) throw err;
      throw new ConfigError([{ file: files.config, key: 'secret', message: err.message }]);
    }
    // After the secret: on a new node, an import's active key must win over config.json's.
    await this.#importDir(config.token_expiry_seconds);
    return this.#inForce(this.#now());
  }

  #hasActive(now: number): boolean {
    return this.#store.keyRing().some((k) => keyState(k, now) === 'active');
  }

  #inForce(now: number): KeyRingSnapshot {
    let active: { keyId: number; secret: string } | undefined;
    const verifyOnly: { keyId: number; secret: string; until: number }[] = [];
    for (const key of this.#store.keyRing()) {
      const state = keyState(key, now);
      if (state === 'active') active = key;
      if (state === 'verify-only') {
        verifyOnly.push({ ...key, until: key.verifyUntil ?? Number.MAX_SAFE_INTEGER });
      }
    }
    // snapshot() made sure of one, and remove refuses the active key.
    if (active === undefined) throw new Error('the key ring has no active key');
    // Past the IPC bound, the keys that stop verifying first are left out (logged).
    const kept = verifyOnly.sort((a, b) => b.until - a.until).slice(0, MAX_VERIFY_ONLY);
    kept.sort((a, b) => a.keyId - b.keyId);
    if (kept.length < verifyOnly.length) {
      this.#log.warn('key ring: too many verify-only keys, the oldest are left out', {
        left_out: verifyOnly.length - kept.length,
      });
    }
    this.#logChange(
      active.keyId,
      kept.map((k) => k.keyId),
    );
    return { active: active.secret, verifyOnly: kept.map((k) => k.secret) };
  }

  #logChange(active: number, verifyOnly: number[]): void {
    const fields = {
      active: keyIdHex(active),
      verify_only: verifyOnly.map(keyIdHex).join(','),
    };
    const text = JSON.stringify(fields);
    if (text === this.#last) return;
    this.#last = text;
    this.#log.info('key ring in force', fields);
  }

  /** Imports every `*.pgp` of the import dir, in name order; each is renamed `.imported`. */
  async #importDir(expirySeconds: number): Promise<void> {
    const dir = join(this.#dirs.configDir, IMPORT_DIR);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.pgp')).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      const file = join(dir, name);
      try {
        const bundle = await readBundleFile(file, { ...this.#dirs, passphrase: undefined });
        const result = await installBundle(this.#store, bundle, {
          verifyOnly: false,
          nowSeconds: this.#now(),
          expirySeconds,
        });
        await rename(file, `${file}.imported`);
        this.#log.info('key ring: imported', {
          file,
          from: result.node,
          added: result.added.join(','),
          active: result.activated,
        });
      } catch (err) {
        if (!(err instanceof CodedError)) throw err;
        throw new ConfigError([{ file, key: '(file)', message: `${err.code}: ${err.message}` }]);
      }
    }
  }
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

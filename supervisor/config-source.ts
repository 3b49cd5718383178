import { join } from 'node:path';
import { ensureSelfSignedCert } from '../conf/first-run.js';
import type { LoadedConfig } from '../conf/load.js';
import { loadConfigDir } from '../conf/load.js';
import { rewritePlaintextPasswords } from '../conf/rewrite-passwords.js';
import type { CheckedTlsPair } from '../conf/tls-files.js';
import { hashPassword } from '../crypto-pool/password.js';
import type { Dirs } from './dirs.js';
import type { FleetPlan } from './fleet.js';
import type { KeyRingKeeper } from './key-ring.js';
import { installTlsPair } from './tls-pair.js';

/** One read of the config dir. */
export interface Loaded {
  loaded: LoadedConfig;
  plan: FleetPlan;
  /** Plaintext passwords hashed in config.json by this load. */
  rewritten: number;
  /** The validated certificate pair, when `tls` is on. */
  tls: CheckedTlsPair | undefined;
}

/**
 * Reads the config dir into a plan for the fleet: plaintext passwords are hashed in the file
 * first (losslessly), then everything is validated, and when
 * `tls` is on a self-signed certificate is created if there is none, and the pair is validated
 * and copied for the edges.
 * Throws ConfigError with every issue found (an unusable pair included, naming its file); the
 * caller decides whether that stops the start.
 */
export class ConfigSource {
  readonly #dirs: Dirs;
  readonly #keyRing: Pick<KeyRingKeeper, 'snapshot'>;
  #generation = 0;

  /** `keyRing` builds each snapshot's key ring from config.json and the store. */
  constructor(dirs: Dirs, keyRing: Pick<KeyRingKeeper, 'snapshot'>) {
    this.#dirs = dirs;
    this.#keyRing = keyRing;
  }

  private get configFile(): string {
    return join(this.#dirs.configDir, 'config.json');
  }

  async load(): Promise<Loaded> {
    // Validate before rewriting: an invalid file is reported as the operator wrote it. Read it
    // again only when the rewrite changed it.
    let loaded = await loadConfigDir(this.#dirs.configDir);
    const { rewritten } = await rewritePlaintextPasswords(this.configFile, hashPassword);
    if (rewritten > 0) loaded = await loadConfigDir(this.#dirs.configDir);
    // With `tls` on and no pair yet, a self-signed one is made; it is then checked (and
    // fingerprinted) like one the operator put there.
    if (loaded.config.tls && loaded.tls === undefined) {
      await ensureSelfSignedCert(this.#dirs.configDir);
      loaded = await loadConfigDir(this.#dirs.configDir);
    }
    const { config, tls } = loaded;
    const tlsFiles = tls ? await installTlsPair(tls, this.#dirs.dataDir) : null;
    const keyRing = await this.#keyRing.snapshot(loaded);
    this.#generation++;
    const plan: FleetPlan = {
      snapshot: {
        generation: this.#generation,
        configDir: this.#dirs.configDir,
        dataDir: this.#dirs.dataDir,
        files: loaded.files,
        raw: loaded.raw,
        routeFiles: loaded.routeFiles,
        ...(loaded.loginPage === undefined ? {} : { loginPage: loaded.loginPage }),
        keyRing,
      },
      instances: config.num_instances,
      cryptoThreads: config.worker,
      maxHeaderBytes: config.max_header_bytes,
      host: config.host,
      port: config.port,
      tls: tlsFiles,
      // uWS cannot swap the certificate of a running app, reads its head limit from the
      // environment and its WebSocket message limit at start: a change of any rolls the fleet.
      // The address is compared by the fleet itself.
      processKey: JSON.stringify([
        config.tls,
        config.worker,
        config.num_instances,
        config.max_header_bytes,
        config.max_websocket_message_bytes,
        tls?.fingerprint ?? null,
      ]),
    };
    return { loaded, plan, rewritten, tls };
  }
}

import { join } from 'node:path';
import { ensureSelfSignedCert } from '../conf/first-run.js';
import type { LoadedConfig } from '../conf/load.js';
import { loadConfigDir } from '../conf/load.js';
import { rewritePlaintextPasswords, setTokenAdmin } from '../conf/rewrite-passwords.js';
import { hashPassword } from '../crypto-pool/password.js';
import type { Dirs } from './dirs.js';
import type { FleetPlan } from './fleet.js';

/**
 * Reads the config dir into a plan for the fleet: plaintext passwords are hashed and an empty
 * token_admin generated in the file first (losslessly), then everything is validated, and a
 * self-signed certificate is created when `tls` is on and none exists.
 * Throws ConfigError with every issue found; the caller decides whether that stops the start.
 */
export class ConfigSource {
  readonly #dirs: Dirs;
  #generation = 0;

  constructor(dirs: Dirs) {
    this.#dirs = dirs;
  }

  private get configFile(): string {
    return join(this.#dirs.configDir, 'config.json');
  }

  async load(): Promise<{ loaded: LoadedConfig; plan: FleetPlan; rewritten: number }> {
    // Validate before rewriting: an invalid file is reported as the operator wrote it. Read it
    // again only when the rewrite changed it.
    let loaded = await loadConfigDir(this.#dirs.configDir);
    const { rewritten } = await rewritePlaintextPasswords(this.configFile, hashPassword);
    const { written } = await setTokenAdmin(this.configFile);
    if (rewritten > 0 || written) loaded = await loadConfigDir(this.#dirs.configDir);
    // A new pair is checked (and fingerprinted) like one the operator put there.
    if (loaded.config.tls && (await ensureSelfSignedCert(this.#dirs.configDir)).created) {
      loaded = await loadConfigDir(this.#dirs.configDir);
    }
    const { config } = loaded;
    this.#generation++;
    const plan: FleetPlan = {
      snapshot: {
        generation: this.#generation,
        configDir: this.#dirs.configDir,
        dataDir: this.#dirs.dataDir,
        files: loaded.files,
        raw: loaded.raw,
      },
      instances: config.num_instances,
      cryptoThreads: config.worker,
      processKey: JSON.stringify([
        config.host,
        config.port,
        config.tls,
        config.worker,
        config.num_instances,
      ]),
    };
    return { loaded, plan, rewritten };
  }
}

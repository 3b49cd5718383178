import type { FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../conf/config-error.js';
import { ensureConfigDir } from '../conf/first-run.js';
import { hashPassword } from '../crypto-pool/password.js';
import { createLogger } from '../shared/log.js';
import { ConfigSource } from './config-source.js';
import type { Dirs } from './dirs.js';
import { Fleet, type FleetPlan } from './fleet.js';
import { watchFiles } from './watch.js';

const log = createLogger('supervisor');
/** How long SIGTERM waits for requests in flight before edges cut them. */
const DRAIN_TIMEOUT_MS = 10_000;

/** `proxyauth run`: resolves with the exit code once the gateway has stopped. */
export async function serve(dirs: Dirs): Promise<number> {
  await mkdir(dirs.dataDir, { recursive: true, mode: 0o700 });
  const firstRun = await ensureConfigDir(dirs.configDir, { hash: hashPassword });
  if (firstRun.created && firstRun.adminPassword)
    announceAdmin(dirs.configDir, firstRun.adminPassword);
  const source = new ConfigSource(dirs);
  let plan: FleetPlan;
  try {
    const loaded = await source.load();
    logLoad(loaded);
    plan = loaded.plan;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.format()}\n`);
      return 1;
    }
    throw err;
  }
  const fleet = new Fleet(fileURLToPath(new URL('../worker/edge.js', import.meta.url)), log);
  // Signals are handled before the edges exist, so a stop during start-up still drains them.
  let stopping = false;
  let watcher: FSWatcher | undefined;
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      watcher?.close();
      log.info('stopping: draining edges', { signal });
      void fleet.stop(DRAIN_TIMEOUT_MS).then(() => {
        log.info('gateway stopped');
        resolve(0);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  let reload: (() => void) | undefined;
  process.on('SIGHUP', () => reload?.());
  try {
    await fleet.start(plan);
  } catch (err) {
    if (stopping) return stopped;
    log.error('gateway failed to start', { reason: (err as Error).message });
    return 1;
  }
  if (stopping) return stopped;
  log.info('gateway started', {
    instances: plan.instances,
    pids: fleet.pids.join(','),
    generation: plan.snapshot.generation,
  });
  reload = createReloader(source, fleet, plan);
  watcher = watchFiles(dirs.configDir, ['config.json', 'routes.yml'], reload);
  return stopped;
}

/**
 * Reloads are serialized: a change that arrives during a reload triggers one more pass after
 * it. An invalid config is logged and the running one stays.
 */
function createReloader(source: ConfigSource, fleet: Fleet, initial: FleetPlan): () => void {
  let current = JSON.stringify(initial.snapshot.raw);
  let running = false;
  let again = false;
  const pass = async (): Promise<void> => {
    try {
      const loaded = await source.load();
      const { plan } = loaded;
      const raw = JSON.stringify(plan.snapshot.raw);
      if (raw === current) return;
      logLoad(loaded);
      await fleet.apply(plan);
      current = raw;
      log.info('configuration reloaded', { generation: plan.snapshot.generation });
    } catch (err) {
      if (err instanceof ConfigError) {
        for (const issue of err.issues)
          log.error('invalid configuration, keeping the running one', {
            file: issue.file,
            key: issue.key,
            rule: issue.message,
          });
      } else
        log.error('reload failed, keeping the running configuration', {
          reason: (err as Error).message,
        });
    }
  };
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void pass().finally(() => {
      running = false;
      if (again) {
        again = false;
        run();
      }
    });
  };
  return run;
}

function logLoad({ loaded, rewritten }: Awaited<ReturnType<ConfigSource['load']>>): void {
  for (const warning of loaded.warnings) log.warn(warning);
  if (rewritten > 0) log.info('hashed plaintext passwords in config.json', { count: rewritten });
}

function announceAdmin(configDir: string, password: string): void {
  process.stdout.write(
    `\nFirst start: created ${configDir}/config.json\n` +
      `  user: admin\n  password: ${password}\n` +
      'This password is shown only once; only its argon2id hash is stored.\n\n',
  );
}

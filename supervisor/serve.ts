import { randomBytes } from 'node:crypto';
import type { FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../conf/config-error.js';
import { ensureConfigDir } from '../conf/first-run.js';
import { loginPagePath } from '../conf/login-page.js';
import { hashPassword } from '../crypto-pool/password.js';
import { CodedError } from '../shared/coded-error.js';
import { createLogger, logFormat, setLogFormat, tapLogLines } from '../shared/log.js';
import { openStore, type Store, StoreError } from '../shared/store.js';
import { ConfigSource, type Loaded } from './config-source.js';
import type { Dirs } from './dirs.js';
import { type FileWatch, watchNamedFiles } from './file-watch.js';
import { Fleet } from './fleet.js';
import { forkEdge } from './fork-edge.js';
import { serveGuards } from './guards.js';
import { readiness } from './health.js';
import { KeyRingKeeper } from './key-ring.js';
import { LogLevelControl } from './log-level-control.js';
import { LogSinks } from './log-sinks.js';
import { startMetricsServer } from './metrics-server.js';
import { NodeMetrics } from './node-metrics.js';
import { ReadySignal } from './ready-signal.js';
import { Reloader } from './reloader.js';
import { RevocationBus } from './revocation-bus.js';
import { StoreKeeper } from './store-keeper.js';
import { pruneTlsCopies } from './tls-pair.js';
import { watchFiles } from './watch.js';

const log = createLogger('supervisor');
/** How long SIGTERM waits for requests in flight before edges cut them. */
const DRAIN_TIMEOUT_MS = 10_000;

/** mkdir's errors in plain words. */
const MKDIR_CAUSES: Record<string, string> = {
  EEXIST: ': it is a file, not a directory',
  ENOTDIR: ': a part of the path is a file',
  EACCES: ': permission denied',
  EROFS: ': read-only file system',
};

export interface ServeOptions {
  /** `--ready-fd`: the readiness line goes there (supervisor/ready-signal.ts). */
  readyFd?: number | undefined;
}

/**
 * `proxyauth run`: resolves with the exit code once the gateway has stopped (1 when it could
 * not start). With `readyFd`, exactly one readiness line is written, whatever happens.
 */
export async function serve(dirs: Dirs, options: ServeOptions = {}): Promise<number> {
  const ready = new ReadySignal(options.readyFd);
  try {
    const code = await run(dirs, ready);
    notReady(ready, 'NOT_STARTED', 'stopped before every edge was listening');
    return code;
  } catch (err) {
    notReady(ready, codeOf(err), err instanceof Error ? err.message : String(err));
    throw err;
  }
}

/** Lines logged before the log sinks exist, kept at most (for Loki and /adm/logs). */
const MAX_EARLY_LINES = 1000;

async function run(dirs: Dirs, ready: ReadySignal): Promise<number> {
  // What the start logs before the config says where lines go (store, key ring, config
  // warnings) is kept, and handed to the sinks once they exist: a node's start must show in
  // Loki too, not on stdout alone.
  const early: string[] = [];
  tapLogLines((line) => {
    if (early.length < MAX_EARLY_LINES) early.push(line);
  });
  try {
    await mkdir(dirs.dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    const why = code === undefined ? message : `${code}${MKDIR_CAUSES[code] ?? ''}`;
    return refuseStart(
      ready,
      'DATA_DIR_UNUSABLE',
      `data dir ${dirs.dataDir}: cannot be created (${why})`,
    );
  }
  const firstRun = await ensureConfigDir(dirs.configDir, { hash: hashPassword });
  if (firstRun.created && firstRun.adminPassword)
    announceAdmin(dirs.configDir, firstRun.adminPassword);
  // The store is opened (created on first start) before any edge: an edge only reads it. The
  // config load needs it too: the key ring of each snapshot lives there.
  let store: Store;
  try {
    store = openStore(dirs.dataDir, { readOnly: false });
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    return refuseStart(ready, err.code, err.message);
  }
  const source = new ConfigSource(dirs, new KeyRingKeeper(store, dirs, log));
  let initial: Loaded;
  try {
    initial = await source.load();
    logLoad(initial);
  } catch (err) {
    await store.close();
    if (err instanceof ConfigError) return refuseStart(ready, err.code, err.format(), err.format());
    throw err;
  }
  const { plan } = initial;
  const counts = store.counts();
  log.info('store opened', {
    path: store.path,
    tokens: counts.tokens,
    revoked_tokens: counts.revokedTokens,
    revoked_users: counts.revokedUsers,
    login_bans: counts.bans,
  });
  const logConfig = initial.loaded.config.log;
  if (process.env.PROXYAUTH_LOG_FORMAT === undefined && logConfig.format !== 'auto') {
    setLogFormat(logConfig.format);
  } else if (process.env.PROXYAUTH_LOG_FORMAT === undefined && process.stdout.isTTY) {
    setLogFormat('text');
  }
  const levels = new LogLevelControl(logConfig.level, log, (level) =>
    fleet.notifyAll({ type: 'log-level', level }),
  );
  const sinks = LogSinks.create(logConfig, log, initial.loaded.lokiHeaders);
  if (sinks) {
    for (const line of early) sinks.line(line);
    tapLogLines((line) => sinks.line(line));
  } else tapLogLines(undefined);
  early.length = 0;
  const edgePath = fileURLToPath(new URL('../worker/edge.js', import.meta.url));
  // Read at start, like redis: the listener and the edges' counting follow the start's config.
  const metricsConfig = initial.loaded.config.metrics;
  const fleet = new Fleet({
    log,
    spawn: forkEdge(edgePath, {
      output: sinks ? (stdout) => sinks.attach(stdout) : undefined,
      env: () => ({ PROXYAUTH_LOG_LEVEL: levels.level, PROXYAUTH_LOG_FORMAT: logFormat() }),
      metrics: metricsConfig !== undefined,
    }),
  });
  fleet.answer('recent-logs', (ask) => ({
    kept: sinks?.ring !== undefined,
    lines: sinks?.ring?.last(ask.limit) ?? [],
  }));
  process.on('SIGUSR1', () => levels.toggle());
  const { redis, redis_prefix } = initial.loaded.config;
  let bus: RevocationBus | undefined;
  const nodeId = randomBytes(8).toString('hex');
  const keeper = new StoreKeeper(
    store,
    fleet,
    log,
    undefined,
    redis === undefined ? undefined : { origin: nodeId, queued: () => bus?.flush() },
  );
  keeper.start();
  if (redis !== undefined) {
    bus = new RevocationBus({ url: redis, prefix: redis_prefix, nodeId, store, keeper, log });
    bus.start();
  }
  const guards = serveGuards(fleet, store, initial.loaded.config, log);
  let stopping = false;
  let reloader: Reloader | undefined;
  // One verdict for the metrics listener's /readyz and the edges' (health_on_main_port).
  const nodeReadiness = () =>
    readiness({
      stopping,
      reloading: reloader?.busy === true,
      storeClosed: store.closed,
      generation: fleet.generation,
      edges: fleet.serving,
    });
  fleet.answer('readiness', () => ({ ready: nodeReadiness().ready }));
  let metrics: NodeMetrics | undefined;
  let metricsServer: Server | undefined;
  if (metricsConfig !== undefined) {
    const shipper = sinks?.loki;
    const node = new NodeMetrics({
      generation: () => fleet.generation,
      restarts: () => fleet.restarts,
      serving: () => fleet.serving.current,
      redisConnected: bus === undefined ? undefined : () => bus?.connected === true,
      loki: shipper === undefined ? undefined : () => shipper.counts(),
    });
    metrics = node;
    fleet.on('metrics', (event, edge) => node.add(edge.slot, event.report));
    keeper.onChange = (change) => node.revocation(change.op);
    try {
      const started = await startMetricsServer({
        host: metricsConfig.host,
        port: metricsConfig.port,
        metrics: async () => ({ text: await node.text(), contentType: node.contentType }),
        ready: nodeReadiness,
        log,
      });
      metricsServer = started.server;
      log.info('metrics listening', { host: metricsConfig.host, port: started.port });
    } catch (err) {
      guards.stop();
      await bus?.close();
      await keeper.close();
      return refuseStart(ready, codeOf(err), (err as Error).message);
    }
  }
  // Signals are handled before the edges exist, so a stop during start-up still drains them.
  let configWatch: FSWatcher | undefined;
  let fileWatch: FileWatch | undefined;
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      configWatch?.close();
      fileWatch?.close();
      log.info('stopping: draining edges', { signal });
      void fleet
        .stop(DRAIN_TIMEOUT_MS)
        .then(async () => {
          // Open through the drain, so that /readyz answers 503 "stopping" meanwhile.
          metricsServer?.closeAllConnections();
          metricsServer?.close();
          guards.stop();
          await bus?.close();
          return keeper.close();
        })
        .then(async () => {
          log.info('gateway stopped');
          tapLogLines(undefined);
          await sinks?.close();
          resolve(0);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  process.on('SIGHUP', () => reloader?.trigger('SIGHUP'));
  try {
    await fleet.start(plan);
  } catch (err) {
    if (stopping) return stopped;
    log.error('gateway failed to start', { code: codeOf(err), reason: (err as Error).message });
    metricsServer?.close();
    await bus?.close();
    await keeper.close();
    tapLogLines(undefined);
    await sinks?.close();
    return refuseStart(ready, codeOf(err), (err as Error).message);
  }
  if (stopping) return stopped;
  const address = fleet.address!;
  const edges = fleet.edges.map((e) => e.pid ?? 0);
  log.info('gateway started', {
    instances: plan.instances,
    host: address.host,
    port: address.port,
    pids: edges.join(','),
    generation: plan.snapshot.generation,
    certificate: initial.tls?.certFingerprint256,
  });
  const failed = ready.send({
    ready: true,
    host: address.host,
    port: address.port,
    tls: plan.tls !== null,
    pid: process.pid,
    edges,
    generation: plan.snapshot.generation,
  });
  if (failed) log.warn('could not write the readiness line', { reason: failed.message });
  const cleanCopies = (running: Loaded) =>
    pruneTlsCopies(dirs.dataDir, new Set(running.tls ? [running.tls.fingerprint] : [])).catch(
      (err: Error) => log.warn('could not remove old certificate copies', { reason: err.message }),
    );
  void cleanCopies(initial);
  const watchedFiles = watchNamedFiles(() => reloader?.trigger('file change'));
  fileWatch = watchedFiles;
  reloader = new Reloader({
    source,
    fleet,
    log,
    initial,
    logLoad,
    onSettled: (outcome, running) => {
      metrics?.reload(outcome);
      guards.configure(running.loaded.config);
      if (JSON.stringify(running.loaded.config.metrics) !== JSON.stringify(metricsConfig)) {
        log.warn('metrics is read at start: the change takes effect at restart');
      }
      const now = running.loaded.config;
      levels.configure(now.log.level);
      // Credentials and tenant apply at reload (a rotated password file); the rest at restart.
      sinks?.loki?.setHeaders(running.loaded.lokiHeaders);
      if (logPlumbing(now.log) !== logPlumbing(logConfig)) {
        log.warn('log type, host, node, format and size are read at start: restart to apply');
      }
      if (now.redis !== redis || now.redis_prefix !== redis_prefix) {
        log.warn('redis and redis_prefix are read at start: the change takes effect at restart');
      }
      void watchedFiles.refresh(namedFiles(dirs.configDir, running));
      if (outcome === 'rolled') void cleanCopies(running);
    },
  });
  const reload = () => reloader?.trigger('file change');
  configWatch = watchFiles(dirs.configDir, ['config.json', 'routes.yml', 'certs'], reload);
  await watchedFiles.refresh(namedFiles(dirs.configDir, initial));
  return stopped;
}

/**
 * The files a config generation was read from besides config.json and routes.yml (which the
 * config dir's own watch covers): the certificate pair, the routes' upstream TLS files, the
 * login page and the Loki password file. A change to any of them reloads, as an edit of config.json does.
 */
function namedFiles(configDir: string, running: Loaded): string[] {
  const { loaded } = running;
  const files = [join(configDir, 'certs', 'cert.pem'), join(configDir, 'certs', 'key.pem')];
  files.push(...Object.keys(loaded.routeFiles));
  const page = loaded.config.login_page;
  if (page !== undefined) files.push(loginPagePath(page, loaded.files.config));
  const password = loaded.config.log.password_file;
  if (password !== undefined) files.push(resolve(dirname(loaded.files.config), password));
  return files;
}

/** A start refused before anything listens: stderr for people, the readiness line for tools. */
function refuseStart(
  ready: ReadySignal,
  code: string,
  message: string,
  stderr = `proxyauth: ${message}`,
): number {
  process.stderr.write(`${stderr}\n`);
  notReady(ready, code, message);
  return 1;
}

function notReady(ready: ReadySignal, code: string, error: string): void {
  const failed = ready.send({ ready: false, code, error });
  if (failed) log.warn('could not write the readiness line', { reason: failed.message });
}

/** The parts of `log` fixed at start (everything but the level and Loki's credentials). */
function logPlumbing(log: Loaded['loaded']['config']['log']): string {
  const { level: _, user: _u, password_file: _p, tenant: _t, ...rest } = log;
  return JSON.stringify(rest);
}

function codeOf(err: unknown): string {
  return err instanceof CodedError ? err.code : 'START_FAILED';
}

function logLoad({ loaded, rewritten }: Loaded): void {
  for (const warning of loaded.warnings) log.warn(warning);
  if (loaded.config.token_admin === '') {
    log.info('token_admin is empty: the admin API (/adm/*) is off');
  }
  if (rewritten > 0) log.info('hashed plaintext passwords in config.json', { count: rewritten });
}

function announceAdmin(configDir: string, password: string): void {
  process.stdout.write(
    `\nFirst start: created ${configDir}/config.json\n` +
      `  user: admin\n  password: ${password}\n` +
      'This password is shown only once; only its argon2id hash is stored.\n\n',
  );
}

// Entry point of one edge process, forked by the supervisor (which never imports this file).
// The supervisor drives it with requests (shared/ipc.ts): `start` builds the runtime and app,
// `listen` binds, `apply-config` swaps generations, `drain` stops.

import { CryptoPool } from '../crypto-pool/pool.js';
import { AccessLog } from '../shared/access-log.js';
import { CodedError } from '../shared/coded-error.js';
import {
  type ConfigSnapshot,
  describeMessage,
  type EdgeMessage,
  type EdgeRequest,
  parseSupervisorMessage,
  type ReplyValues,
  type SupervisorMessage,
  type TlsFiles,
} from '../shared/ipc.js';
import { createLogger, flushLogs, logFormat, logLevel, setLogLevel } from '../shared/log.js';
import { openStore } from '../shared/store.js';
import { createDispatcher, createUpgradeDispatcher, type EdgeState } from './dispatch.js';
import { EdgeError, type EdgeErrorCode } from './edge-error.js';
import { EdgeMetrics } from './edge-metrics.js';
import type { EdgeServices } from './edge-services.js';
import { ReadinessProbe } from './health-endpoints.js';
import { RateLimiter } from './rate-limiter.js';
import { RevocationSet } from './revocation-set.js';
import { Runtime } from './runtime.js';
import { SessionCache } from './session-cache.js';
import { SupervisorLink } from './supervisor-link.js';
import { TokenUseCounter } from './token-use-counter.js';
import { UpstreamPools } from './upstream-pools.js';
import {
  closeServer,
  createServer,
  type Listener,
  lingeringAnswers,
  listen as listenOn,
  type Server,
  stopListening,
} from './uws-io.js';
import { closeWebSockets, openWebSockets, webSocketBufferLimit } from './websocket-proxy.js';

const log = createLogger('edge');
let state: EdgeState | undefined;
let services: EdgeServices | undefined;
let app: Server | undefined;
let listenSocket: Listener | undefined;
let tls = false;
/** The generation of the runtime in use, for logs. */
let generation = 0;

/**
 * Exist before `start`: revocation changes may arrive while the edge is still starting (they
 * apply to the set at once, and the store's contents are added at start).
 */
const revocations = new RevocationSet();
const link = new SupervisorLink((message) => {
  if (!process.send || !process.connected) return false;
  return process.send(message);
});
/** The last use counts handed to the channel: a drain waits for them before exiting. */
let lastUses: Promise<void> = Promise.resolve();
/** Expired revocations leave the RAM set this often. */
const PURGE_MS = 60_000;

/** Resolves once the message is handed to the channel, so that an exit cannot lose it. */
function send(message: EdgeMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

async function exit(code: number): Promise<never> {
  await flushLogs();
  process.exit(code);
}

async function start(
  snapshot: ConfigSnapshot,
  files: TlsFiles | null,
): Promise<ReplyValues['start']> {
  if (state || services) throw new EdgeError('EDGE_WRONG_STATE', 'already started');
  const threads = Number(process.env.PROXYAUTH_CRYPTO_THREADS ?? '1');
  // The supervisor created the store before forking us: a failure here is a broken data dir.
  let store: ReturnType<typeof openStore>;
  try {
    store = openStore(snapshot.dataDir, { readOnly: true });
  } catch (err) {
    throw new EdgeError('EDGE_START_FAILED', (err as Error).message, { cause: err });
  }
  revocations.load(store.revocationsInForce(Math.floor(Date.now() / 1000)));
  setInterval(() => revocations.purge(Math.floor(Date.now() / 1000)), PURGE_MS).unref();
  services = {
    crypto: new CryptoPool({ threads, maxQueue: threads * 64 }),
    accessLog: new AccessLog(1, process.pid, logFormat() === 'text'),
    log,
    sessions: new SessionCache(),
    pools: new UpstreamPools(),
    revocations,
    uses: new TokenUseCounter((uses) => {
      lastUses = send({ type: 'token-uses', uses });
    }),
    supervisor: link,
    limiter: new RateLimiter(link, log),
    store,
    metrics: undefined,
    readiness: new ReadinessProbe(
      async (timeoutMs) => (await link.ask({ type: 'readiness' }, timeoutMs)).ready,
    ),
  };
  services.limiter.start();
  const runtime = await Runtime.build(snapshot, services);
  // The supervisor decides, from the config it started with (supervisor/fork-edge.ts).
  if (process.env.PROXYAUTH_METRICS === '1') {
    const sessions = services.sessions;
    services.metrics = new EdgeMetrics(
      (report) => void send({ type: 'metrics', report }),
      () => sessions.lookups,
    );
    services.metrics.start();
  }
  tls = runtime.config.tls;
  generation = snapshot.generation;
  if (tls && !files)
    throw new EdgeError('EDGE_START_FAILED', 'tls is on but no certificate was given');
  state = {
    runtime,
    services,
    inflight: 0,
    lastRequestAt: 0,
    draining: false,
    onIdle: undefined,
  };
  // uWS reads both files here and throws "App construction failed" on an unusable pair.
  // The message limit is read once: a change rolls the edges (supervisor/config-source.ts).
  const maxMessageBytes = runtime.config.max_websocket_message_bytes;
  app = createServer(tls ? files : null, createDispatcher(state), {
    upgrade: createUpgradeDispatcher(state),
    maxMessageBytes,
    maxBufferedBytes: webSocketBufferLimit(maxMessageBytes),
  });
  runtime.startHealthChecks();
  return { generation: snapshot.generation };
}

async function listen(host: string, port: number): Promise<ReplyValues['listen']> {
  const server = app;
  if (!server || !state) throw new EdgeError('EDGE_WRONG_STATE', 'listen before start');
  if (listenSocket || draining)
    throw new EdgeError('EDGE_WRONG_STATE', 'already listening or draining');
  const bound = await listenOn(server, host, port);
  if (bound === undefined) {
    throw new EdgeError(
      'EDGE_LISTEN_FAILED',
      `cannot listen on ${host}:${port} (address in use or not permitted)`,
    );
  }
  listenSocket = bound.listener;
  log.info('edge listening', { host, port: bound.port, tls, generation });
  return { port: bound.port };
}

async function applyConfig(snapshot: ConfigSnapshot): Promise<ReplyValues['apply-config']> {
  if (!state || !services) throw new EdgeError('EDGE_WRONG_STATE', 'apply-config before start');
  let next: Runtime;
  try {
    next = await Runtime.build(snapshot, services, state.runtime);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log.error('config rejected by edge, keeping the previous one', {
      reason,
      generation: snapshot.generation,
    });
    throw new EdgeError('CONFIG_REJECTED', reason, { cause: err });
  }
  const previous = state.runtime;
  state.runtime = next;
  generation = snapshot.generation;
  previous.stopHealthChecks();
  next.startHealthChecks();
  // Only now, with the new runtime in place, may pools it no longer uses be closed.
  services.pools.retainOnly(next.origins);
  return { generation: snapshot.generation };
}

/*
 * Requests are carried out one at a time, in arrival order: an `apply-config` sent while the
 * edge is still starting applies after the start and before the listen that follows it, so a
 * replacement edge never serves a generation older than the fleet's.
 */
let queue: Promise<void> = Promise.resolve();

function enqueue<T extends EdgeRequest['type']>(
  request: Extract<EdgeRequest, { type: T }>,
  run: () => Promise<ReplyValues[T]>,
): void {
  queue = queue.then(async () => {
    try {
      await send({ type: 'reply', id: request.id, value: await run() });
    } catch (err) {
      await refuse(request, err);
    }
  });
}

const FATAL_CODES: ReadonlySet<EdgeErrorCode> = new Set([
  'EDGE_START_FAILED',
  'EDGE_LISTEN_FAILED',
]);

/** Answers a failed request; a failed start or listen leaves nothing to serve: exit 1. */
async function refuse(request: EdgeRequest, err: unknown): Promise<void> {
  const reason = err instanceof Error ? err.message : String(err);
  let code = err instanceof CodedError ? err.code : 'EDGE_ERROR';
  // Whatever breaks a start (an invalid snapshot, an unusable certificate) breaks the edge.
  if (request.type === 'start' && code !== 'EDGE_WRONG_STATE') code = 'EDGE_START_FAILED';
  await send({ type: 'reply-error', id: request.id, code, reason });
  if (FATAL_CODES.has(code as EdgeErrorCode)) {
    log.error('edge cannot start', { reason });
    await exit(1);
  }
}

function receive(message: SupervisorMessage): void {
  switch (message.type) {
    case 'start':
      enqueue(message, () => start(message.snapshot, message.tls));
      break;
    case 'listen':
      enqueue(message, () => listen(message.host, message.port));
      break;
    case 'apply-config':
      enqueue(message, () => applyConfig(message.snapshot));
      break;
    case 'revocations': {
      // Not queued behind a start or a reload: a revocation must not wait for either.
      let applied = 0;
      for (const change of message.changes) if (revocations.apply(change)) applied++;
      void send({ type: 'reply', id: message.id, value: { applied } });
      break;
    }
    case 'answer':
    case 'answer-error':
      if (!link.settle(message))
        log.warn('late or unknown answer from the supervisor', { id: message.id });
      break;
    case 'drain':
      void drain(message.timeoutMs);
      break;
    case 'rate-block':
      services?.limiter.block(message.key, message.ms);
      break;
    case 'log-level':
      if (message.level !== logLevel()) {
        setLogLevel(message.level);
        log.info('log level changed', { to: message.level });
      }
      break;
    default: {
      const unhandled: never = message;
      log.error('unhandled message from the supervisor, dropped', {
        type: describeMessage(unhandled),
      });
    }
  }
}

let draining: Promise<void> | undefined;

/** Stops accepting, lets in-flight requests finish (bounded), then exits 0. Idempotent. */
function drain(timeoutMs: number): Promise<void> {
  draining ??= drainOnce(timeoutMs);
  return draining;
}

/** Keep-alive clients may still send a request this soon after the last one answered. */
const QUIET_MS = 250;

async function drainOnce(timeoutMs: number): Promise<void> {
  if (listenSocket) stopListening(listenSocket);
  listenSocket = undefined;
  const current = state;
  const deadline = Date.now() + timeoutMs;
  if (current) {
    current.runtime.stopHealthChecks();
    // From now on every answer says `connection: close`, so keep-alive clients move to the
    // edges still listening; wait until nothing is in flight and the connections went quiet.
    current.draining = true;
    current.services.readiness.draining = true;
    // Idle keep-alive connections get a full quiet period to send one more request and be
    // told to close, rather than being cut right away.
    current.lastRequestAt = Date.now();
    // WebSockets never end by themselves: they are told 1001 Going Away (clients reconnect to
    // the edges still listening) and given until the deadline to finish their close handshakes.
    const sockets = openWebSockets();
    await closeWebSockets(Math.max(0, deadline - Date.now()));
    if (openWebSockets() > 0) {
      log.warn('drain timeout: websockets still closing', { open: openWebSockets(), sockets });
    }
    // An answer whose end waits for the rest of its request body (a lingering close, uws-io.ts)
    // is no longer in flight, but closing the server would cut it.
    while (Date.now() < deadline) {
      const idle = current.inflight === 0 && lingeringAnswers() === 0;
      if (idle && Date.now() - current.lastRequestAt >= QUIET_MS) break;
      await new Promise<void>((resolve) => {
        current.onIdle = resolve;
        setTimeout(resolve, Math.min(QUIET_MS, Math.max(0, deadline - Date.now()))).unref();
      });
    }
    if (current.inflight > 0 || lingeringAnswers() > 0) {
      log.warn('drain timeout: cutting requests in flight', {
        inflight: current.inflight,
        lingering: lingeringAnswers(),
      });
    }
    current.services.accessLog.flush();
    current.services.uses.flush();
    current.services.metrics?.stop();
    // Unspent rate-limit tokens go back to the node's buckets.
    current.services.limiter.stop();
    await lastUses;
  }
  if (app) closeServer(app);
  await Promise.allSettled([
    services?.pools.destroyAll(),
    services?.crypto.close(),
    services?.store.close(),
  ]);
  log.info('edge stopped');
  await exit(0);
}

process.on('message', (raw: unknown) => {
  const parsed = parseSupervisorMessage(raw);
  if (parsed.ok) receive(parsed.value);
  else
    log.error('malformed message from the supervisor, dropped', {
      type: describeMessage(raw),
      reason: parsed.reason,
    });
});

// Losing the supervisor means nobody will drain or replace us: stop serving.
process.on('disconnect', () => void drain(5_000));
process.on('SIGTERM', () => void drain(10_000));
// Terminal signals reach the whole process group; the supervisor decides what they mean.
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
// Node's default for SIGUSR1 opens the inspector: the supervisor owns the log level instead.
process.on('SIGUSR1', () => {});
process.on('uncaughtException', (err) => {
  log.error('uncaught exception', { reason: err.stack ?? err.message });
  void send({ type: 'fatal', reason: err.message }).then(() => exit(1));
});

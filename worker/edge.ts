// Entry point of one edge process, forked by the supervisor (which never imports this file).

import uws from 'uWebSockets.js';
import { join } from 'node:path';
import { CryptoPool } from '../crypto-pool/pool.js';
import { AccessLog } from '../shared/access-log.js';
import { type ConfigSnapshot, type EdgeMessage, isSupervisorMessage } from '../shared/ipc.js';
import { createLogger, flushLogs } from '../shared/log.js';
import { createDispatcher, type EdgeState } from './dispatch.js';
import type { EdgeServices } from './edge-services.js';
import { Runtime } from './runtime.js';
import { SessionCache } from './session-cache.js';
import { UpstreamPools } from './upstream-pools.js';

const log = createLogger('edge');
let state: EdgeState | undefined;
let services: EdgeServices | undefined;
let app: uws.TemplatedApp | undefined;
let listenSocket: uws.us_listen_socket | undefined;

function send(message: EdgeMessage): void {
  process.send?.(message);
}

async function exit(code: number): Promise<never> {
  await flushLogs();
  process.exit(code);
}

function listen(
  server: uws.TemplatedApp,
  host: string,
  port: number,
): Promise<uws.us_listen_socket> {
  return new Promise((resolve, reject) => {
    server.listen(host, port, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`cannot listen on ${host}:${port} (address in use or not permitted)`));
    });
  });
}

async function start(snapshot: ConfigSnapshot): Promise<void> {
  const threads = Number(process.env.PROXYAUTH_CRYPTO_THREADS ?? '1');
  services = {
    crypto: new CryptoPool({ threads, maxQueue: threads * 64 }),
    accessLog: new AccessLog(),
    log,
    sessions: new SessionCache(),
    pools: new UpstreamPools(),
  };
  const runtime = await Runtime.build(snapshot, services);
  const { config } = runtime;
  state = {
    runtime,
    services,
    inflight: 0,
    lastRequestAt: 0,
    draining: false,
    onIdle: undefined,
  };
  const certs = join(snapshot.configDir, 'certs');
  app = config.tls
    ? uws.SSLApp({ cert_file_name: join(certs, 'cert.pem'), key_file_name: join(certs, 'key.pem') })
    : uws.App();
  app.any('/*', createDispatcher(state));
  listenSocket = await listen(app, config.host, config.port);
  log.info('edge listening', {
    host: config.host,
    port: config.port,
    tls: config.tls,
    generation: snapshot.generation,
  });
  send({
    type: 'listening',
    generation: snapshot.generation,
    port: uws.us_socket_local_port(listenSocket as unknown as uws.us_socket),
  });
}

async function applyConfig(snapshot: ConfigSnapshot): Promise<void> {
  if (!state || !services) return start(snapshot);
  const next = await Runtime.build(snapshot, services, state.runtime);
  state.runtime = next;
  // Only now, with the new runtime in place, may pools it no longer uses be closed.
  services.pools.retainOnly(next.origins);
  send({ type: 'config-applied', generation: snapshot.generation });
}

/*
 * Config messages are applied one at a time, in order: a snapshot that arrives while the first
 * one is still starting the server must not start a second server. Only the newest waiting
 * snapshot is kept; the ones it supersedes are never applied.
 */
let applying = false;
let waiting: ConfigSnapshot | undefined;

function enqueueConfig(snapshot: ConfigSnapshot): void {
  waiting = snapshot;
  if (!applying) void applyWaiting();
}

async function applyWaiting(): Promise<void> {
  applying = true;
  while (waiting) {
    const snapshot = waiting;
    waiting = undefined;
    try {
      await applyConfig(snapshot);
    } catch (err) {
      await configFailed(snapshot, err);
    }
  }
  applying = false;
}

async function configFailed(snapshot: ConfigSnapshot, err: unknown): Promise<void> {
  const reason = err instanceof Error ? err.message : String(err);
  if (!listenSocket) {
    log.error('edge cannot start', { reason });
    send({ type: 'fatal', reason });
    await exit(1);
  }
  log.error('config rejected by edge, keeping the previous one', {
    reason,
    generation: snapshot.generation,
  });
  send({ type: 'config-rejected', generation: snapshot.generation, reason });
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
  if (listenSocket) uws.us_listen_socket_close(listenSocket);
  listenSocket = undefined;
  const current = state;
  const deadline = Date.now() + timeoutMs;
  if (current) {
    // From now on every answer says `connection: close`, so keep-alive clients move to the
    // edges still listening; wait until nothing is in flight and the connections went quiet.
    current.draining = true;
    // Idle keep-alive connections get a full quiet period to send one more request and be
    // told to close, rather than being cut right away.
    current.lastRequestAt = Date.now();
    while (Date.now() < deadline) {
      if (current.inflight === 0 && Date.now() - current.lastRequestAt >= QUIET_MS) break;
      await new Promise<void>((resolve) => {
        current.onIdle = resolve;
        setTimeout(resolve, Math.min(QUIET_MS, Math.max(0, deadline - Date.now()))).unref();
      });
    }
    if (current.inflight > 0) {
      log.warn('drain timeout: cutting requests in flight', { inflight: current.inflight });
    }
    current.services.accessLog.flush();
  }
  app?.close();
  await Promise.allSettled([services?.pools.destroyAll(), services?.crypto.close()]);
  log.info('edge stopped');
  await exit(0);
}

process.on('message', (message: unknown) => {
  if (!isSupervisorMessage(message)) return;
  if (message.type === 'drain') void drain(message.timeoutMs);
  else enqueueConfig(message.snapshot);
});

// Losing the supervisor means nobody will drain or replace us: stop serving.
process.on('disconnect', () => void drain(5_000));
process.on('SIGTERM', () => void drain(10_000));
// Terminal signals reach the whole process group; the supervisor decides what they mean.
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
process.on('uncaughtException', (err) => {
  log.error('uncaught exception', { reason: err.stack ?? err.message });
  void exit(1);
});

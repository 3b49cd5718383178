import { openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { CryptoPool } from '../../crypto-pool/pool.js';
import { AccessLog } from '../../shared/access-log.js';
import type {
  EdgeAsk,
  EdgeEvent,
  EdgeEventType,
  EdgeMessage,
  ReplyValues,
} from '../../shared/ipc.js';
import { createLogger } from '../../shared/log.js';
import { openStore, type Store } from '../../shared/store.js';
import type { BroadcastResult, EdgeInfo } from '../../supervisor/fleet.js';
import { type GuardConfig, type Guards, serveGuards } from '../../supervisor/guards.js';
import { type KeeperFleet, StoreKeeper } from '../../supervisor/store-keeper.js';
import { createDispatcher, type EdgeState } from '../../worker/dispatch.js';
import type { EdgeServices } from '../../worker/edge-services.js';
import { ReadinessProbe } from '../../worker/health-endpoints.js';
import { RateLimiter } from '../../worker/rate-limiter.js';
import { RevocationSet } from '../../worker/revocation-set.js';
import type { Runtime } from '../../worker/runtime.js';
import { SessionCache } from '../../worker/session-cache.js';
import { SupervisorLink } from '../../worker/supervisor-link.js';
import { TokenUseCounter } from '../../worker/token-use-counter.js';
import { UpstreamPools } from '../../worker/upstream-pools.js';
import { closeServer, createServer, listen, stopListening } from '../../worker/uws-io.js';

/** Lockout off, the default client cap: what most in-process tests want. */
const DEFAULT_GUARDS: GuardConfig = {
  ratelimit_max_clients: 100_000,
  login_lockout: { max_failures: 0, find_time: 600, ban_time: 900 },
  users: [],
};

/** One edge's services wired to a real store and StoreKeeper in this process. */
export interface InProcessNode {
  services: EdgeServices;
  keeper: StoreKeeper;
  /** The supervisor's rate authority and login guard, serving this edge. */
  guards: Guards;
  /** The writer's handle (the edge's services hold a read-only one). */
  store: Store;
  dataDir: string;
  close: () => Promise<void>;
}

/**
 * A node of one edge without processes: the edge's SupervisorLink talks to a StoreKeeper
 * directly (messages still pass as plain objects, answered asynchronously), and the keeper's
 * broadcasts reach the edge's revocation set. The store is a real LMDB environment in a temp
 * dir; `crypto` is only good for Runtime.build's dummy hash.
 */
export async function inProcessNode(
  options: { guards?: GuardConfig; crypto?: CryptoPool } = {},
): Promise<InProcessNode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'proxyauth-node-'));
  const store = openStore(dataDir, { readOnly: false });
  const revocations = new RevocationSet();
  const handlers = new Map<EdgeEventType, ((event: EdgeEvent, edge: EdgeInfo) => void)[]>();
  const answers = new Map<string, (ask: EdgeAsk, edge: EdgeInfo) => unknown>();
  const edge: EdgeInfo = { slot: 1, pid: process.pid, generation: 1 };
  const fleet: KeeperFleet = {
    on: ((type: EdgeEventType, handler: (event: EdgeEvent, edge: EdgeInfo) => void) => {
      handlers.set(type, [...(handlers.get(type) ?? []), handler]);
      return () => {};
    }) as KeeperFleet['on'],
    answer: (type, handler) => {
      answers.set(type, handler as (ask: EdgeAsk, edge: EdgeInfo) => unknown);
    },
    broadcast: (async (body: { type: 'revocations'; changes: [] }) => {
      let applied = 0;
      for (const change of body.changes) if (revocations.apply(change)) applied++;
      const value: ReplyValues['revocations'] = { applied };
      return [{ ...edge, ok: true, value }] as BroadcastResult<'revocations'>[];
    }) as unknown as KeeperFleet['broadcast'],
  };
  const keeper = new StoreKeeper(store, fleet, createLogger('test-keeper'));
  keeper.start();
  const guards = serveGuards(
    {
      ...fleet,
      edges: [edge],
      notifyAll: (notice) => {
        if (notice.type === 'rate-block') services.limiter.block(notice.key, notice.ms);
      },
    },
    store,
    options.guards ?? DEFAULT_GUARDS,
    createLogger('test-guards'),
  );
  const link: SupervisorLink = new SupervisorLink((message: EdgeMessage) => {
    setImmediate(() => {
      if (isAsk(message)) {
        const handler = answers.get(message.type);
        Promise.resolve()
          .then(() => {
            if (!handler) throw new Error(`${message.type} is not served`);
            return handler(message, edge);
          })
          .then(
            (value) => link.settle({ type: 'answer', id: message.id, value }),
            (err: Error & { code?: string }) =>
              link.settle({
                type: 'answer-error',
                id: message.id,
                code: err.code ?? 'ASK_FAILED',
                reason: err.message,
              }),
          );
      } else if (message.type !== 'reply' && message.type !== 'reply-error') {
        for (const handler of handlers.get(message.type) ?? []) handler(message, edge);
      }
    });
    return true;
  });
  const readOnly = openStore(dataDir, { readOnly: true });
  const services: EdgeServices = {
    crypto: options.crypto ?? ({ hashPassword: async () => 'unused' } as unknown as CryptoPool),
    accessLog: new AccessLog(openSync('/dev/null', 'w')),
    log: createLogger('test-edge'),
    sessions: new SessionCache(),
    pools: new UpstreamPools(),
    revocations,
    uses: new TokenUseCounter((uses) => link.notify({ type: 'token-uses', uses })),
    supervisor: link,
    limiter: new RateLimiter(link, createLogger('test-limiter')),
    store: readOnly,
    metrics: undefined,
    readiness: new ReadinessProbe(async () => true),
  };
  return {
    services,
    keeper,
    guards,
    store,
    dataDir,
    close: async () => {
      guards.stop();
      services.limiter.stop();
      await services.pools.destroyAll();
      await readOnly.close();
      await keeper.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Serves `runtime` with `node`'s services on a uWS app bound to 127.0.0.1 on a free port, as an
 * edge would; stops it (and closes the node) when `t` ends. Resolves with the base URL.
 */
export async function serveEdge(t: Test, node: InProcessNode, runtime: Runtime): Promise<string> {
  return (await serveEdgeState(t, node, runtime)).url;
}

/** As serveEdge, with the edge's state: a test swaps `state.runtime` as a reload does. */
export async function serveEdgeState(
  t: Test,
  node: InProcessNode,
  runtime: Runtime,
): Promise<{ url: string; state: EdgeState }> {
  const state: EdgeState = {
    runtime,
    services: node.services,
    inflight: 0,
    lastRequestAt: 0,
    draining: false,
    onIdle: undefined,
  };
  const app = createServer(null, createDispatcher(state));
  const bound = await listen(app, '127.0.0.1', 0);
  if (bound === undefined) throw new Error('cannot listen');
  t.teardown(async () => {
    stopListening(bound.listener);
    closeServer(app);
    await node.close();
  });
  return { url: `http://127.0.0.1:${bound.port}`, state };
}

function isAsk(message: EdgeMessage): message is EdgeAsk {
  return (
    message.type === 'change-revocations' ||
    message.type === 'rate-take' ||
    message.type === 'login-attempt' ||
    message.type === 'csrf-spend'
  );
}

import { type ChildProcess, fork } from 'node:child_process';
import {
  type ConfigSnapshot,
  type EdgeMessage,
  isEdgeMessage,
  type SupervisorMessage,
} from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';

/** What the fleet needs of a config generation, beyond the snapshot the edges parse. */
export interface FleetPlan {
  snapshot: ConfigSnapshot;
  instances: number;
  cryptoThreads: number;
  /** Settings an edge cannot change in place (listening socket, process env): a change rolls the fleet. */
  processKey: string;
}

interface Edge {
  slot: number;
  child: ChildProcess;
  retiring: boolean;
  startedAt: number;
}

const START_TIMEOUT_MS = 20_000;
const APPLY_TIMEOUT_MS = 10_000;
const BACKOFF_MAX_MS = 5_000;
/** An edge that lived this long before crashing is restarted at once, with its backoff reset. */
const HEALTHY_AFTER_MS = 10_000;

/**
 * The edge processes of one node. Edges share the port (SO_REUSEPORT); a crashed edge is
 * replaced with exponential backoff while the others keep serving.
 */
export class Fleet {
  readonly #edgePath: string;
  readonly #log: Logger;
  #plan: FleetPlan | undefined;
  #edges = new Set<Edge>();
  #failures = new Map<number, number>();
  #stopping = false;

  constructor(edgePath: string, log: Logger) {
    this.#edgePath = edgePath;
    this.#log = log;
  }

  get pids(): number[] {
    return [...this.#edges].map((e) => e.child.pid ?? 0);
  }

  /** Starts `plan.instances` edges; rejects (and stops them) unless all are listening. */
  async start(plan: FleetPlan): Promise<void> {
    this.#plan = plan;
    await this.#spawnAll(plan);
  }

  /**
   * Moves every edge to a new config generation without dropping requests in flight. Rejects,
   * keeping the previous generation everywhere, when no edge could apply it; an edge that failed
   * while others succeeded is replaced (its replacement starts on the new generation).
   */
  async apply(plan: FleetPlan): Promise<void> {
    const previous = this.#plan;
    if (!previous || previous.processKey !== plan.processKey) return this.#roll(plan);
    this.#plan = plan;
    const generation = plan.snapshot.generation;
    const message: SupervisorMessage = { type: 'config', snapshot: plan.snapshot };
    const edges = [...this.#edges];
    const results = await Promise.allSettled(
      edges.map((e) => {
        const applied = this.#waitMessage(
          e,
          APPLY_TIMEOUT_MS,
          (m) => m.type === 'config-applied' && m.generation === generation,
        );
        e.child.send(message);
        return applied;
      }),
    );
    const failed = edges.filter((_, i) => results[i]?.status === 'rejected');
    if (failed.length === 0) return;
    if (failed.length === edges.length) {
      this.#plan = previous;
      const first = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      throw new Error(
        `no edge applied generation ${generation}: ${(first.reason as Error).message}`,
      );
    }
    this.#log.error('edges failed to apply the new config: replacing them', {
      failed: failed.length,
      generation,
    });
    for (const edge of failed) edge.child.kill('SIGKILL');
  }

  /** Drains every edge (bounded by `timeoutMs`), then kills what is left. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.allSettled([...this.#edges].map((e) => this.#retire(e, timeoutMs)));
  }

  /**
   * New edges listen next to the old ones (same port) before the old ones drain away. The plan
   * switches first, so an old edge that crashes meanwhile is replaced on the new generation;
   * every edge not spawned by this roll is retired afterwards.
   */
  async #roll(plan: FleetPlan): Promise<void> {
    const previous = this.#plan;
    this.#plan = plan;
    let fresh: Edge[];
    try {
      fresh = await this.#spawnAll(plan);
    } catch (err) {
      this.#plan = previous;
      throw err;
    }
    const old = [...this.#edges].filter((e) => !fresh.includes(e));
    await Promise.allSettled(old.map((e) => this.#retire(e, 30_000)));
  }

  /** Spawns `plan.instances` edges; unless all of them listen, stops them and rejects. */
  async #spawnAll(plan: FleetPlan): Promise<Edge[]> {
    const edges = Array.from({ length: plan.instances }, (_, slot) => this.#spawn(slot, plan));
    try {
      await Promise.all(edges.map((e) => this.#waitListening(e)));
    } catch (err) {
      await Promise.allSettled(edges.map((e) => this.#retire(e, 0)));
      throw err;
    }
    return edges;
  }

  #spawn(slot: number, plan: FleetPlan): Edge {
    const child = fork(this.#edgePath, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        PROXYAUTH_EDGE_SLOT: String(slot),
        PROXYAUTH_CRYPTO_THREADS: String(plan.cryptoThreads),
      },
    });
    const edge: Edge = { slot, child, retiring: false, startedAt: Date.now() };
    this.#edges.add(edge);
    child.on('exit', (code, signal) => this.#onExit(edge, code, signal));
    child.on('error', (err) =>
      this.#log.error('edge process error', { slot, reason: err.message }),
    );
    child.send({ type: 'config', snapshot: plan.snapshot } satisfies SupervisorMessage);
    return edge;
  }

  #onExit(edge: Edge, code: number | null, signal: NodeJS.Signals | null): void {
    this.#edges.delete(edge);
    if (edge.retiring || this.#stopping) return;
    const lived = Date.now() - edge.startedAt;
    const failures = lived >= HEALTHY_AFTER_MS ? 0 : (this.#failures.get(edge.slot) ?? 0) + 1;
    this.#failures.set(edge.slot, failures);
    const delay = failures === 0 ? 0 : Math.min(BACKOFF_MAX_MS, 100 * 2 ** (failures - 1));
    this.#log.error('edge exited unexpectedly, replacing it', {
      slot: edge.slot,
      pid: edge.child.pid,
      code: code ?? undefined,
      signal: signal ?? undefined,
      restartInMs: delay,
    });
    setTimeout(() => this.#replace(edge.slot), delay).unref();
  }

  #replace(slot: number): void {
    const plan = this.#plan;
    if (this.#stopping || !plan) return;
    const edge = this.#spawn(slot, plan);
    this.#waitListening(edge).catch((err: Error) =>
      this.#log.error('replacement edge failed to start', { slot, reason: err.message }),
    );
  }

  #waitListening(edge: Edge): Promise<EdgeMessage> {
    return this.#waitMessage(edge, START_TIMEOUT_MS, (m) => m.type === 'listening');
  }

  /** Resolves on the first message that matches, rejects on `fatal`, exit or timeout. */
  #waitMessage(
    edge: Edge,
    timeoutMs: number,
    match: (m: EdgeMessage) => boolean,
  ): Promise<EdgeMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`edge ${edge.slot} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onMessage = (m: unknown) => {
        if (!isEdgeMessage(m)) return;
        if (m.type === 'fatal') done(new Error(m.reason));
        else if (m.type === 'config-rejected') done(new Error(m.reason));
        else if (match(m)) done(undefined, m);
      };
      const onExit = () => done(new Error(`edge ${edge.slot} exited`));
      const done = (err?: Error, m?: EdgeMessage) => {
        clearTimeout(timer);
        edge.child.off('message', onMessage);
        edge.child.off('exit', onExit);
        if (err) reject(err);
        else resolve(m!);
      };
      edge.child.on('message', onMessage);
      edge.child.on('exit', onExit);
    });
  }

  /** Asks an edge to drain and waits for its exit; SIGKILL after the drain time plus a margin. */
  #retire(edge: Edge, timeoutMs: number): Promise<void> {
    edge.retiring = true;
    const { child } = edge;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 2_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (child.connected) child.send({ type: 'drain', timeoutMs } satisfies SupervisorMessage);
      else child.kill('SIGTERM');
    });
  }
}

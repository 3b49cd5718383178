import type {
  AnswerValues,
  ConfigSnapshot,
  EdgeAsk,
  EdgeAskType,
  EdgeEvent,
  EdgeEventType,
  EdgeNotice,
  EdgeRequestBody,
  EdgeRequestType,
  ReplyValues,
  TlsFiles,
} from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import { nextFailureCount, restartDelayMs } from './backoff.js';
import { type Clock, systemClock } from './clock.js';
import { EdgeChannel, type EdgeProcess } from './edge-channel.js';
import { FleetError } from './fleet-error.js';
import { IpcError } from './ipc-error.js';
import { type ReservePort, reservePort } from './port-reservation.js';

/** What the fleet needs of a config generation, beyond the snapshot the edges parse. */
export interface FleetPlan {
  snapshot: ConfigSnapshot;
  instances: number;
  cryptoThreads: number;
  /** `max_header_bytes`: uWS's own head limit for heads read in several parts is set from it. */
  maxHeaderBytes: number;
  host: string;
  /** 0: any free port, picked at start and kept while `host` and `port` stay. */
  port: number;
  /** The certificate pair edges load when `tls` is on. */
  tls: TlsFiles | null;
  /**
   * Settings an edge cannot change in place (certificate, env, count): a change rolls the
   * fleet, as does a new listening address (compared by the fleet, which knows the port
   * picked for port 0).
   */
  processKey: string;
}

/** Starts one edge process for `slot` of `plan`. */
/** Answers one type of edge ask; a rejection is sent to the edge as `answer-error`. */
export type AskHandler<T extends EdgeAskType> = (
  ask: Extract<EdgeAsk, { type: T }>,
  edge: EdgeInfo,
) => Promise<AnswerValues[T]> | AnswerValues[T];

export type SpawnEdge = (slot: number, plan: FleetPlan) => EdgeProcess;

/** Timeouts in milliseconds. */
export interface FleetTimeouts {
  /** Reply to `start` (runtime and app built). */
  startMs: number;
  /** Reply to `listen`. */
  listenMs: number;
  /** Reply to `apply-config`. */
  applyMs: number;
  /** How long retired edges of a roll may drain. */
  rollDrainMs: number;
  /** Beyond a drain's own timeout, before SIGKILL. */
  killGraceMs: number;
}

export interface FleetOptions {
  log: Logger;
  spawn: SpawnEdge;
  /** Holds a new address exclusively before edges bind it (see port-reservation.ts). */
  reservePort?: ReservePort;
  clock?: Clock;
  timeouts?: Partial<FleetTimeouts>;
}

/** One edge as seen from outside the fleet. */
export interface EdgeInfo {
  slot: number;
  pid: number | undefined;
  generation: number;
}

/** The outcome of a broadcast for one edge. */
export type BroadcastResult<T extends EdgeRequestType> = EdgeInfo &
  ({ ok: true; value: ReplyValues[T] } | { ok: false; error: IpcError });

export interface ListenAddress {
  host: string;
  port: number;
}

type EdgeState = 'starting' | 'serving' | 'retiring' | 'gone';

interface Edge {
  readonly slot: number;
  readonly child: EdgeProcess;
  readonly channel: EdgeChannel;
  readonly startedAt: number;
  readonly exited: Promise<void>;
  /** The plan it started with, or the last one it applied. */
  plan: FleetPlan;
  state: EdgeState;
  /** Replaced with backoff when it exits on its own; false while a start or roll owns it. */
  replaceOnExit: boolean;
}

const DEFAULT_TIMEOUTS: FleetTimeouts = {
  startMs: 20_000,
  listenMs: 10_000,
  applyMs: 10_000,
  rollDrainMs: 30_000,
  killGraceMs: 2_000,
};

/**
 * The edge processes of one node. Edges share the port (SO_REUSEPORT); a crashed edge is
 * replaced with exponential backoff while the others keep serving. Every exchange with an edge
 * is a request with an id and a timeout (edge-channel.ts).
 *
 * Invariants: edges of the current plan serve the current generation or are being replaced;
 * a start or roll either ends with `plan.instances` listening edges or leaves nothing of itself
 * behind.
 */
export class Fleet {
  readonly #log: Logger;
  readonly #spawnEdge: SpawnEdge;
  readonly #reservePort: ReservePort;
  readonly #clock: Clock;
  readonly #timeouts: FleetTimeouts;
  readonly #handlers = new Map<EdgeEventType, Set<(event: EdgeEvent, edge: EdgeInfo) => void>>();
  readonly #edges = new Set<Edge>();
  readonly #askHandlers = new Map<EdgeAskType, AskHandler<EdgeAskType>>();
  readonly #failures = new Map<number, number>();
  readonly #timers = new Set<() => void>();
  #plan: FleetPlan | undefined;
  #address: ListenAddress | undefined;
  #stopping = false;
  #restarts = 0;

  constructor(options: FleetOptions) {
    this.#log = options.log;
    this.#spawnEdge = options.spawn;
    this.#reservePort = options.reservePort ?? reservePort;
    this.#clock = options.clock ?? systemClock;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  }

  /** Edges that are starting or serving (not retiring). */
  get edges(): EdgeInfo[] {
    return [...this.#edges].filter((e) => e.state !== 'retiring').map(info);
  }

  /** The address edges listen on, with a port 0 resolved; undefined before start. */
  get address(): ListenAddress | undefined {
    return this.#address;
  }

  get generation(): number | undefined {
    return this.#plan?.snapshot.generation;
  }

  /** Edges that exited on their own and were scheduled for replacement, since start. */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Readiness (supervisor/health.ts): how many edges the plan wants, and how many listen and
   * serve the current generation. Starting, retiring and older-generation edges do not count.
   */
  get serving(): { wanted: number; current: number } {
    const plan = this.#plan;
    if (!plan) return { wanted: 0, current: 0 };
    let current = 0;
    for (const e of this.#edges)
      if (e.state === 'serving' && e.plan.snapshot.generation === plan.snapshot.generation)
        current++;
    return { wanted: plan.instances, current };
  }

  /**
   * Routes messages that edges send on their own of type `type` to `handler`. Returns a
   * function that removes the handler.
   */
  on<T extends EdgeEventType>(
    type: T,
    handler: (event: Extract<EdgeEvent, { type: T }>, edge: EdgeInfo) => void,
  ): () => void {
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    const entry = handler as (event: EdgeEvent, edge: EdgeInfo) => void;
    set.add(entry);
    return () => set.delete(entry);
  }

  /**
   * Serves the asks of type `type` of every edge (present and future) with `handler`; the
   * last one set for a type wins. Until one is set, asks of that type are refused.
   */
  answer<T extends EdgeAskType>(type: T, handler: AskHandler<T>): void {
    this.#askHandlers.set(type, handler as unknown as AskHandler<EdgeAskType>);
  }

  /**
   * Sends a notice to every live edge, draining ones included (they still answer the requests
   * of their open connections); an edge that cannot take it misses it.
   */
  notifyAll(notice: EdgeNotice): void {
    for (const edge of this.#edges) if (edge.state !== 'gone') edge.channel.notify(notice);
  }

  /**
   * Sends one request to every edge that is not retiring and collects each edge's outcome
   * (never rejects). An edge still starting answers after its start, in order.
   */
  async broadcast<T extends EdgeRequestType>(
    body: EdgeRequestBody<T>,
    timeoutMs: number,
  ): Promise<BroadcastResult<T>[]> {
    const results = await this.#broadcast(body, timeoutMs);
    return results.map(({ edge, result }) => ({ ...info(edge), ...result }));
  }

  /**
   * Starts `plan.instances` edges and resolves once all of them listen. Rejects with PortError
   * when the address is taken, FleetError(EDGE_START_FAILED) when an edge fails, exits or
   * times out before listening; the edges already started are then stopped.
   */
  async start(plan: FleetPlan): Promise<void> {
    if (this.#plan) throw new Error('fleet already started');
    const { edges, address } = await this.#launch(plan);
    this.#plan = plan;
    this.#address = address;
    this.#adopt(edges);
  }

  /**
   * Moves every edge to a new config generation without dropping requests in flight: in place
   * when the process key and the address are the same ('applied'), else by a roll ('rolled':
   * new edges listen next to the old ones, then the old ones drain). Rejects, keeping the previous generation
   * everywhere, when no edge could apply it (FleetError CONFIG_NOT_APPLIED) or when the roll's
   * new edges cannot start (PortError, FleetError EDGE_START_FAILED); an edge that failed
   * while others succeeded is replaced, its replacement starting on the new generation.
   */
  async apply(plan: FleetPlan): Promise<'applied' | 'rolled'> {
    const previous = this.#plan;
    if (!previous) throw new Error('fleet not started');
    const target = this.#target(plan);
    const moved = target.host !== this.#address?.host || target.port !== this.#address?.port;
    if (moved || previous.processKey !== plan.processKey) {
      await this.#roll(plan);
      return 'rolled';
    }
    this.#plan = plan;
    const generation = plan.snapshot.generation;
    const results = await this.#broadcast(
      { type: 'apply-config', snapshot: plan.snapshot },
      this.#timeouts.applyMs,
    );
    const failed: { edge: Edge; error: IpcError }[] = [];
    for (const { edge, result } of results) {
      if (!result.ok) failed.push({ edge, error: result.error });
      else if (result.value.generation !== generation)
        failed.push({
          edge,
          error: new IpcError('IPC_BAD_REPLY', `applied ${result.value.generation}`),
        });
      else edge.plan = plan;
    }
    if (results.length > 0 && failed.length === results.length) {
      this.#plan = previous;
      // An edge that timed out may still apply the new generation later: replace it too.
      for (const f of failed) if (f.error.code !== 'IPC_REFUSED') this.#replaceNow(f.edge, true);
      throw new FleetError(
        'CONFIG_NOT_APPLIED',
        `no edge applied generation ${generation}: ${failed[0]?.error.message}`,
      );
    }
    if (failed.length > 0) {
      this.#log.error('edges failed to apply the new config: replacing them', {
        failed: failed.length,
        generation,
        reason: failed[0]?.error.message,
      });
      for (const f of failed) this.#replaceNow(f.edge, f.error.code !== 'IPC_REFUSED');
    }
    return 'applied';
  }

  /** Drains every edge (bounded by `timeoutMs`), then kills what is left. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    for (const cancel of this.#timers) cancel();
    this.#timers.clear();
    await Promise.allSettled([...this.#edges].map((e) => this.#retire(e, timeoutMs)));
  }

  /**
   * New edges listen next to the old ones (same port thanks to SO_REUSEPORT, or a new address)
   * before the old ones drain away. Until the new ones all listen, the old plan stays current:
   * an old edge that crashes meanwhile is replaced on it, and a failed roll leaves the fleet as
   * it was. Every edge not of the new plan is retired afterwards.
   */
  async #roll(plan: FleetPlan): Promise<void> {
    const { edges: fresh, address } = await this.#launch(plan);
    this.#plan = plan;
    this.#address = address;
    this.#adopt(fresh);
    const old = [...this.#edges].filter((e) => !fresh.includes(e));
    await Promise.allSettled(old.map((e) => this.#retire(e, this.#timeouts.rollDrainMs)));
  }

  /**
   * Spawns and starts `plan.instances` edges, then makes them listen. An address not already
   * ours is first held exclusively (refusing to join someone else's port; for port 0 this is
   * where the port is picked) and released just before the edges bind it. Unless every edge
   * listens, all of them are stopped and the first failure is thrown.
   */
  async #launch(plan: FleetPlan): Promise<{ edges: Edge[]; address: ListenAddress }> {
    const target = this.#target(plan);
    let reservation = target.ours ? undefined : await this.#reservePort(target.host, target.port);
    const address = { host: target.host, port: reservation?.port ?? target.port };
    const edges: Edge[] = [];
    try {
      for (let slot = 0; slot < plan.instances; slot++) edges.push(this.#spawn(slot, plan, false));
      await Promise.all(edges.map((e) => this.#startEdge(e)));
      await reservation?.release();
      reservation = undefined;
      await Promise.all(edges.map((e) => this.#listen(e, address.host, address.port)));
      return { edges, address };
    } catch (err) {
      await reservation?.release();
      await Promise.allSettled(edges.map((e) => this.#retire(e, 0)));
      throw startError(err);
    }
  }

  /**
   * Where `plan`'s edges listen, and whether that port is already ours (then it is not held
   * first). Port 0 keeps the port in use while the host stays. The same port on another host
   * counts as ours: our own edges hold it and may overlap the new address (127.0.0.1 ->
   * 0.0.0.0), which a plain bind would take for a stranger; a stranger there without
   * SO_REUSEPORT still makes the new edges' bind fail, and the roll is undone.
   */
  #target(plan: FleetPlan): ListenAddress & { ours: boolean } {
    const current = this.#address;
    if (current && plan.host === current.host && (plan.port === 0 || plan.port === current.port))
      return { ...current, ours: true };
    if (current && plan.port === current.port)
      return { host: plan.host, port: plan.port, ours: true };
    return { host: plan.host, port: plan.port, ours: false };
  }

  #spawn(slot: number, plan: FleetPlan, replaceOnExit: boolean): Edge {
    const child = this.#spawnEdge(slot, plan);
    const label = `edge ${slot}${child.pid ? ` (pid ${child.pid})` : ''}`;
    let onExited: () => void = () => {};
    const exited = new Promise<void>((resolve) => {
      onExited = resolve;
    });
    const edge: Edge = {
      slot,
      child,
      plan,
      state: 'starting',
      replaceOnExit,
      startedAt: this.#clock.now(),
      exited,
      channel: new EdgeChannel(child, {
        log: this.#log,
        clock: this.#clock,
        label,
        onEvent: (event) => this.#onEvent(edge, event),
        onAsk: async (ask) => {
          const handler = this.#askHandlers.get(ask.type);
          if (!handler) throw new Error(`${ask.type} is not served yet`);
          return handler(ask, info(edge));
        },
      }),
    };
    this.#edges.add(edge);
    child.on('exit', (code, signal) => {
      this.#onExit(edge, code, signal);
      onExited();
    });
    child.on('error', (err) =>
      this.#log.error('edge process error', { slot, reason: err.message }),
    );
    return edge;
  }

  async #startEdge(edge: Edge): Promise<void> {
    const { generation } = edge.plan.snapshot;
    const reply = await this.#request(
      edge,
      { type: 'start', snapshot: edge.plan.snapshot, tls: edge.plan.tls },
      this.#timeouts.startMs,
    );
    if (reply.generation !== generation)
      throw new IpcError(
        'IPC_BAD_REPLY',
        `edge ${edge.slot} started generation ${reply.generation}`,
      );
  }

  async #listen(edge: Edge, host: string, port: number): Promise<number> {
    const reply = await this.#request(
      edge,
      { type: 'listen', host, port },
      this.#timeouts.listenMs,
    );
    if (reply.port !== port)
      throw new IpcError('IPC_BAD_REPLY', `edge ${edge.slot} listens on ${reply.port}`);
    if (edge.state === 'starting') edge.state = 'serving';
    return reply.port;
  }

  #request<T extends EdgeRequestType>(
    edge: Edge,
    body: EdgeRequestBody<T>,
    timeoutMs: number,
  ): Promise<ReplyValues[T]> {
    return edge.channel.request(body, timeoutMs);
  }

  async #broadcast<T extends EdgeRequestType>(
    body: EdgeRequestBody<T>,
    timeoutMs: number,
  ): Promise<
    { edge: Edge; result: { ok: true; value: ReplyValues[T] } | { ok: false; error: IpcError } }[]
  > {
    const edges = [...this.#edges].filter((e) => e.state === 'starting' || e.state === 'serving');
    return Promise.all(
      edges.map((edge) =>
        this.#request(edge, body, timeoutMs).then(
          (value) => ({ edge, result: { ok: true as const, value } }),
          (err: unknown) => ({ edge, result: { ok: false as const, error: asIpcError(err) } }),
        ),
      ),
    );
  }

  /** Hands edges of a finished start or roll to crash recovery. */
  #adopt(edges: readonly Edge[]): void {
    for (const edge of edges) {
      edge.replaceOnExit = true;
      if (edge.state === 'gone') this.#scheduleReplacement(edge.slot, 0);
    }
  }

  /**
   * Takes an edge out at once and starts its replacement on the current plan: SIGKILL for one
   * that stopped answering, a drain for one that answered.
   */
  #replaceNow(edge: Edge, kill: boolean): void {
    if (edge.state === 'retiring' || edge.state === 'gone') return;
    if (kill) {
      edge.state = 'retiring';
      edge.child.kill('SIGKILL');
    } else void this.#retire(edge, this.#timeouts.rollDrainMs);
    void this.#spawnReplacement(edge.slot);
  }

  #onExit(edge: Edge, code: number | null, signal: NodeJS.Signals | null): void {
    const was = edge.state;
    edge.state = 'gone';
    this.#edges.delete(edge);
    if (was === 'retiring' || this.#stopping || !edge.replaceOnExit) return;
    const lived = this.#clock.now() - edge.startedAt;
    const failures = nextFailureCount(this.#failures.get(edge.slot) ?? 0, lived);
    this.#failures.set(edge.slot, failures);
    const delay = restartDelayMs(failures);
    this.#restarts++;
    this.#log.error('edge exited unexpectedly, replacing it', {
      slot: edge.slot,
      pid: edge.child.pid,
      code: code ?? undefined,
      signal: signal ?? undefined,
      restartInMs: delay,
    });
    this.#scheduleReplacement(edge.slot, delay);
  }

  #scheduleReplacement(slot: number, delayMs: number): void {
    const cancel = this.#clock.schedule(delayMs, () => {
      this.#timers.delete(cancel);
      void this.#spawnReplacement(slot);
    });
    this.#timers.add(cancel);
  }

  /**
   * Starts an edge for `slot` on the current plan and address, unless one is already there. On
   * failure it is killed, and its exit schedules the next attempt with backoff.
   */
  async #spawnReplacement(slot: number): Promise<void> {
    const plan = this.#plan;
    const address = this.#address;
    if (this.#stopping || !plan || !address || slot >= plan.instances) return;
    const taken = [...this.#edges].some(
      (e) =>
        e.slot === slot &&
        e.plan.processKey === plan.processKey &&
        (e.state === 'starting' || e.state === 'serving'),
    );
    if (taken) return;
    const edge = this.#spawn(slot, plan, true);
    try {
      await this.#startEdge(edge);
      await this.#listen(edge, address.host, address.port);
    } catch (err) {
      this.#log.error('replacement edge failed to start', {
        slot,
        reason: (err as Error).message,
      });
      if (edge.state !== 'gone' && edge.state !== 'retiring') edge.child.kill('SIGKILL');
    }
  }

  #onEvent(edge: Edge, event: EdgeEvent): void {
    switch (event.type) {
      case 'fatal':
        this.#log.error('edge reported a fatal error', {
          slot: edge.slot,
          pid: edge.child.pid,
          reason: event.reason,
        });
        break;
      case 'token-issued':
      case 'token-uses':
      case 'rate-settle':
      case 'login-result':
      case 'metrics':
        break;
      default: {
        const unhandled: never = event;
        this.#log.error('unhandled event from an edge', {
          type: String((unhandled as EdgeEvent).type),
        });
        return;
      }
    }
    for (const handler of this.#handlers.get(event.type) ?? []) handler(event, info(edge));
  }

  /**
   * Asks an edge to drain and waits for its exit; SIGKILL after the drain time plus a grace
   * period. Calling it again (e.g. stop during a roll) may only shorten the deadline.
   */
  #retire(edge: Edge, timeoutMs: number): Promise<void> {
    if (edge.state === 'gone') return Promise.resolve();
    const first = edge.state !== 'retiring';
    edge.state = 'retiring';
    const cancelKill = this.#clock.schedule(timeoutMs + this.#timeouts.killGraceMs, () =>
      edge.child.kill('SIGKILL'),
    );
    void edge.exited.then(cancelKill);
    if (first && !edge.channel.notify({ type: 'drain', timeoutMs })) edge.child.kill('SIGTERM');
    return edge.exited;
  }
}

function info(edge: Edge): EdgeInfo {
  return { slot: edge.slot, pid: edge.child.pid, generation: edge.plan.snapshot.generation };
}

function asIpcError(err: unknown): IpcError {
  return err instanceof IpcError
    ? err
    : new IpcError('IPC_EDGE_EXITED', err instanceof Error ? err.message : String(err));
}

/** Port errors keep their own code and message; anything else is an edge that did not start. */
function startError(err: unknown): Error {
  if (!(err instanceof IpcError)) return err as Error;
  return new FleetError('EDGE_START_FAILED', err.message, { cause: err });
}

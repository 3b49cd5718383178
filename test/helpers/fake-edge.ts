import { EventEmitter } from 'node:events';
import type { EdgeRequest, SupervisorMessage } from '../../shared/ipc.js';
import type { LogFields, Logger } from '../../shared/log.js';
import type { Clock } from '../../supervisor/clock.js';
import type { EdgeProcess } from '../../supervisor/edge-channel.js';
import type { FleetPlan, SpawnEdge } from '../../supervisor/fleet.js';
import type { PortReservation, ReservePort } from '../../supervisor/port-reservation.js';

/** Lets IPC deliveries (setImmediate) and the promise chains behind them run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A clock whose time only moves when the test says so. */
export class FakeClock implements Clock {
  #now = 1_000_000;
  #seq = 0;
  #timers: { at: number; seq: number; fn: () => void; done: boolean }[] = [];

  now(): number {
    return this.#now;
  }

  schedule(ms: number, fn: () => void): () => void {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, done: false };
    this.#timers.push(timer);
    return () => {
      timer.done = true;
    };
  }

  /** Delays of the timers still waiting, from now, in firing order. */
  get pendingDelays(): number[] {
    return this.#live().map((t) => t.at - this.#now);
  }

  /** Moves time forward, firing due timers in order and letting their effects settle. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const next = this.#live()[0];
      if (!next || next.at > end) break;
      this.#now = next.at;
      next.done = true;
      next.fn();
    }
    this.#now = end;
    await settle();
  }

  #live() {
    this.#timers = this.#timers.filter((t) => !t.done);
    return [...this.#timers].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}

/** How a fake edge answers one request type. */
export type Answer = 'ok' | 'refuse' | 'ignore' | 'exit' | 'fatal';

/** How a fake edge behaves; anything not given answers 'ok'. */
export interface Script {
  start?: Answer;
  listen?: Answer;
  'apply-config'?: Answer;
  revocations?: Answer;
  /** On drain: exit 0 (default) or ignore it. */
  drain?: 'exit' | 'ignore';
}

let nextPid = 50_000;

/** A ChildProcess stand-in driven by a script; messages are delivered asynchronously like IPC. */
export class FakeEdge extends EventEmitter implements EdgeProcess {
  readonly pid = nextPid++;
  readonly slot: number;
  readonly plan: FleetPlan;
  connected = true;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly received: SupervisorMessage[] = [];
  readonly signals: NodeJS.Signals[] = [];
  script: Script;

  constructor(slot: number, plan: FleetPlan, script: Script) {
    super();
    this.slot = slot;
    this.plan = plan;
    this.script = script;
  }

  get exited(): boolean {
    return this.exitCode !== null || this.signalCode !== null;
  }

  /** Types of the messages received, in order. */
  get types(): string[] {
    return this.received.map((m) => m.type);
  }

  /** The generation of every config this edge was given (start, then each apply). */
  get generations(): number[] {
    return this.received.flatMap((m) =>
      m.type === 'start' || m.type === 'apply-config' ? [m.snapshot.generation] : [],
    );
  }

  send(message: SupervisorMessage): boolean {
    if (!this.connected) return false;
    this.received.push(structuredClone(message));
    setImmediate(() => this.#handle(message));
    return true;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exited) return false;
    this.signals.push(signal);
    if (signal === 'SIGKILL' || (signal === 'SIGTERM' && this.script.drain !== 'ignore'))
      setImmediate(() => this.exit(null, signal));
    return true;
  }

  /** Sends a raw message to the supervisor, as the edge would. */
  emitMessage(message: unknown): void {
    setImmediate(() => this.emit('message', message));
  }

  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exitCode = code;
    this.signalCode = signal;
    this.connected = false;
    this.emit('exit', code, signal);
    this.emit('disconnect');
  }

  #handle(message: SupervisorMessage): void {
    if (this.exited) return;
    if (message.type === 'drain') {
      if (this.script.drain !== 'ignore') this.exit(0);
      return;
    }
    // Answers to asks: this fake never asks; rate-limit notices concern no request here.
    if (message.type === 'answer' || message.type === 'answer-error') return;
    if (message.type === 'rate-block' || message.type === 'log-level') return;
    this.#answer(message, this.script[message.type] ?? 'ok');
  }

  #answer(request: EdgeRequest, answer: Answer): void {
    const { id } = request;
    switch (answer) {
      case 'ok':
        this.emit('message', { type: 'reply', id, value: okValue(request) });
        return;
      case 'refuse':
        this.emit('message', { type: 'reply-error', id, code: 'CONFIG_REJECTED', reason: 'no' });
        return;
      case 'ignore':
        return;
      case 'exit':
        this.exit(1);
        return;
      case 'fatal':
        this.emit('message', { type: 'fatal', reason: `cannot ${request.type}: boom` });
        this.exit(1);
        return;
    }
  }
}

function okValue(request: EdgeRequest): unknown {
  switch (request.type) {
    case 'start':
    case 'apply-config':
      return { generation: request.snapshot.generation };
    case 'listen':
      return { port: request.port };
    case 'revocations':
      return { applied: request.changes.length };
  }
}

/** A spawner of fake edges; `script` picks each new edge's behaviour (n counts spawns from 0). */
export function fakeSpawner(
  script: (slot: number, plan: FleetPlan, n: number) => Script = () => ({}),
): { spawn: SpawnEdge; spawned: FakeEdge[] } {
  const spawned: FakeEdge[] = [];
  const spawn: SpawnEdge = (slot, plan) => {
    const edge = new FakeEdge(slot, plan, script(slot, plan, spawned.length));
    spawned.push(edge);
    return edge;
  };
  return { spawn, spawned };
}

/** A port reservation stand-in: records what was asked and when it was released. */
export function fakePorts(picked = 40_000): {
  reservePort: ReservePort;
  asked: { host: string; port: number }[];
  released: number;
  taken: Set<string>;
} {
  const state = {
    asked: [] as { host: string; port: number }[],
    released: 0,
    taken: new Set<string>(),
    reservePort: (async (host: string, port: number): Promise<PortReservation> => {
      state.asked.push({ host, port });
      if (state.taken.has(`${host}:${port}`)) {
        const { PortError } = await import('../../supervisor/port-reservation.js');
        throw new PortError('PORT_IN_USE', `${host}:${port} is already in use`);
      }
      return {
        port: port === 0 ? picked : port,
        release: async () => {
          state.released++;
        },
      };
    }) as ReservePort,
  };
  return state;
}

/** A logger that keeps every line, for assertions. */
export function memoryLog(): Logger & {
  lines: { level: string; msg: string; fields?: LogFields }[];
} {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields?: LogFields): void => {
      lines.push(fields ? { level, msg, fields } : { level, msg });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A plan for fake fleets. */
export function fakePlan(
  generation: number,
  overrides: Partial<Omit<FleetPlan, 'snapshot'>> = {},
): FleetPlan {
  const host = overrides.host ?? '127.0.0.1';
  const port = overrides.port ?? 8080;
  const instances = overrides.instances ?? 3;
  return {
    snapshot: {
      generation,
      configDir: '/nonexistent/config',
      dataDir: '/nonexistent/data',
      files: { config: 'config.json', routes: 'routes.yml' },
      raw: { config: { generation }, routes: null },
      keyRing: { active: 'k'.repeat(64), verifyOnly: [] },
    },
    instances,
    cryptoThreads: 1,
    maxHeaderBytes: 16_384,
    host,
    port,
    tls: null,
    processKey: JSON.stringify([instances]),
    ...overrides,
  };
}

import { CodedError } from '../shared/coded-error.js';
import {
  type AnswerValues,
  describeMessage,
  type EdgeAsk,
  type EdgeEvent,
  type EdgeNotice,
  type EdgeRequestBody,
  type EdgeRequestType,
  parseEdgeMessage,
  parseReplyValue,
  type ReplyValues,
  type SupervisorMessage,
} from '../shared/ipc.js';
import type { Logger } from '../shared/log.js';
import type { Clock } from './clock.js';
import { IpcError } from './ipc-error.js';

/**
 * What the fleet needs of an edge process: the subset of ChildProcess it uses, so that unit
 * tests can drive a fake one.
 */
export interface EdgeProcess {
  readonly pid?: number | undefined;
  readonly connected: boolean;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  send(message: SupervisorMessage): boolean;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(
    event: 'exit',
    listener: (code: number | null, signal: NodeJS.Signals | null) => void,
  ): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface EdgeChannelOptions {
  log: Logger;
  clock: Clock;
  /** Names the edge in errors and logs, e.g. `edge 1`. */
  label: string;
  /** Messages the edge sends on its own (not replies). */
  onEvent: (event: EdgeEvent) => void;
  /**
   * Carries out an edge's ask and resolves with the answer's value; a rejection is answered
   * with `answer-error` (its CodedError code, or `ASK_FAILED`). Without it every ask is refused.
   */
  onAsk?: (ask: EdgeAsk) => Promise<AnswerValues[EdgeAsk['type']]>;
}

interface Pending {
  type: EdgeRequestType;
  resolve: (value: unknown) => void;
  reject: (err: IpcError) => void;
  cancelTimer: () => void;
}

/**
 * Request/reply over one edge's IPC channel. Every request gets an id; the reply that names it
 * settles it, a timeout rejects it, and the edge's exit rejects whatever is still pending. A
 * reply whose id is unknown (late, after its timeout, or never asked) is logged and ignored.
 */
export class EdgeChannel {
  readonly #child: EdgeProcess;
  readonly #options: EdgeChannelOptions;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: IpcError | undefined;
  /** The reason of the last `fatal` event, to say why an exit left requests unanswered. */
  #fatal: string | undefined;

  constructor(child: EdgeProcess, options: EdgeChannelOptions) {
    this.#child = child;
    this.#options = options;
    child.on('message', (message) => this.#receive(message));
    child.on('exit', (code, signal) => {
      const how = signal ? `signal ${signal}` : `code ${code}`;
      // Replies already written by the edge may still be in the channel after 'exit': settle
      // pending requests only once the channel has delivered everything.
      if (child.connected) child.on('disconnect', () => this.#close(how));
      else this.#close(how);
    });
  }

  /**
   * Sends a request and resolves with the edge's reply value, validated for its type.
   * Rejects with IpcError: IPC_TIMEOUT after `timeoutMs`, IPC_EDGE_EXITED when the edge exits
   * first, IPC_REFUSED when the edge answers with an error, IPC_BAD_REPLY on a malformed value.
   */
  request<T extends EdgeRequestType>(
    body: EdgeRequestBody<T>,
    timeoutMs: number,
  ): Promise<ReplyValues[T]> {
    const { label, clock } = this.#options;
    if (this.#closed) return Promise.reject(this.#closed);
    if (!this.#child.connected)
      return Promise.reject(new IpcError('IPC_EDGE_EXITED', `${label}: channel closed`));
    const id = this.#nextId++;
    const type = body.type as T;
    return new Promise<ReplyValues[T]>((resolve, reject) => {
      const cancelTimer = clock.schedule(timeoutMs, () => {
        this.#pending.delete(id);
        reject(
          new IpcError('IPC_TIMEOUT', `${label} did not answer ${type} within ${timeoutMs} ms`),
        );
      });
      this.#pending.set(id, {
        type,
        resolve: resolve as (value: unknown) => void,
        reject,
        cancelTimer,
      });
      this.#child.send({ ...body, id } as unknown as SupervisorMessage);
    });
  }

  /** Sends a message that expects no reply; false when the channel is already closed. */
  notify(message: EdgeNotice): boolean {
    if (this.#closed || !this.#child.connected) return false;
    return this.#child.send(message);
  }

  /** Requests still waiting for their reply. */
  get pending(): number {
    return this.#pending.size;
  }

  #receive(raw: unknown): void {
    const { log, label } = this.#options;
    const parsed = parseEdgeMessage(raw);
    if (!parsed.ok) {
      log.error('malformed message from an edge, dropped', {
        edge: label,
        type: describeMessage(raw),
        reason: parsed.reason,
      });
      return;
    }
    const message = parsed.value;
    switch (message.type) {
      case 'reply':
        this.#settle(message.id, (p) => {
          const value = parseReplyValue(p.type, message.value);
          if (value.ok) p.resolve(value.value);
          else
            p.reject(
              new IpcError('IPC_BAD_REPLY', `${label}: bad reply to ${p.type}: ${value.reason}`),
            );
        });
        break;
      case 'reply-error':
        this.#settle(message.id, (p) =>
          p.reject(new IpcError('IPC_REFUSED', message.reason, message.code)),
        );
        break;
      case 'fatal':
        this.#fatal = message.reason;
        this.#options.onEvent(message);
        break;
      case 'token-issued':
      case 'token-uses':
      case 'rate-settle':
      case 'login-result':
      case 'metrics':
        this.#options.onEvent(message);
        break;
      case 'change-revocations':
      case 'rate-take':
      case 'login-attempt':
      case 'csrf-spend':
      case 'totp-change':
      case 'recent-logs':
      case 'readiness':
        void this.#answer(message);
        break;
      default: {
        const unhandled: never = message;
        log.error('unhandled message from an edge, dropped', {
          edge: label,
          type: describeMessage(unhandled),
        });
      }
    }
  }

  /** Answers an ask exactly once; an answer the channel can no longer carry is dropped. */
  async #answer(ask: EdgeAsk): Promise<void> {
    const onAsk = this.#options.onAsk;
    let reply: SupervisorMessage;
    try {
      if (!onAsk) throw new CodedError('ASK_UNSUPPORTED', `${ask.type} is not served here`);
      reply = { type: 'answer', id: ask.id, value: await onAsk(ask) };
    } catch (err) {
      const code = err instanceof CodedError ? err.code : 'ASK_FAILED';
      const reason = err instanceof Error ? err.message : String(err);
      reply = { type: 'answer-error', id: ask.id, code, reason };
    }
    if (!this.#closed && this.#child.connected) this.#child.send(reply);
  }

  #settle(id: number, settle: (pending: Pending) => void): void {
    const pending = this.#pending.get(id);
    if (!pending) {
      this.#options.log.warn('late or unknown reply from an edge, ignored', {
        edge: this.#options.label,
        id,
      });
      return;
    }
    this.#pending.delete(id);
    pending.cancelTimer();
    settle(pending);
  }

  #close(how: string): void {
    if (this.#closed) return;
    const why = this.#fatal ? `: ${this.#fatal}` : '';
    this.#closed = new IpcError('IPC_EDGE_EXITED', `${this.#options.label} exited (${how})${why}`);
    for (const pending of this.#pending.values()) {
      pending.cancelTimer();
      pending.reject(this.#closed);
    }
    this.#pending.clear();
  }
}

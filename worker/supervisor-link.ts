import { CodedError } from '../shared/coded-error.js';
import {
  type AnswerValues,
  type EdgeAskBody,
  type EdgeAskType,
  type EdgeMessage,
  MAX_BATCHED_EVENTS,
  parseAnswerValue,
  type SingleEdgeEvent,
  type SupervisorAnswer,
} from '../shared/ipc.js';

/** Why an ask failed: `ASK_TIMEOUT`, `ASK_CHANNEL_CLOSED`, `ASK_BAD_ANSWER`, or the code the supervisor answered with. */
export class AskError extends CodedError {}

interface Pending {
  type: EdgeAskType;
  resolve: (value: unknown) => void;
  reject: (err: AskError) => void;
  timer: NodeJS.Timeout;
}

/**
 * The edge's end of edge → supervisor traffic: events (fire and forget) and asks (a request
 * with an id that the supervisor answers once). `send` is process.send in an edge, a fake in
 * tests; it returns false when the channel is closed.
 *
 * Events of one event-loop turn travel together: they are queued and sent at the end of the
 * turn (setImmediate) as one `events` message, or as themselves when alone. A login sends two
 * (its lockout result, then its token): measured on this project's 2-core machine, every
 * message costs the supervisor a wake-up (~0.1-0.3 ms of CPU at login rates, see the README's
 * "Performance of the request path"), and those wake-ups preempt the Argon2 threads. Order is
 * kept: an ask first sends the events queued before it.
 */
export class SupervisorLink {
  readonly #send: (message: EdgeMessage) => boolean;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #queued: SingleEdgeEvent[] = [];
  #flushScheduled = false;

  constructor(send: (message: EdgeMessage) => boolean) {
    this.#send = send;
  }

  /**
   * Queues an event for the end of this turn. Events are lost if the channel is closed by
   * then (as a direct send to a closed channel would lose them); `flush()` sends them now.
   */
  notify(event: SingleEdgeEvent): void {
    this.#queued.push(event);
    if (this.#queued.length >= MAX_BATCHED_EVENTS) {
      this.flush();
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Sends the queued events now; false when the channel is closed (they are lost). */
  flush(): boolean {
    const events = this.#queued;
    if (events.length === 0) return true;
    this.#queued = [];
    const [first] = events;
    return this.#send(
      events.length === 1 && first !== undefined ? first : { type: 'events', events },
    );
  }

  /** Events queued and not yet sent. */
  get queued(): number {
    return this.#queued.length;
  }

  /**
   * Asks the supervisor and resolves with its answer, validated for the ask's type. Rejects
   * with AskError: ASK_TIMEOUT after `timeoutMs`, ASK_CHANNEL_CLOSED when it cannot be sent,
   * ASK_BAD_ANSWER on a malformed value, or the supervisor's own code.
   */
  ask<T extends EdgeAskType>(body: EdgeAskBody<T>, timeoutMs: number): Promise<AnswerValues[T]> {
    const id = this.#nextId++;
    const type = body.type as T;
    return new Promise<AnswerValues[T]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new AskError('ASK_TIMEOUT', `the supervisor did not answer ${type} in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#pending.set(id, { type, resolve: resolve as (v: unknown) => void, reject, timer });
      // Events queued before the ask reach the supervisor before it.
      this.flush();
      if (!this.#send({ ...body, id } as unknown as EdgeMessage)) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new AskError('ASK_CHANNEL_CLOSED', 'the channel to the supervisor is closed'));
      }
    });
  }

  /** Settles the ask an answer names; an unknown id (late, after a timeout) is ignored. */
  settle(answer: SupervisorAnswer): boolean {
    const pending = this.#pending.get(answer.id);
    if (!pending) return false;
    this.#pending.delete(answer.id);
    clearTimeout(pending.timer);
    if (answer.type === 'answer-error') {
      pending.reject(new AskError(answer.code, answer.reason));
      return true;
    }
    const value = parseAnswerValue(pending.type, answer.value);
    if (value.ok) pending.resolve(value.value);
    else
      pending.reject(
        new AskError('ASK_BAD_ANSWER', `bad answer to ${pending.type}: ${value.reason}`),
      );
    return true;
  }

  /** Asks still waiting for their answer. */
  get pending(): number {
    return this.#pending.size;
  }
}

import { CodedError } from '../shared/coded-error.js';
import {
  type AnswerValues,
  type EdgeAskBody,
  type EdgeAskType,
  type EdgeEvent,
  type EdgeMessage,
  parseAnswerValue,
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
 */
export class SupervisorLink {
  readonly #send: (message: EdgeMessage) => boolean;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(send: (message: EdgeMessage) => boolean) {
    this.#send = send;
  }

  /** Sends an event; false when the channel is closed (the event is lost). */
  notify(event: EdgeEvent): boolean {
    return this.#send(event);
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

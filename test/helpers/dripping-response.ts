// A synthetic uWS response for tests of request bodies (worker/uws-io.ts): it hands its body
// handler to the test, which plays uWS by calling it, and records pauses and resumes.
import { RecordingResponse } from '../../worker/explain-exchange.js';

/** uWS's body callback: a chunk valid only during the call, and whether it is the last. */
export type OnData = (chunk: ArrayBuffer, isLast: boolean) => void;

/** A RecordingResponse whose `onData` handler the test calls itself; counts pause and resume. */
export class DrippingResponse extends RecordingResponse {
  handler: OnData | undefined;
  pauses = 0;
  resumes = 0;
  paused = false;
  constructor() {
    super('127.0.0.1', undefined);
  }
  override onData(handler: OnData): this {
    this.handler = handler;
    return this;
  }
  override pause(): void {
    this.pauses++;
    this.paused = true;
  }
  override resume(): void {
    this.resumes++;
    this.paused = false;
  }
}

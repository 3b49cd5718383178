import { CodedError } from '../shared/coded-error.js';

/** Error raised by the benchmark runner; `code` is stable, the message is for humans. */
export class BenchError extends CodedError {}

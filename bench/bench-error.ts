/** Error raised by the benchmark runner; `code` is stable, the message is for humans. */
export class BenchError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BenchError';
    this.code = code;
  }
}

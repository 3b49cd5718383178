/**
 * Base of every error the project throws on purpose: a stable machine-readable `code` (as
 * undici's `UND_ERR_*`), a human message, and an optional cause. Callers and tests switch on
 * `code`, never on message text. Client-facing errors (GatewayError) add an HTTP status.
 */
export class CodedError<C extends string = string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

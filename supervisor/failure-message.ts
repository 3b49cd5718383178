import { CodedError } from '../shared/coded-error.js';

const PERMISSION_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * The line printed when a command fails with an error nobody handled. Expected failures (a
 * coded error, a file the process may not touch) get one line an operator can act on; a stack
 * trace is kept for anything else, which is a bug worth reporting.
 */
export function failureMessage(err: unknown): string {
  if (err instanceof CodedError) return `${err.message} (${err.code})`;
  if (isSystemError(err)) {
    // Node's message already names the call and the path: "EACCES: permission denied, open '...'".
    if (!PERMISSION_CODES.has(err.code)) return err.message;
    return (
      `${err.message}\n` +
      'The config and data dirs must belong to the user running proxyauth (under systemd, the ' +
      "unit's ExecStartPre gives the config dir to the service user)."
    );
  }
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    typeof (err as NodeJS.ErrnoException).syscall === 'string'
  );
}

import { closeSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';

/**
 * The readiness line `proxyauth run --ready-fd N` writes once to fd N, then closes it. One JSON
 * object on one line, so that tests and scripts wait on it instead of matching log text:
 *
 *   {"ready":true,"host":"127.0.0.1","port":41234,"tls":false,"pid":1200,"edges":[1201,1202],"generation":1}
 *   {"ready":false,"code":"PORT_IN_USE","error":"127.0.0.1:8080 is already in use: ..."}
 *
 * `port` is the port the edges listen on (the one the kernel picked when config.json says 0),
 * `pid` the supervisor's, `edges` the edge processes' pids.
 */
export type Readiness =
  | {
      ready: true;
      host: string;
      port: number;
      tls: boolean;
      pid: number;
      edges: number[];
      generation: number;
    }
  | { ready: false; code: string; error: string };

/** Writes the readiness line at most once; without an fd it does nothing. */
export class ReadySignal {
  readonly #fd: number | undefined;
  #sent = false;

  constructor(fd: number | undefined) {
    this.#fd = fd;
  }

  /** Whether a line (ready or not) was already written. */
  get sent(): boolean {
    return this.#sent;
  }

  /**
   * Writes `readiness` and closes the fd. Returns the write error, if any (a reader that went
   * away must not stop the gateway); later calls do nothing.
   */
  send(readiness: Readiness): Error | undefined {
    if (this.#sent) return undefined;
    this.#sent = true;
    if (this.#fd === undefined) return undefined;
    try {
      writeSync(this.#fd, `${JSON.stringify(readiness)}\n`);
      return undefined;
    } catch (err) {
      return err as Error;
    } finally {
      closeFd(this.#fd);
    }
  }
}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed (EBADF): nothing left to release.
  }
}

/**
 * Reader side, for tests and scripts that spawn the gateway with an extra pipe: resolves with
 * the first line, or with `{ready: false}` when the stream ends without one (the gateway died
 * before writing). Rejects after `timeoutMs`.
 */
export function readReadiness(stream: Readable, timeoutMs: number): Promise<Readiness> {
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (result: Readiness | Error) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const newline = text.indexOf('\n');
      if (newline >= 0) finish(parseReadiness(text.slice(0, newline)));
    };
    const onEnd = () =>
      finish({ ready: false, code: 'NO_READINESS', error: 'closed without a readiness line' });
    const timer = setTimeout(
      () => finish(new Error(`no readiness line within ${timeoutMs} ms`)),
      timeoutMs,
    );
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onEnd);
  });
}

function parseReadiness(line: string): Readiness | Error {
  try {
    const value = JSON.parse(line) as Readiness;
    if (typeof value === 'object' && value !== null && typeof value.ready === 'boolean')
      return value;
  } catch {
    // Reported below with the line itself.
  }
  return new Error(`not a readiness line: ${line.slice(0, 200)}`);
}

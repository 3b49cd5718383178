import { writeSync } from 'node:fs';

/** One proxied or answered request, as written to the access log (never a token or a query). */
export interface AccessEntry {
  ip: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  user: string | undefined;
  route: string | undefined;
  code: string | undefined;
}

/*
 * Every edge writes to the stdout it inherited, so lines from several processes share one pipe.
 * A write(2) to a pipe of at most PIPE_BUF (4096) bytes is atomic, so batches stay under that
 * size and lines never interleave. Flushing on setImmediate keeps the write off the request path.
 */
const PIPE_BUF = 4096;

export class AccessLog {
  readonly #fd: number;
  #pending: string[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  readonly #flush = () => this.flush();

  constructor(fd = 1) {
    this.#fd = fd;
  }

  #lastMs = 0;
  #lastIso = '';

  write(entry: AccessEntry): void {
    // Under load many requests end in the same millisecond: format that timestamp once.
    const now = Date.now();
    if (now !== this.#lastMs) {
      this.#lastMs = now;
      this.#lastIso = new Date(now).toISOString();
    }
    const line = `{"ts":"${this.#lastIso}","type":"access",${JSON.stringify(entry).slice(1)}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.#pendingBytes + bytes > PIPE_BUF) this.flush();
    this.#pending.push(line);
    this.#pendingBytes += bytes;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const chunk = this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      writeSync(this.#fd, chunk);
    } catch (err) {
      // EAGAIN on a full non-blocking pipe: dropping access lines beats blocking the edge.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

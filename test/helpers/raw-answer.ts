import { connect } from 'node:net';

/** One answer as it came off the wire: its status, its head lines as sent, the bytes after. */
export interface RawAnswer {
  status: number;
  /** Header lines as sent, in order (names in the case they were written). */
  lines: string[];
  /** Everything after the head's blank line (chunked framing kept). */
  body: Buffer;
}

/**
 * Sends `head` (a whole request head, blank line included; a string goes as latin1) on a new connection and reads until
 * the server closes or `waitMs` passes without a byte; the first answer's raw head and the rest.
 * For heads a test must see line by line: repeats, case, order.
 */
export async function rawAnswer(
  port: number,
  head: string | Buffer,
  waitMs = 1500,
): Promise<RawAnswer> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        socket.destroy();
        resolve();
      }, waitMs);
    };
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      idle();
    });
    socket.once('close', () => resolve());
    idle();
  });
  socket.on('error', () => {});
  socket.write(typeof head === 'string' ? Buffer.from(head, 'latin1') : head);
  await done;
  clearTimeout(timer);
  const data = Buffer.concat(chunks);
  const end = data.indexOf('\r\n\r\n');
  const lines = data
    .subarray(0, end === -1 ? data.length : end)
    .toString('latin1')
    .split('\r\n');
  return {
    status: Number(lines[0]?.split(' ')[1]),
    lines: lines.slice(1),
    body: end === -1 ? Buffer.alloc(0) : data.subarray(end + 4),
  };
}

/** The values of `name`'s lines (case-insensitive), in order. */
export function valuesOf(answer: RawAnswer, name: string): string[] {
  const prefix = `${name.toLowerCase()}: `;
  return answer.lines
    .filter((l) => l.toLowerCase().startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

/** The body with its chunked framing undone (as it is when the head says no chunked). */
export function bodyText(answer: RawAnswer): string {
  if (valuesOf(answer, 'transfer-encoding')[0] !== 'chunked') return answer.body.toString('latin1');
  let out = '';
  let at = 0;
  for (;;) {
    const eol = answer.body.indexOf('\r\n', at);
    if (eol === -1) return out;
    const size = Number.parseInt(answer.body.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) return out;
    out += answer.body.subarray(eol + 2, eol + 2 + size).toString('latin1');
    at = eol + 2 + size + 2;
  }
}

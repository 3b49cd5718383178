import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { hashPassword } from '../crypto-pool/password.js';

/** Reads all of a piped stdin, or one line from a terminal without echoing it. */
async function readPassword(
  input: Readable & { isTTY?: boolean },
  prompt: Writable,
): Promise<string> {
  if (!input.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of input) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  prompt.write('Password: ');
  const rl = createInterface({ input, terminal: true });
  // Swallow the echo: readline writes typed characters to its output, which we never give it.
  const line = await new Promise<string>((resolve) => rl.once('line', resolve));
  rl.close();
  prompt.write('\n');
  return line;
}

/** `proxyauth hash-password`: prints an argon2id hash for config.json. */
export async function hashPasswordCommand(
  input: Readable,
  out: Writable,
  err: Writable,
): Promise<number> {
  const password = await readPassword(input, err);
  if (password.length === 0) {
    err.write('proxyauth: empty password\n');
    return 1;
  }
  out.write(`${await hashPassword(password)}\n`);
  return 0;
}

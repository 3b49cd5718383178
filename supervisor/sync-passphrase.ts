import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { SyncError } from './sync-bundle.js';

/** The terminal a passphrase may be asked on. */
export interface PromptIo {
  input: Readable & { isTTY?: boolean };
  prompt: Writable;
}

/**
 * The passphrase of `file` (its content without one trailing newline), else one typed on the
 * terminal without echo (`confirm`: typed twice). SyncError SYNC_PASSPHRASE when the file cannot
 * be read or is empty, when stdin is no terminal, or when the two entries differ.
 */
export async function readPassphrase(
  file: string | undefined,
  io: PromptIo,
  confirm: boolean,
): Promise<string> {
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SyncError('SYNC_PASSPHRASE', `${file}: cannot read the passphrase file (${code})`);
    }
    return nonEmpty(text.replace(/\r?\n$/, ''), file);
  }
  if (!io.input.isTTY) {
    throw new SyncError('SYNC_PASSPHRASE', 'no --passphrase-file and stdin is not a terminal');
  }
  const first = nonEmpty(await promptLine(io, 'Passphrase: '), 'the passphrase typed');
  if (confirm && (await promptLine(io, 'Again: ')) !== first) {
    throw new SyncError('SYNC_PASSPHRASE', 'the two passphrases differ');
  }
  return first;
}

function nonEmpty(passphrase: string, where: string): string {
  if (passphrase.length === 0) throw new SyncError('SYNC_PASSPHRASE', `${where}: empty passphrase`);
  return passphrase;
}

async function promptLine(io: PromptIo, text: string): Promise<string> {
  io.prompt.write(text);
  // readline echoes to its output, which it never gets: what is typed stays off the screen.
  const rl = createInterface({ input: io.input, terminal: true });
  const line = await new Promise<string>((resolve) => rl.once('line', resolve));
  rl.close();
  io.prompt.write('\n');
  return line;
}

import { readFile, stat } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-write.js';
import { ConfigFileError } from './config-file-error.js';

/** config.json as read for an in-place edit. */
export interface ConfigText {
  text: string;
  mode: number;
  owner: { uid: number; gid: number };
}

/** Replace `text.slice(start, end)` by `replacement`. */
export interface TextEdit {
  start: number;
  end: number;
  replacement: string;
}

/** Reads `file`, refusing content that would not survive a UTF-8 decode/encode byte for byte. */
export async function readConfigText(file: string): Promise<ConfigText> {
  const [bytes, info] = await Promise.all([readFile(file), stat(file)]);
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) {
    throw new ConfigFileError('CONFIG_NOT_UTF8', `${file} is not valid UTF-8; not rewriting it`);
  }
  return { text, mode: info.mode & 0o7777, owner: { uid: info.uid, gid: info.gid } };
}

/** Applies non-overlapping edits; every byte outside them is kept. */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  let out = text;
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) {
    out = out.slice(0, edit.start) + edit.replacement + out.slice(edit.end);
  }
  return out;
}

/**
 * Atomically writes `next` over `file`, keeping its mode (and owner when root), unless the file
 * changed since `before` was read: an operator's concurrent edit must not be overwritten.
 */
export async function commitConfigText(
  file: string,
  before: ConfigText,
  next: string,
): Promise<void> {
  const current = await readFile(file, 'utf8');
  if (current !== before.text) {
    throw new ConfigFileError(
      'CONFIG_CHANGED_DURING_REWRITE',
      `${file} changed while being rewritten`,
    );
  }
  // Cheap guard against a bug in the edits: never write a file that no longer parses.
  JSON.parse(next);
  await writeFileAtomic(file, next, { mode: before.mode, owner: before.owner });
}

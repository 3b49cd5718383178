import type { TextEdit } from './config-text.js';
import { applyEdits, commitConfigText, readConfigText } from './config-text.js';
import { isArgon2Hash } from './is-argon2-hash.js';
import type { JsonSpan } from './json-source.js';
import { scanJson } from './json-source.js';

const PASSWORD_KEY = /^users\[\d+\]\.password$/;

/**
 * Hashes every plaintext `users[i].password` of config.json in place. Only those string literals
 * change: key order, spacing, number spelling and unknown keys stay byte for byte. The write is
 * atomic and keeps the file's mode. Returns how many passwords were hashed (0: file untouched).
 */
export async function rewritePlaintextPasswords(
  file: string,
  hash: (password: string) => Promise<string>,
): Promise<{ rewritten: number }> {
  const before = await readConfigText(file);
  const plaintext: { span: JsonSpan; password: string }[] = [];
  for (const [key, spans] of scanJson(before.text)) {
    if (!PASSWORD_KEY.test(key)) continue;
    for (const span of spans) {
      if (span.type !== 'string') continue;
      const password = JSON.parse(before.text.slice(span.start, span.end)) as string;
      if (password !== '' && !isArgon2Hash(password)) plaintext.push({ span, password });
    }
  }
  if (plaintext.length === 0) return { rewritten: 0 };
  const edits: TextEdit[] = [];
  // One at a time: each Argon2 hash takes tens of MiB.
  for (const { span, password } of plaintext) {
    edits.push({
      start: span.start,
      end: span.end,
      replacement: JSON.stringify(await hash(password)),
    });
  }
  await commitConfigText(file, before, applyEdits(before.text, edits));
  return { rewritten: edits.length };
}

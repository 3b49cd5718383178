import { randomBytes } from 'node:crypto';
import { ConfigFileError } from './config-file-error.js';
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

/**
 * Writes `token` (default: 32 random bytes as hex) as `token_admin` when config.json has it
 * empty, null or missing (a missing key is inserted first in the root object). Any other
 * byte of the file is kept. Returns the token_admin now in effect.
 */
export async function setTokenAdmin(
  file: string,
  token: string = randomBytes(32).toString('hex'),
): Promise<{ written: boolean; tokenAdmin: string }> {
  const before = await readConfigText(file);
  const spans = scanJson(before.text);
  const root = spans.get('(root)')?.[0];
  if (root?.type !== 'object') {
    throw new ConfigFileError('CONFIG_ROOT_NOT_OBJECT', `${file}: the root must be a JSON object`);
  }
  const current = spans.get('token_admin')?.at(-1);
  const value =
    current === undefined
      ? null
      : (JSON.parse(before.text.slice(current.start, current.end)) as unknown);
  if (value !== null && value !== '') return { written: false, tokenAdmin: String(value) };
  const literal = JSON.stringify(token);
  const edit =
    current === undefined
      ? insertFirstMember(before.text, root, `"token_admin": ${literal}`)
      : { start: current.start, end: current.end, replacement: literal };
  await commitConfigText(file, before, applyEdits(before.text, [edit]));
  return { written: true, tokenAdmin: token };
}

/** Inserts `member` right after `{`, reusing the whitespace that precedes the first member. */
function insertFirstMember(text: string, root: JsonSpan, member: string): TextEdit {
  const afterBrace = root.start + 1;
  const indent = /^[ \t\r\n]*/.exec(text.slice(afterBrace))?.[0] ?? '';
  const empty = text[afterBrace + indent.length] === '}';
  const replacement = empty ? member : `${indent}${member},`;
  return { start: afterBrace, end: afterBrace, replacement };
}

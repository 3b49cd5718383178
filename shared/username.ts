/**
 * The one rule for usernames, applied wherever a name enters (config.json users, the admin
 * API, the token codec): non-empty Unicode text (no lone surrogate, so it has a UTF-8 form),
 * at most MAX_USERNAME_BYTES bytes of UTF-8 (a token carries the length in one byte), and no
 * control character (C0 or DEL: names reach logs, headers and terminal tables).
 */

/** Longest username, in UTF-8 bytes. */
export const MAX_USERNAME_BYTES = 255;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const CONTROL = /[\x00-\x1f\x7f]/;

/** What is wrong with `name` as a username (a sentence to show), or undefined when it is fine. */
export function usernameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'must be a non-empty string';
  if (LONE_SURROGATE.test(name)) return 'must be Unicode text (it holds a lone surrogate)';
  if (CONTROL.test(name)) return 'must not contain control characters';
  if (Buffer.byteLength(name, 'utf8') > MAX_USERNAME_BYTES) {
    return `must be at most ${MAX_USERNAME_BYTES} bytes of UTF-8`;
  }
  return undefined;
}

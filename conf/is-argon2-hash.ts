/**
 * True when a `users[].password` value claims to be an Argon2 PHC string: it starts with
 * `$argon2`. Such a value is never hashed as a plaintext password; it must parse
 * (conf/argon2-hash.ts) or the config is refused. Anything else is plaintext, hashed at start.
 */
export function isArgon2Hash(value: string): boolean {
  return value.startsWith('$argon2');
}

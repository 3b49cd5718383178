/** True for an Argon2 PHC string (`$argon2id$...`, `$argon2i$...`, `$argon2d$...`). */
export function isArgon2Hash(value: string): boolean {
  return /^\$argon2(?:id|i|d)\$/.test(value);
}

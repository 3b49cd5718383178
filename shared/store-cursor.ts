// Pagination cursors: the last key a page returned, as base64url JSON. Opaque to clients, they
// only promise "continue after this key", so a page stays right while entries come and go.

/** A key of one of the store's listings: strings and finite numbers only. */
export type CursorKey = readonly (string | number)[];

/** The cursor that resumes a listing after `key`. */
export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * The key `cursor` was made from, when it has the shape `kinds` describes ('s' a string, 'n' a
 * finite number, one letter per element), else undefined.
 */
export function decodeCursor(cursor: string, kinds: string): CursorKey | undefined {
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined; // not JSON: not a cursor of ours
  }
  if (!Array.isArray(key) || key.length !== kinds.length) return undefined;
  for (let i = 0; i < kinds.length; i++) {
    const value: unknown = key[i];
    const ok =
      kinds[i] === 's'
        ? typeof value === 'string'
        : typeof value === 'number' && Number.isFinite(value);
    if (!ok) return undefined;
  }
  return key as CursorKey;
}

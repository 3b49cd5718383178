import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { loadConfigDir } from '../conf/load.js';
import {
  type KeyRingEntry,
  KeyRingError,
  keyIdHex,
  keyState,
  openStore,
  type Store,
} from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';
import { commandRefusal } from './command-refusal.js';
import type { Dirs } from './dirs.js';
import { RELOAD_HINT } from './sync-command.js';

export type KeysAction = 'list' | 'rotate' | 'remove';

/**
 * `proxyauth keys list|rotate|remove [ID]`: the token key ring in the store of the data dir,
 * opened as a second writer beside a running gateway (LMDB serialises writers). Key material is
 * never printed. Changes reach the edges at the next reload. Returns the exit status: 0 done, 1
 * refused (message with its stable code on stderr).
 */
export async function keysCommand(
  dirs: Dirs,
  action: KeysAction,
  id: number | undefined,
  io: { out: Writable; err: Writable },
): Promise<number> {
  try {
    // rotate retires the active key for token_expiry_seconds: read it before touching the store.
    const expiry =
      action === 'rotate' ? (await loadConfigDir(dirs.configDir)).config.token_expiry_seconds : 0;
    const store = openStore(dirs.dataDir, { readOnly: action === 'list', create: false });
    try {
      if (action === 'list') io.out.write(listText(store.keyRing(), unixNow()));
      else if (action === 'rotate') io.out.write(await rotate(store, expiry));
      else io.out.write(await remove(store, id!));
      return 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    return commandRefusal(err, io.err);
  }
}

async function rotate(store: Store, expiry: number): Promise<string> {
  const now = unixNow();
  for (;;) {
    // 32 random bytes, hex: 64 characters, so the material could stand as a config.json secret.
    const secret = randomBytes(32).toString('hex');
    const keyId = deriveTokenKeys(secret).keyId;
    let retired: number | undefined;
    try {
      ({ retired } = await store.addActiveKey(keyId, secret, 'generated', now, expiry));
    } catch (err) {
      // A key id taken already (1 chance in 2^32): draw again.
      if (err instanceof KeyRingError && err.code === 'KEY_COLLISION') continue;
      throw err;
    }
    const old =
      retired === undefined
        ? ''
        : `key ${keyIdHex(retired)} is verify-only until ${utc(now + expiry)}\n`;
    return `new active key ${keyIdHex(keyId)}\n${old}${RELOAD_HINT}\n`;
  }
}

async function remove(store: Store, keyId: number): Promise<string> {
  await store.removeKey(keyId, unixNow());
  return `removed key ${keyIdHex(keyId)}: its tokens stop verifying\n${RELOAD_HINT}\n`;
}

/** One line per key: id, source, state, added, activated, retired, verifies until (UTC). */
export function listText(ring: readonly KeyRingEntry[], now: number): string {
  const rows = [['KEY ID', 'SOURCE', 'STATE', 'ADDED', 'ACTIVATED', 'RETIRED', 'VERIFIES UNTIL']];
  for (const k of ring) {
    const until =
      k.removedAt !== null
        ? `removed ${utc(k.removedAt)}`
        : k.verifyUntil === null
          ? '-'
          : utc(k.verifyUntil);
    rows.push([
      keyIdHex(k.keyId),
      k.source,
      keyState(k, now),
      utc(k.addedAt),
      k.activatedAt === null ? '-' : utc(k.activatedAt),
      k.retiredAt === null ? '-' : utc(k.retiredAt),
      until,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

function utc(unixSeconds: number): string {
  const iso = new Date(unixSeconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

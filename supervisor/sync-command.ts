import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { writeFileAtomic, writeFileExclusive } from '../conf/atomic-write.js';
import { loadConfigDir } from '../conf/load.js';
import { openStore, type Store } from '../shared/store.js';
import { commandRefusal } from './command-refusal.js';
import type { Dirs } from './dirs.js';
import { buildBundle, SyncError } from './sync-bundle.js';
import { installBundle, readBundleFile } from './sync-import.js';
import { type PromptIo, readPassphrase } from './sync-passphrase.js';
import { ensureNodeKey, readNodeKey, readPublicKey, type Seal, seal } from './sync-pgp.js';

/** The default output of `sync export`, in the working directory. */
export const DEFAULT_EXPORT_FILE = 'proxyauth-keys.pgp';

export type SyncAction = 'export' | 'import' | 'keygen';

export interface SyncOptions {
  /** import: the bundle file. */
  file: string | undefined;
  out: string | undefined;
  passphraseFile: string | undefined;
  recipient: string | undefined;
  force: boolean;
  verifyOnly: boolean;
}

export interface SyncIo extends PromptIo {
  out: Writable;
  err: Writable;
}

/**
 * `proxyauth sync export|import|keygen`. Returns the exit status: 0 done, 1 when anything is
 * refused (the message on stderr carries the stable code; nothing was written). Store changes
 * reach the edges at the next reload (SIGHUP), as the output says.
 */
export async function syncCommand(
  dirs: Dirs,
  action: SyncAction,
  options: SyncOptions,
  io: SyncIo,
): Promise<number> {
  try {
    if (action === 'keygen') return await keygen(dirs, io);
    const expiry = (await loadConfigDir(dirs.configDir)).config.token_expiry_seconds;
    const store = openStore(dirs.dataDir, { readOnly: action === 'export', create: false });
    try {
      if (action === 'export') return await exportKeys(store, dirs, expiry, options, io);
      return await importKeys(store, dirs, expiry, options, io);
    } finally {
      await store.close();
    }
  } catch (err) {
    return commandRefusal(err, io.err);
  }
}

async function exportKeys(
  store: Store,
  dirs: Dirs,
  expiry: number,
  options: SyncOptions,
  io: SyncIo,
): Promise<number> {
  const bundle = buildBundle(store.keyRing(), hostname(), unixNow(), expiry);
  let how: Seal;
  if (options.recipient !== undefined) {
    const signer = await readNodeKey(dirs.dataDir);
    if (signer === undefined) {
      throw new SyncError(
        'SYNC_NO_NODE_KEY',
        'exports to a recipient are signed with this node key: run proxyauth sync keygen first',
      );
    }
    how = { recipient: await readPublicKey(options.recipient), signer };
  } else {
    how = { passphrase: await readPassphrase(options.passphraseFile, io, true) };
  }
  const armored = await seal(JSON.stringify(bundle), how);
  const out = resolve(options.out ?? DEFAULT_EXPORT_FILE);
  if (options.force) {
    await writeFileAtomic(out, armored, { mode: 0o600 });
  } else if (!(await writeFileExclusive(out, armored, { mode: 0o600 }))) {
    throw new SyncError('SYNC_OUT_EXISTS', `${out} exists: give --force to replace it`);
  }
  io.out.write(
    `wrote ${out} (0600): ${bundle.keys.length} key(s), active ${bundle.active}, ` +
      `encrypted to ${options.recipient === undefined ? 'a passphrase' : options.recipient}\n`,
  );
  return 0;
}

async function importKeys(
  store: Store,
  dirs: Dirs,
  expiry: number,
  options: SyncOptions,
  io: SyncIo,
): Promise<number> {
  // The parser made sure `import` carries FILE.
  const file = resolve(options.file!);
  const bundle = await readBundleFile(file, {
    ...dirs,
    passphrase: () => readPassphrase(options.passphraseFile, io, false),
  });
  const result = await installBundle(store, bundle, {
    verifyOnly: options.verifyOnly,
    nowSeconds: unixNow(),
    expirySeconds: expiry,
  });
  const added = result.added.length === 0 ? 'none' : result.added.join(', ');
  io.out.write(
    `imported ${result.keys.length} key(s) from node ${result.node}: new here: ${added}\n` +
      (result.activated === undefined
        ? 'all verify-only here (--verify-only); the active key is unchanged\n'
        : `active key now: ${result.activated}\n`) +
      `${RELOAD_HINT}\n`,
  );
  return 0;
}

async function keygen(dirs: Dirs, io: SyncIo): Promise<number> {
  await mkdir(dirs.dataDir, { recursive: true, mode: 0o700 });
  const { publicKey, made } = await ensureNodeKey(dirs.dataDir);
  io.err.write(
    made
      ? `made this node's sync key (private key: ${dirs.dataDir}, 0600); its public key:\n`
      : "this node's sync key exists already; its public key:\n",
  );
  io.out.write(publicKey.endsWith('\n') ? publicKey : `${publicKey}\n`);
  return 0;
}

/** What to do after a change to the ring, which the gateway reads at start and reload. */
export const RELOAD_HINT =
  'the running gateway uses it after a reload: systemctl reload proxyauth, or kill -HUP <supervisor pid>';

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

import { constants } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import type { Store } from '../shared/store.js';
import { keyIdHex } from '../shared/store.js';
import { type KeyBundle, parseBundle, SyncError } from './sync-bundle.js';
import { isToRecipient, open, readNodeKey, readSealed, readTrusted } from './sync-pgp.js';

/** What an import changed in the ring, by key id (8 hex digits). */
export interface ImportResult {
  node: string;
  added: string[];
  /** Every key of the bundle (new or already here). */
  keys: string[];
  /** The key active here afterwards, when the import activated it. */
  activated: string | undefined;
}

/** Where a bundle file's secrets come from. */
export interface ImportSource {
  configDir: string;
  dataDir: string;
  /** Asked only for a passphrase-encrypted file; undefined: such files are refused. */
  passphrase: (() => Promise<string>) | undefined;
}

/**
 * Reads, decrypts and validates the bundle in `file`: a passphrase file through
 * `source.passphrase`, a file encrypted to this node with its key (sync keygen) and the trusted
 * signers of the config dir. SyncError for every way it can fail (sync-pgp.ts, sync-bundle.ts).
 */
export async function readBundleFile(file: string, source: ImportSource): Promise<KeyBundle> {
  const bytes = await readBundleBytes(file);
  const message = await readSealed(bytes);
  if (!isToRecipient(message)) {
    if (source.passphrase === undefined) {
      throw new SyncError(
        'SYNC_PASSPHRASE',
        'the file is encrypted to a passphrase: none was given',
      );
    }
    return parseBundle(await open(message, { passphrase: await source.passphrase() }));
  }
  const nodeKey = await readNodeKey(source.dataDir);
  if (nodeKey === undefined) {
    throw new SyncError(
      'SYNC_NO_NODE_KEY',
      'the file is encrypted to a node key and this node has none (proxyauth sync keygen)',
    );
  }
  const trusted = await readTrusted(source.configDir);
  return parseBundle(await open(message, { nodeKey, trusted }));
}

/** A bundle of 64 keys is a few KiB: anything much larger is not one. */
export const MAX_BUNDLE_FILE_BYTES = 1024 * 1024;

/**
 * The file's bytes: a regular file (a symlink to one is followed) of at most
 * MAX_BUNDLE_FILE_BYTES. Opened non-blocking, so a FIFO dropped in the import dir cannot hang
 * the reload (and the supervisor's exit) on a blocked open, and a device (/dev/zero) or a huge
 * file is refused before it is read.
 */
async function readBundleBytes(file: string): Promise<Buffer> {
  const fail = (why: string) => new SyncError('SYNC_KEY_FILE', `${file}: ${why}`);
  let handle: Awaited<ReturnType<typeof openFile>>;
  try {
    handle = await openFile(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw fail(`cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw fail('not a regular file');
    if (info.size > MAX_BUNDLE_FILE_BYTES) {
      throw fail(`${info.size} bytes: larger than a bundle can be (${MAX_BUNDLE_FILE_BYTES})`);
    }
    const bytes = Buffer.alloc(info.size);
    const { bytesRead } = await handle.read(bytes, 0, info.size, 0);
    return bytes.subarray(0, bytesRead);
  } catch (err) {
    if (err instanceof SyncError) throw err;
    throw fail(`cannot read (${(err as NodeJS.ErrnoException).code})`);
  } finally {
    await handle.close();
  }
}

/**
 * Installs `bundle` in one store transaction (all or nothing; KeyRingError KEY_COLLISION) and,
 * unless `verifyOnly`, makes the exporter's active key the active key here; the one active
 * before retires and verifies for `expirySeconds` (this node's token_expiry_seconds).
 */
export async function installBundle(
  store: Store,
  bundle: KeyBundle,
  options: { verifyOnly: boolean; nowSeconds: number; expirySeconds: number },
): Promise<ImportResult> {
  const keys = bundle.keys.map((k) => ({
    keyId: Number.parseInt(k.id, 16),
    secret: k.secret,
    tokenLifetime: bundle.tokenExpirySeconds,
    verifyUntil: k.verifyUntil,
  }));
  const activeId = options.verifyOnly ? undefined : Number.parseInt(bundle.active, 16);
  const added = await store.installKeys(keys, activeId, options.nowSeconds, options.expirySeconds);
  return {
    node: bundle.node,
    added: added.map(keyIdHex),
    keys: bundle.keys.map((k) => k.id),
    activated: options.verifyOnly ? undefined : bundle.active,
  };
}

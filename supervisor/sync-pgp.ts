// The OpenPGP layer of `proxyauth sync` (package openpgp v6, RFC 9580): a bundle is encrypted
// either to a passphrase (Argon2 S2K, AEAD: a flipped byte is detected) or
// to a node's public key and signed by the exporting node's key. A public key is meant to be
// handed around, so in that mode the signature is what proves who made the bundle: an import
// accepts only bundles signed by a key the operator put in `<config dir>/sync-trusted/`.
import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { writeFileExclusive } from '../conf/atomic-write.js';
import { SyncError } from './sync-bundle.js';

/** This node's OpenPGP private key, in the data dir (0600), made by `proxyauth sync keygen`. */
export const NODE_KEY_FILE = 'sync-node-key.asc';
/** Public keys of the nodes whose signed bundles this node accepts, in the config dir. */
export const TRUSTED_DIR = 'sync-trusted';

/**
 * The most memory a file's Argon2 parameters may make an import use: 2^18 KiB = 256 MiB (the
 * export uses 64 MiB). openpgp's own bound is 1 GiB, too much for a file from anywhere.
 */
const MAX_ARGON2_MEMORY_EXPONENT = 18;

/** How a bundle is encrypted: to a passphrase, or to a recipient and signed by this node. */
export type Seal =
  | { passphrase: string }
  | { recipient: openpgp.PublicKey; signer: openpgp.PrivateKey };

/** How a bundle is opened: with a passphrase, or this node's key and the trusted signers. */
export type Opener =
  | { passphrase: string }
  | { nodeKey: openpgp.PrivateKey; trusted: openpgp.PublicKey[] };

/** An ASCII-armored OpenPGP message holding `text`. */
export async function seal(text: string, how: Seal): Promise<string> {
  const message = await openpgp.createMessage({ text });
  if ('passphrase' in how) {
    // Argon2 S2K (RFC 9580 section 3.7.1.4; openpgp's default parameters: 3 passes, 4 lanes,
    // 64 MiB, about 0.4 s here) rather than the iterated SHA-256 default: a passphrase typed
    // by a person must be slow to guess offline. Argon2 comes with AEAD encryption (SEIPDv2).
    return openpgp.encrypt({
      message,
      passwords: [how.passphrase],
      format: 'armored',
      config: { s2kType: openpgp.enums.s2k.argon2, aeadProtect: true },
    });
  }
  return openpgp.encrypt({
    message,
    encryptionKeys: how.recipient,
    signingKeys: how.signer,
    format: 'armored',
  });
}

/** A message read from file bytes (armored or binary). SyncError SYNC_NOT_OPENPGP. */
export async function readSealed(bytes: Buffer): Promise<openpgp.Message<Uint8Array | string>> {
  try {
    const text = bytes.toString('latin1');
    if (text.startsWith('-----BEGIN PGP MESSAGE-----')) {
      return await openpgp.readMessage({ armoredMessage: text });
    }
    return await openpgp.readMessage({ binaryMessage: new Uint8Array(bytes) });
  } catch {
    throw new SyncError('SYNC_NOT_OPENPGP', 'not an OpenPGP message');
  }
}

/** Whether the message is encrypted to public keys (else to a passphrase). */
export function isToRecipient(message: openpgp.Message<Uint8Array | string>): boolean {
  return message.getEncryptionKeyIDs().length > 0;
}

/**
 * The text inside `message`. SyncError: SYNC_DECRYPT_FAILED (wrong passphrase, or a damaged
 * session key), SYNC_TAMPERED (the integrity check failed), SYNC_WRONG_RECIPIENT (encrypted to
 * another key), SYNC_UNTRUSTED_SIGNER (unsigned, or not by a trusted key).
 */
export async function open(
  message: openpgp.Message<Uint8Array | string>,
  how: Opener,
): Promise<string> {
  try {
    if ('passphrase' in how) {
      const { data } = await openpgp.decrypt({
        message,
        passwords: [how.passphrase],
        config: { maxArgon2MemoryExponent: MAX_ARGON2_MEMORY_EXPONENT },
      });
      return data as string;
    }
    if (how.trusted.length === 0) {
      throw new SyncError(
        'SYNC_UNTRUSTED_SIGNER',
        `no trusted signer: put the exporting node's public key in the config dir's ${TRUSTED_DIR}/`,
      );
    }
    const { data } = await openpgp.decrypt({
      message,
      decryptionKeys: how.nodeKey,
      verificationKeys: how.trusted,
      expectSigned: true,
    });
    return data as string;
  } catch (err) {
    throw err instanceof SyncError ? err : openFailure(err);
  }
}

function openFailure(err: unknown): SyncError {
  const text = err instanceof Error ? err.message : String(err);
  if (/Session key decryption failed/i.test(text)) {
    return new SyncError(
      'SYNC_DECRYPT_FAILED',
      'cannot decrypt: wrong passphrase, or a damaged file',
    );
  }
  if (/Argon2/.test(text)) {
    return new SyncError(
      'SYNC_DECRYPT_FAILED',
      'cannot decrypt: the file asks for more than 256 MiB of memory to derive its key',
    );
  }
  if (/No decryption key packets|No public key encrypted session key/i.test(text)) {
    return new SyncError('SYNC_WRONG_RECIPIENT', "the file is encrypted to another node's key");
  }
  if (/signing key|signature|signed/i.test(text)) {
    return new SyncError(
      'SYNC_UNTRUSTED_SIGNER',
      `the file is not signed by a trusted node (keys in the config dir's ${TRUSTED_DIR}/)`,
    );
  }
  if (/Modification detected|authenticat|integrity|MDC/i.test(text)) {
    return new SyncError('SYNC_TAMPERED', 'the file was modified: its integrity check failed');
  }
  return new SyncError('SYNC_TAMPERED', `cannot decrypt: the file is damaged (${text})`);
}

/** This node's private key from the data dir, or undefined when keygen never ran. */
export async function readNodeKey(dataDir: string): Promise<openpgp.PrivateKey | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, NODE_KEY_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return await openpgp.readPrivateKey({ armoredKey: text });
  } catch {
    throw new SyncError(
      'SYNC_KEY_FILE',
      `${join(dataDir, NODE_KEY_FILE)}: not an OpenPGP private key`,
    );
  }
}

/**
 * Makes this node's key pair (Curve25519) and stores the private key in the data dir, 0600,
 * only when there is none yet. Resolves with the armored public key and whether it was made.
 */
export async function ensureNodeKey(
  dataDir: string,
): Promise<{ publicKey: string; made: boolean }> {
  const existing = await readNodeKey(dataDir);
  if (existing) return { publicKey: existing.toPublic().armor(), made: false };
  const pair = await openpgp.generateKey({
    type: 'curve25519',
    userIDs: [{ name: `proxyauth node ${hostname()}` }],
    format: 'armored',
  });
  const made = await writeFileExclusive(join(dataDir, NODE_KEY_FILE), pair.privateKey, {
    mode: 0o600,
  });
  if (!made) return ensureNodeKey(dataDir);
  return { publicKey: pair.publicKey, made };
}

/** A public key file (`--recipient`, a trusted signer). SyncError SYNC_KEY_FILE. */
export async function readPublicKey(file: string): Promise<openpgp.PublicKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SyncError(
      'SYNC_KEY_FILE',
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  try {
    const key = await openpgp.readKey({ armoredKey: text });
    if (key.isPrivate()) {
      throw new SyncError('SYNC_KEY_FILE', `${file}: a private key; give the public key`);
    }
    return key;
  } catch (err) {
    if (err instanceof SyncError) throw err;
    throw new SyncError('SYNC_KEY_FILE', `${file}: not an OpenPGP public key`);
  }
}

/** The trusted signers: every `*.asc` in `<configDir>/sync-trusted/` (none when it is absent). */
export async function readTrusted(configDir: string): Promise<openpgp.PublicKey[]> {
  const dir = join(configDir, TRUSTED_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const files = names.filter((n) => n.endsWith('.asc')).sort();
  return Promise.all(files.map((n) => readPublicKey(join(dir, n))));
}

import type { Writable } from 'node:stream';
import { ConfigError } from '../conf/config-error.js';
import { loadConfigDir } from '../conf/load.js';
import { openStore, type Store, StoreError } from '../shared/store.js';
import { base32Of, newTotpSecret, otpauthUri } from '../shared/totp.js';
import { deriveTotpKey, sealTotp } from '../shared/totp-seal.js';
import type { Dirs } from './dirs.js';

/** What `proxyauth totp` does to a user's secret in the store. */
export type TotpAction = 'reset' | 'remove';

/** The output streams and options of one run. */
export interface TotpCommandIo {
  out: Writable;
  err: Writable;
  /** `--json`: reset prints `{"username","otpauth_uri","otpkey"}` instead of text and a QR code. */
  json: boolean;
}

/**
 * `proxyauth totp reset USER` / `proxyauth totp remove USER`: the admin's TOTP operations,
 * straight in the store of `dirs.dataDir`, opened as a second writer beside a running gateway
 * (LMDB serialises the writers). Edges read the store at every login, so the change holds at
 * once everywhere: no restart, no reload. `reset` reads config.json (the sealing key comes from
 * its `secret`, and the user must exist there) and prints the new secret; `remove` needs only
 * the store. The store is never created here. Returns the exit status: 0 done (also when
 * `remove` found nothing), 1 when the config, the user or the store is not usable.
 */
export async function totpCommand(
  dirs: Dirs,
  action: TotpAction,
  user: string,
  io: TotpCommandIo,
): Promise<number> {
  let key: Uint8Array | undefined;
  if (action === 'reset') {
    const found = await configKey(dirs.configDir, user, io.err);
    if (found === undefined) return 1;
    key = found;
  }
  let store: Store;
  try {
    store = openStore(dirs.dataDir, { readOnly: false, create: false });
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    io.err.write(`proxyauth: ${e.message}\n`);
    return 1;
  }
  try {
    if (key === undefined) return await remove(store, user, io.out);
    return await reset(store, key, user, io);
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    io.err.write(`proxyauth: ${e.message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** The sealing key of the config dir's `secret`, once the config is valid and names `user`. */
async function configKey(
  configDir: string,
  user: string,
  err: Writable,
): Promise<Uint8Array | undefined> {
  try {
    const { config, files } = await loadConfigDir(configDir);
    if (!config.users.some((u) => u.username === user)) {
      err.write(`proxyauth: ${files.config}: no user named ${JSON.stringify(user)}\n`);
      return undefined;
    }
    return deriveTotpKey(config.secret);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err.write(`${e.format()}\n`);
    return undefined;
  }
}

async function reset(store: Store, key: Uint8Array, user: string, io: TotpCommandIo) {
  const secret = newTotpSecret();
  await store.putTotp(user, sealTotp(key, user, secret, Math.floor(Date.now() / 1000)), 'reset');
  const uri = otpauthUri(user, secret);
  if (io.json) {
    io.out.write(
      `${JSON.stringify({ username: user, otpauth_uri: uri, otpkey: base32Of(secret) })}\n`,
    );
    return 0;
  }
  const qrcode = await import('qrcode');
  const qr = await qrcode.toString(uri, { type: 'terminal', small: true });
  io.out.write(
    `new TOTP secret for ${user} (${secret.algorithm}, ${secret.digits} digits, ${secret.period} s), ` +
      'in force now; it replaces any earlier one\n' +
      `otpauth_uri: ${uri}\notpkey: ${base32Of(secret)}\n${qr}`,
  );
  return 0;
}

async function remove(store: Store, user: string, out: Writable) {
  const removed = await store.removeTotp(user);
  out.write(
    removed
      ? `removed the TOTP secret of ${user} from the store\n`
      : `${user} has no TOTP secret in the store\n`,
  );
  return 0;
}

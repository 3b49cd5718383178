import type { Writable } from 'node:stream';
import { type LoginBan, openStore, type Store, StoreError } from '../shared/store.js';

/** What `proxyauth unban` lifts: one user's ban, or the bans of an IP address or CIDR. */
export type UnbanTarget = { kind: 'user'; user: string } | { kind: 'ip'; address: string };

/**
 * `proxyauth unban`: lifts login bans straight in the store of `dataDir`, opened as a second
 * writer beside a running gateway (LMDB serialises the writers' transactions). The supervisor
 * reads bans from the store on every login attempt, so the next attempt is let through: no
 * restart, no reload. The store is never created here: a missing one is reported (exit 1).
 * Prints one line per ban lifted, or that none was in force; returns the exit status (0 in both
 * cases, 1 when the store cannot be opened or written).
 */
export async function unbanCommand(
  dataDir: string,
  target: UnbanTarget,
  out: Writable,
  err: Writable,
): Promise<number> {
  let store: Store;
  try {
    store = openStore(dataDir, { readOnly: false, create: false });
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    err.write(`proxyauth: ${e.message}\n`);
    return 1;
  }
  try {
    const lifted =
      target.kind === 'user'
        ? await store.unban('user', target.user)
        : await store.unbanIp(target.address);
    if (lifted.length === 0) {
      const what = target.kind === 'user' ? target.user : target.address.trim();
      out.write(`no ban in force for ${target.kind} ${what}\n`);
    }
    for (const ban of lifted) out.write(`${liftedLine(ban)}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    err.write(`proxyauth: ${e.message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** `unbanned user alice (was banned until 2026-11-30 10:20:00 UTC after 5 failures)`. */
export function liftedLine(ban: LoginBan): string {
  const failures = `${ban.failures} failure${ban.failures === 1 ? '' : 's'}`;
  return `unbanned ${ban.kind} ${ban.subject} (was banned until ${utc(ban.until)} after ${failures})`;
}

function utc(unixSeconds: number): string {
  const date = new Date(Math.floor(unixSeconds) * 1000);
  if (Number.isNaN(date.getTime())) return `${unixSeconds} (unix time)`;
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

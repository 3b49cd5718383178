import type { Writable } from 'node:stream';
import { openStore, StoreError } from '../shared/store.js';
import { formatRfc3339 } from '../shared/time-format.js';

/** Tokens read per page; the command reads every page. */
const PAGE = 1_000;

/**
 * `proxyauth stats`: the node's unexpired tokens, their use counts and whether a revocation in
 * force refuses them, straight from the store
 * (read-only). Chosen over calling the admin API: it needs no admin token and no address (the
 * original called a hard-coded https://127.0.0.1:8080), and it works while the gateway is
 * stopped. Counts are what the edges flushed (every second). Returns the exit status.
 */
export async function statsCommand(
  dataDir: string,
  options: { user: string | undefined; json: boolean },
  out: Writable,
  err: Writable,
): Promise<number> {
  let store: ReturnType<typeof openStore>;
  try {
    store = openStore(dataDir, { readOnly: true });
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    err.write(`proxyauth: ${(e as StoreError).message}\n`);
    return 1;
  }
  try {
    const now = Math.floor(Date.now() / 1000);
    const inForce = store.revocationsInForce(now);
    const revokedIds = new Set(inForce.tokens.map((r) => r.tokenId));
    const notBefore = new Map(inForce.users.map((r) => [r.user, r.notBefore]));
    const isRevoked = (user: string, t: { tokenId: string; iat: number }) =>
      revokedIds.has(t.tokenId) || t.iat <= (notBefore.get(user) ?? -1);
    const users = new Map<string, { tokenId: string; count: number; iat: number; exp: number }[]>();
    let after: string | undefined;
    do {
      const page = store.stats({ user: options.user, after, limit: PAGE, nowSeconds: now });
      for (const u of page.users) {
        const list = users.get(u.user) ?? [];
        list.push(...u.tokens);
        users.set(u.user, list);
      }
      after = page.next ?? undefined;
    } while (after !== undefined);
    if (options.json) {
      const body = [...users].map(([user, tokens]) => ({
        user,
        tokens: tokens.map((t) => ({
          token_id: t.tokenId,
          count: t.count,
          delivery_at: formatRfc3339(t.iat),
          expire_at: formatRfc3339(t.exp),
          revoked: isRevoked(user, t),
        })),
      }));
      out.write(`${JSON.stringify(body, null, 2)}\n`);
      return 0;
    }
    const rows = [['USER', 'TOKEN ID', 'USES', 'ISSUED (UTC)', 'EXPIRES (UTC)', 'REVOKED']];
    for (const [user, tokens] of users) {
      for (const t of tokens) {
        rows.push([
          user,
          t.tokenId,
          String(t.count),
          formatRfc3339(t.iat),
          formatRfc3339(t.exp),
          isRevoked(user, t) ? 'yes' : '-',
        ]);
      }
    }
    if (rows.length === 1) {
      out.write('no unexpired tokens\n');
      return 0;
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    // The store cannot tell whether counting is on: say when uses are counted.
    out.write('uses are counted while "stats" is true in config.json\n');
    for (const row of rows) {
      out.write(
        `${row
          .map((cell, i) => (i === 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd()}\n`,
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}

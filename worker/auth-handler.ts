import type { CryptoPool } from '../crypto-pool/pool.js';
import { GatewayError } from '../shared/errors.js';
import { formatExpiresAt } from '../shared/time-format.js';
import { bodyKind, parseCredentials } from './credentials.js';
import type { Runtime } from './runtime.js';
import { type Exchange, header, readBody, sendError, sendJson } from './uws-io.js';

/**
 * POST /auth. Unknown users are verified against a dummy hash of the same cost, and the IP
 * allow list is checked only after a correct password, so neither the status nor the timing
 * tells a stranger which usernames exist.
 */
export async function handleLogin(
  ex: Exchange,
  rt: Runtime,
  crypto: CryptoPool,
): Promise<string | undefined> {
  const kind = bodyKind(header(ex, 'content-type'));
  if (kind === null) {
    sendError(ex, 'UNSUPPORTED_MEDIA_TYPE');
    return undefined;
  }
  const body = await readBody(ex, rt.config.max_body_auth_bytes);
  const { username, password } = parseCredentials(body, kind);
  const user = rt.users.get(username);
  const valid = await crypto.verifyPassword(user?.hash ?? rt.dummyHash, password);
  if (!valid || user === undefined) throw new GatewayError('INVALID_CREDENTIALS');
  if (user.allows && !user.allows(ex.ip)) throw new GatewayError('IP_NOT_ALLOWED');
  const now = Math.floor(Date.now() / 1000);
  const { token, claims } = rt.codec.issue(username, rt.config.token_expiry_seconds, now);
  sendJson(
    ex,
    200,
    JSON.stringify({ token, expires_at: formatExpiresAt(claims.exp, rt.config.timezone) }),
  );
  return username;
}

/**
 * config.json's `redis`: `redis://[user[:password]@]host[:port][/db]` or the same with
 * `rediss://` (TLS). Parsed here, by the config schema and by the supervisor alike, into plain
 * connection fields: the URL is never handed to ioredis, whose parser would turn a query string
 * into arbitrary client options (`?enableOfflineQueue=true`...). A query or fragment is refused.
 */
export interface RedisTarget {
  tls: boolean;
  host: string;
  port: number;
  /** ACL user (Redis 6+), or undefined for the default user. */
  username: string | undefined;
  password: string | undefined;
  db: number;
}

/** What is wrong with `text` as a Redis URL (a sentence to show), or undefined when it is fine. */
export function redisUrlProblem(text: string): string | undefined {
  const parsed = parse(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** The connection fields of a valid URL; throws TypeError for one redisUrlProblem refuses. */
export function parseRedisUrl(text: string): RedisTarget {
  const parsed = parse(text);
  if (typeof parsed === 'string') throw new TypeError(parsed);
  return parsed;
}

/** The URL without its password, for logs: `rediss://user:***@host:6380/0`. */
export function redactRedisUrl(text: string): string {
  const parsed = parse(text);
  if (typeof parsed === 'string') return '(invalid redis URL)';
  const user = parsed.username === undefined ? '' : encodeURIComponent(parsed.username);
  const auth = parsed.password === undefined ? (user ? `${user}@` : '') : `${user}:***@`;
  const host = parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host;
  return `${parsed.tls ? 'rediss' : 'redis'}://${auth}${host}:${parsed.port}/${parsed.db}`;
}

function parse(text: string): RedisTarget | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'expected a redis:// or rediss:// URL';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    return 'expected a redis:// or rediss:// URL';
  }
  if (url.hostname === '') return 'the URL names no host';
  if (url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#')) {
    return 'a query string or fragment is not accepted (options are config keys)';
  }
  const path = url.pathname === '' ? '/' : url.pathname;
  if (!/^\/(?:[0-9]{1,5})?$/.test(path)) return 'the path must be a database number (/0, /1...)';
  const db = path === '/' ? 0 : Number(path.slice(1));
  const tls = url.protocol === 'rediss:';
  return {
    tls,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? 6379 : Number(url.port),
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    db,
  };
}

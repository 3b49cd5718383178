import { z } from 'zod';
import { IpEntryError, parseIpEntry } from '../shared/ip-match.js';
import { base32Problem } from '../shared/totp.js';
import { usernameProblem } from '../shared/username.js';
import { Argon2HashError, argon2Cost } from './argon2-hash.js';
import { forwardAuthSchema } from './forward-auth-schema.js';
import { isArgon2Hash } from './is-argon2-hash.js';
import { isLoopback, metricsSchema } from './metrics-schema.js';
import { rateLimitSchema } from './rate-limit-schema.js';
import { redisUrlProblem } from './redis-url.js';
import { canonicalOrigin, canonicalTimezone, isHostOrIp, isUrlWithScheme } from './value-checks.js';

// Bounds and defaults of config.json. Keys beyond the original's docs are marked "ours".
// The original's docs say token_expiry_seconds is "1-31536000 (max 5 years)"; 31536000 s is one
// year, so we take the "5 years" at its word: 157680000 s = 5 * 365 days.
export const TOKEN_EXPIRY_MAX_SECONDS = 157_680_000;

const intIn = (min: number, max: number) => z.int().min(min).max(max);
const noControlChars = (label: string) =>
  z
    .string()
    .min(1)
    .refine((s) => !/[\x00-\x1f\x7f]/.test(s), `${label} must not contain control characters`);

// The edge's own parser, so an entry accepted here always compiles there.
const ipOrCidr = z.string().superRefine((entry, ctx) => {
  try {
    parseIpEntry(entry);
  } catch (err) {
    if (!(err instanceof IpEntryError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

// A value that claims to be an Argon2 hash must be one the verifier can use: a broken hash
// would otherwise lock its user out without a word. Anything else is plaintext, hashed at start.
const password = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    if (!isArgon2Hash(value)) return;
    try {
      argon2Cost(value);
    } catch (err) {
      if (!(err instanceof Argon2HashError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
    }
  });

const timezone = z.string().transform((name, ctx) => {
  const canonical = canonicalTimezone(name);
  if (canonical === undefined) {
    ctx.addIssue({ code: 'custom', message: `unknown IANA time zone "${name}"` });
    return z.NEVER;
  }
  return canonical;
});

const origin = z.string().transform((value, ctx) => {
  const canonical = canonicalOrigin(value);
  if (canonical === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected an origin: http(s)://host[:port], no path, no wildcard, not "null"',
    });
    return z.NEVER;
  }
  return canonical;
});

/** `''` and null mean "unset", like a missing key. */
const optionalText = <T extends z.ZodType<string>>(inner: T) =>
  z.preprocess((v) => (v === '' || v === null ? undefined : v), inner.optional());

/**
 * A Location value, written into the answer's head verbatim: printable ASCII only in either
 * form, since a CR or LF would end the Location line and start a header of the config's
 * choosing; other bytes are percent-encoded (RFC 3986). isUrlWithScheme alone refuses only
 * whitespace and C0 controls: a URL with U+0085 (a C1 control) or `é` passed it and went out as
 * raw UTF-8. A path may not start with `//` or `/\`: browsers read both as another host (as
 * `login_url`). A URL is spelled with `//` after its scheme: `https:\\evil` and `https:evil`
 * parse here as hosts, but a browser on a page of the same scheme reads `https:evil` as a path.
 */
const redirectUrl = z
  .string()
  .refine(
    (s) =>
      !/[^\x21-\x7e]/.test(s) &&
      ((s.startsWith('/') && !s.startsWith('//') && !s.startsWith('/\\')) ||
        (/^https?:\/\//i.test(s) && isUrlWithScheme(s, ['http:', 'https:']))),
    'expected a path starting with one "/" or an http(s) URL, printable ASCII (percent-encode the rest)',
  );

const redisUrl = z.string().superRefine((text, ctx) => {
  const problem = redisUrlProblem(text);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/** `log.host` of type loki: `host:port` (the original's form, plain http) or an http(s) URL. */
const lokiHost = z.string().superRefine((text, ctx) => {
  if (lokiUrl(text) === undefined) {
    ctx.addIssue({
      code: 'custom',
      message:
        'expected host:port or an http(s) URL, without query or fragment, and without ' +
        'credentials (those go in log.user and log.password_file)',
    });
  }
});

/** The Loki base URL of `log.host`, or undefined when it is not one. */
export function lokiUrl(host: string): URL | undefined {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? host : `http://${host}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.search !== '' || url.hash !== '' || url.hostname === '') return undefined;
  // Credentials would end up in error messages, hence in logs: not accepted in the URL.
  if (url.username !== '' || url.password !== '') return undefined;
  return url;
}

const logSchema = z
  .strictObject({
    type: z.enum(['local', 'loki', 'http']).default('local'),
    host: lokiHost.optional(),
    write_max_logs: z.int().min(1).max(10_000_000).optional(),
    max_writes_log: z.int().min(1).max(10_000_000).optional(),
    /** Ours: the least severe level written; PROXYAUTH_LOG_LEVEL overrides it. */
    level: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
    /** Ours: `auto` is text on a terminal, JSON otherwise. Read at start. */
    format: z.enum(['auto', 'json', 'text']).default('auto'),
    /** Ours: Loki's `node` label (default: the host name). */
    node: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'expected 1 to 128 of A-Z a-z 0-9 _ . : -')
      .optional(),
    /** Ours: Loki basic auth (RFC 7617): the user; its password is in `password_file`. */
    user: z
      .string()
      .regex(
        /^[^\x00-\x1f\x7f:]{1,256}$/,
        'expected 1 to 256 characters, no ":" or control character',
      )
      .optional(),
    /** Ours: the file holding the password of `user` (conf/loki-auth.ts reads it). */
    password_file: noControlChars('a file name').optional(),
    /** Ours: Loki's tenant, sent as X-Scope-OrgID (Loki's rule for tenant ids). */
    tenant: z
      .string()
      .regex(/^[A-Za-z0-9!._*'()-]{1,150}$/, "expected 1 to 150 of A-Z a-z 0-9 ! . _ * ' ( ) -")
      .refine((t) => t !== '.' && t !== '..', 'must not be "." or ".."')
      .optional(),
  })
  .superRefine((log, ctx) => {
    if (log.type === 'loki' && log.host === undefined) {
      ctx.addIssue({ code: 'custom', path: ['host'], message: 'is required when type is "loki"' });
    }
    if ((log.user === undefined) !== (log.password_file === undefined)) {
      const missing = log.user === undefined ? 'user' : 'password_file';
      const given = log.user === undefined ? 'password_file' : 'user';
      ctx.addIssue({ code: 'custom', path: [missing], message: `is required with ${given}` });
    }
    const url = log.user !== undefined && log.host !== undefined ? lokiUrl(log.host) : undefined;
    if (url?.protocol === 'http:' && !isLoopback(url.hostname.replace(/^\[|\]$/g, ''))) {
      ctx.addIssue({
        code: 'custom',
        path: ['host'],
        message:
          'would send the password of log.user in clear: use an https:// URL (plain http is ' +
          'only accepted to a loopback IP, 127.0.0.1 or [::1])',
      });
    }
    if (log.write_max_logs !== undefined && log.max_writes_log !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_writes_log'],
        message: 'give either write_max_logs or its alias max_writes_log, not both',
      });
    }
  })
  .transform(({ write_max_logs, max_writes_log, ...rest }) => ({
    ...rest,
    write_max_logs: write_max_logs ?? max_writes_log ?? 10_000,
  }));

const userSchema = z.strictObject({
  // The same rule as the admin API and the token codec (shared/username.ts).
  username: z.string().superRefine((name, ctx) => {
    const problem = usernameProblem(name);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `username ${problem}` });
  }),
  // An Argon2 PHC string, or plaintext that the supervisor hashes in place at start.
  password,
  allow: z
    .array(ipOrCidr)
    .min(1, 'an empty list is ambiguous (nobody, or anybody?): list entries, or remove the key')
    .optional(),
  roles: z
    .array(noControlChars('a role').refine((r) => !r.includes(','), 'a role must not contain ","'))
    .default([]),
  // true: this user must log in with TOTP (enrolled in the store); a string: the original's
  // plaintext base32 secret (SHA512, 6 digits, 30 s), still accepted, warned about.
  totp: z
    .union([
      z.boolean(),
      z.string().superRefine((text, ctx) => {
        const problem = base32Problem(text);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      }),
    ])
    .default(false),
});

/** Schema of config.json; the output is normalised (aliases folded, defaults applied). */
export const configSchema = z.strictObject({
  token_expiry_seconds: intIn(1, TOKEN_EXPIRY_MAX_SECONDS).default(3600),
  secret: z.string().min(64, 'must be at least 64 characters'),
  host: z.string().refine(isHostOrIp, 'expected an IP address or host name').default('0.0.0.0'),
  // 0: any free port, chosen once at start and kept across reloads (tests, scripts).
  port: intIn(0, 65_535).default(8080),
  tls: z.boolean().default(false),
  worker: intIn(1, 1024).default(4),
  num_instances: intIn(1, 64).default(2),
  timezone: timezone.default('Europe/Paris'),
  login_via_otp: z.boolean().default(false),
  log: logSchema.prefault({}),
  stats: z.boolean().default(false),
  max_idle_per_host: intIn(0, 3000).default(50),
  redis: optionalText(redisUrl),
  /**
   * Ours: the start of every Redis key and channel name of the revocation bus, so that several
   * clusters can share one Redis (README "Several nodes"). No glob characters: it is used in
   * SCAN MATCH patterns as it is.
   */
  redis_prefix: z
    .string()
    .regex(/^[A-Za-z0-9_.:{}-]{1,64}$/, 'expected 1 to 64 of A-Z a-z 0-9 _ . : - { }')
    .default('proxyauth:'),
  session_cookie: z.boolean().default(false),
  max_age_session_cookie: intIn(60, 31_536_000).default(3600),
  csrf_token: z.boolean().default(true),
  /** Ours: seconds a CSRF token stays valid after it is minted (README "CSRF"). */
  csrf_token_ttl: intIn(1, 86_400).default(600),
  /** Ours: a CSRF token is spent by the first request that carries it, on every edge. */
  csrf_single_use: z.boolean().default(false),
  login_redirect_url: optionalText(redirectUrl),
  logout_redirect_url: optionalText(redirectUrl),
  /**
   * Ours: the page of failed browser logins and of `GET /auth` in session-cookie mode, a file
   * (relative to the config dir) with an error block, read at every load (conf/login-page.ts).
   */
  login_page: optionalText(noControlChars('a file name')),
  cors_origins: z.array(origin).default([]),
  ratelimit_auth: rateLimitSchema.prefault({}),
  ratelimit_proxy: rateLimitSchema.prefault({}),
  /**
   * Ours: how many clients the rate limiter tracks at most, node-wide (supervisor), before it
   * evicts the ones with credit left; see README "Rate limits".
   */
  ratelimit_max_clients: intIn(1000, 10_000_000).default(100_000),
  /** Ours: IPv6 clients are keyed (rate limits, lockouts) by this prefix of their address. */
  client_ipv6_prefix: intIn(1, 128).default(64),
  /** Ours: failed-login lockout (README "Login lockout"); max_failures 0 turns it off. */
  login_lockout: z
    .strictObject({
      max_failures: intIn(0, 1000).default(5),
      /** Seconds: failures older than this are forgotten. */
      find_time: intIn(1, 86_400).default(600),
      /** Seconds a user or an address is refused once banned. */
      ban_time: intIn(1, 2_592_000).default(900),
    })
    .prefault({}),
  // Empty (or absent) turns the admin API off; a first start writes a generated one.
  token_admin: z.preprocess(
    (v) => (v === null || v === undefined ? '' : v),
    z.union([z.literal(''), z.string().regex(/^[0-9a-fA-F]{64}$/)], {
      error: 'expected 64 hex characters, or "" to have one generated',
    }),
  ),
  max_connections: intIn(1, 10_000_000).default(10_000),
  pending_connections_limit: intIn(1, 1_000_000).default(1024),
  socket_listen: intIn(1, 65_535).default(1024),
  /** Milliseconds the gateway waits on an upstream (response head, then each body chunk): 504 past it. */
  client_timeout: intIn(1, 3_600_000).default(30_000),
  /** Seconds, at most, that an idle upstream keep-alive connection is kept (always seconds). */
  keep_alive: intIn(0, 3600).default(75),
  /** Ours: peers whose X-Forwarded-For / X-Real-IP are believed. Nobody's by default. */
  trusted_proxies: z.array(ipOrCidr).default([]),
  /** Ours: addresses (IPs, CIDRs) that may call /adm/* at all; empty: any (token still needed). */
  admin_allow: z.array(ipOrCidr).default([]),
  /** Ours: largest body accepted on POST /auth and the /adm endpoints. */
  max_body_auth_bytes: intIn(256, 1_048_576).default(16_384),
  /**
   * Ours: largest WebSocket message, in bytes, accepted from a client or a backend (README
   * "WebSocket"); a larger one closes the connection with 1009. Read at edge start: a change
   * rolls the edges.
   */
  max_websocket_message_bytes: intIn(1024, 268_435_456).default(16_777_216),
  /** Ours: largest request head (request line + headers) accepted from a client. */
  max_header_bytes: intIn(1024, 1_048_576).default(16_384),
  /**
   * Ours: request headers never forwarded upstream, on top of the built-in families
   * (worker/upstream-headers.ts): header names, or prefixes written with a trailing `*`.
   */
  drop_request_headers: z
    .array(
      z
        .string()
        .regex(
          /^[!#$%&'+.^_`|~0-9A-Za-z-]+\*?$/,
          'expected a header name, optionally ending in "*"',
        ),
    )
    .default([]),
  users: z.array(userSchema).default([]),
  /** Ours: the Prometheus metrics and health listener (conf/metrics-schema.ts); absent: off. */
  metrics: metricsSchema.optional(),
  /**
   * Ours: the edges also answer `GET /healthz` and `/readyz` on the main port
   * (worker/health-endpoints.ts); a route whose prefix is one of them is then an error
   * (conf/health-paths.ts). Applied at reload.
   */
  health_on_main_port: z.boolean().default(false),
  /** Ours: forward-auth's login redirect and the hosts `rd` may name (conf/forward-auth-schema.ts). */
  forward_auth: forwardAuthSchema.prefault({}),
});

/** Normalised config.json, defaults applied. */
export type Config = z.output<typeof configSchema>;
export type UserConfig = Config['users'][number];
export type { RateLimitConfig } from './rate-limit-schema.js';
export type LogConfig = Config['log'];

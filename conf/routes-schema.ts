import { z } from 'zod';
import { parseTarget, TargetUrlError } from '../shared/target-url.js';
import { compilePattern, PatternError } from './compile-pattern.js';
import { rateLimitSchema } from './rate-limit-schema.js';
import { isUrlWithScheme } from './value-checks.js';

/** A filter condition of routes.yml with its regexes compiled. */
export type CompiledFilter =
  | { field: 'method' | 'path'; pattern: RegExp }
  | { field: 'body_raw'; pattern: RegExp }
  /** `name` picks header (case-insensitively, RFC 9110 §5.1) or query parameter names. */
  | { field: 'header' | 'query'; name: RegExp; pattern: RegExp }
  /** `key` is a top-level JSON key. */
  | { field: 'body_json'; key: string; pattern: RegExp };

const FIELDS = ['method', 'path', 'header', 'query', 'body_raw', 'body_json'] as const;
// RFC 9110 §5.6.2 token.
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// The edge compiles targets with this same parser: a URL accepted here never stops an edge.
const upstreamUrl = z.string().superRefine((url, ctx) => {
  try {
    parseTarget(url);
  } catch (err) {
    if (!(err instanceof TargetUrlError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

/**
 * Routes are matched on canonical, decoded paths (no `//`, `.`, `..` or `\` left), so a prefix
 * holding any of those could never match: refuse it, and `%` too (it would read as an escape).
 * `?` and `#` are refused as well: a prefix never matches a query or fragment, and `;`, which
 * no request path may hold (canonical-path.ts).
 */
function isCanonicalPrefix(p: string): boolean {
  if (!p.startsWith('/') || /[\x00-\x1f\x7f?#%\\;]/.test(p)) return false;
  const segments = p.split('/');
  // Empty segments are allowed only around the path: the leading '' and a trailing slash.
  return segments.every(
    (seg, i) => seg !== '.' && seg !== '..' && (seg !== '' || i === 0 || i === segments.length - 1),
  );
}

/** The gateway's own subtree (worker/endpoints.ts): a route there could never be reached. */
const ADMIN_SUBTREE = /^\/adm(?:\/|$)/i;

const prefix = z.string().transform((p, ctx) => {
  if (isCanonicalPrefix(p)) {
    if (!ADMIN_SUBTREE.test(p)) return trimTrailingSlash(p);
    ctx.addIssue({
      code: 'custom',
      message: "the /adm subtree is reserved for the gateway's admin API",
    });
    return z.NEVER;
  }
  ctx.addIssue({
    code: 'custom',
    message:
      'expected a decoded path starting with "/", without "//", ".", "..", "?", "#", "%", ";" or "\\"',
  });
  return z.NEVER;
});

/** `/api/` -> `/api`; `/` stays `/`. Two prefixes that trim equal are duplicates. */
export function trimTrailingSlash(prefix: string): string {
  return prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}

// A bare URL string is shorthand for {url}; one object schema gives precise error keys.
const backend = z.preprocess(
  (v) => (typeof v === 'string' ? { url: v } : v),
  z.strictObject(
    { url: upstreamUrl, weight: z.int().min(-1).max(1000).default(1) },
    {
      error: (iss) => (iss.code === 'invalid_type' ? 'expected a URL or {url, weight}' : undefined),
    },
  ),
);

// An origin-form request target (RFC 9112 section 3.2.1): '/', then visible ASCII, no fragment.
const ORIGIN_FORM = /^\/[\x21-\x22\x24-\x7e]*$/;
const httpStatus = z.int().min(100).max(599);

/**
 * Ours: active health checks of a route's backends (worker/health-check.ts). `interval` and
 * `timeout` are milliseconds, as `client_timeout`; `path` is requested with GET on each
 * backend's origin (not under the backend's own path); `expected_status` one status or a list.
 */
const healthCheck = z
  .strictObject({
    path: z
      .string()
      .regex(ORIGIN_FORM, 'expected a path starting with "/" (query allowed, no blanks or "#")')
      .default('/'),
    interval: z.int().min(100).max(3_600_000).default(5_000),
    timeout: z.int().min(1).max(60_000).default(2_000),
    expected_status: z
      .union([httpStatus, z.array(httpStatus).min(1)], {
        error: 'expected an HTTP status (100-599) or a list of them',
      })
      .default(200)
      .transform((s) => (Array.isArray(s) ? [...new Set(s)] : [s])),
  })
  .superRefine((h, ctx) => {
    if (h.timeout > h.interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeout'],
        message: `must not exceed interval (${h.interval} ms): checks would overlap`,
      });
    }
  });

/** A backend URL as compared for duplicates: origin, encoded path and query. */
function backendKey(url: string): string {
  const t = parseTarget(url);
  return t.query === '' ? `${t.origin}${t.path}` : `${t.origin}${t.path}?${t.query}`;
}

const proxyConfig = z
  .union([z.string(), z.strictObject({ host: z.string().min(1) })], {
    error: 'expected a proxy URL or {host}',
  })
  .transform((v, ctx) => {
    const raw = typeof v === 'string' ? v : v.host;
    const url = raw.includes('://') ? raw : `http://${raw}`;
    if (isUrlWithScheme(url, ['https:'])) {
      // TLS to the proxy itself is not built; the tunnel to an https target is TLS end to end.
      ctx.addIssue({
        code: 'custom',
        message: 'https:// proxies are not supported: give the proxy as http://host:port',
      });
      return z.NEVER;
    }
    // Only scheme, optional user:password, host and port: a path would be ignored silently.
    if (isUrlWithScheme(url, ['http:']) && /^http:\/\/[^/?#]+\/?$/i.test(url)) return url;
    ctx.addIssue({
      code: 'custom',
      message: 'expected an http://[user:password@]host:port proxy URL, or host:port',
    });
    return z.NEVER;
  });

const cert = z
  .strictObject({
    file: z.string().min(1),
    password: z.string().optional(),
    key: z.string().min(1).optional(),
  })
  .transform(({ file, password, key }, ctx) => {
    if (key === undefined) return { type: 'p12' as const, file, password: password ?? '' };
    if (password === undefined) return { type: 'pem' as const, file, key };
    ctx.addIssue({
      code: 'custom',
      message: 'give {file, password} for PKCS#12 or {file, key} for PEM, not both',
    });
    return z.NEVER;
  });

const filterCondition = z
  .strictObject({
    field: z.enum(FIELDS),
    pattern: z.string().min(1),
    name: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
  })
  .transform((c, ctx): CompiledFilter => {
    const compile = (key: 'pattern' | 'name', source: string, flags = ''): RegExp => {
      try {
        return compilePattern(source, flags);
      } catch (err) {
        if (!(err instanceof PatternError)) throw err;
        ctx.addIssue({ code: 'custom', path: [key], message: err.message });
        return /$^/;
      }
    };
    const misplaced = (key: 'name' | 'key', wanted: boolean) => {
      if ((c[key] === undefined) === wanted) {
        const message = wanted
          ? `is required when field is "${c.field}"`
          : `is not used with field "${c.field}"`;
        ctx.addIssue({ code: 'custom', path: [key], message });
      }
    };
    const pattern = compile('pattern', c.pattern);
    misplaced('name', c.field === 'header' || c.field === 'query');
    misplaced('key', c.field === 'body_json');
    if (c.field === 'header' || c.field === 'query') {
      const name = compile('name', c.name ?? '', c.field === 'header' ? 'i' : '');
      return { field: c.field, name, pattern };
    }
    if (c.field === 'body_json') return { field: c.field, key: c.key ?? '', pattern };
    return { field: c.field, pattern };
  });

/** Default of `filters.max_body_bytes`: bodies buffered for body conditions (1 MiB). */
export const DEFAULT_FILTER_BODY_BYTES = 1024 * 1024;

const conditions = z.array(filterCondition).default([]);

const filters = z.strictObject({
  default_allow: z.boolean().default(false),
  allow: conditions,
  /** A request matching any of these is refused, whatever `allow` says. */
  deny: conditions,
  /** Ours: the largest body buffered for body_raw/body_json conditions; larger gets 413. */
  max_body_bytes: z
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .default(DEFAULT_FILTER_BODY_BYTES),
});

/** Schema of one routes.yml route. */
export const routeSchema = z
  .strictObject({
    prefix,
    target: upstreamUrl,
    backends: z.array(backend).default([]),
    health_check: healthCheck.optional(),
    username: z
      .array(z.string().min(1))
      .min(1, 'an empty list is ambiguous (nobody, or anybody?): list entries, or remove the key')
      .optional(),
    secure: z.boolean().default(true),
    proxy: z.boolean().default(false),
    proxy_config: proxyConfig.optional(),
    cert: cert.optional(),
    /** Ours: PEM CA certificate(s) that replace the system roots to verify this route's https upstream. */
    ca: z.string().min(1).optional(),
    /** Ours: false skips verifying the https upstream's certificate (warned at load). */
    tls_verify: z.boolean().default(true),
    secure_path: z.boolean().default(false),
    preserve_prefix: z.boolean().default(false),
    allow_methods: z
      .array(z.string().regex(METHOD_TOKEN, 'expected an HTTP method'))
      .min(1, 'an empty list is ambiguous (nobody, or anybody?): list entries, or remove the key')
      .transform((ms) => [...new Set(ms.map((m) => m.toUpperCase()))])
      .optional(),
    // Enforced only in session-cookie mode with csrf_token on (config.json); true like the original.
    need_csrf: z.boolean().default(true),
    cache: z.boolean().default(true),
    filters: filters.optional(),
    /** Ours: this route's own limit instead of config.json's ratelimit_proxy (README "Rate limits"). */
    ratelimit: rateLimitSchema.optional(),
    /** Ours: WebSocket handshakes are proxied (true) or refused with 403 (README "WebSocket"). */
    websocket: z.boolean().default(true),
  })
  .superRefine((r, ctx) => {
    // A user list on a public route would restrict nothing: no token is asked for there.
    if (!r.secure && r.username !== undefined && r.username.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['username'],
        message:
          'restricts nothing on a public route (secure: false): set secure: true or remove it',
      });
    }
    tlsSettingChecks(r, ctx);
    checkBackends(r.target, r.backends, ctx);
    if (r.proxy && r.proxy_config === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['proxy_config'],
        message: 'is required when proxy is true',
      });
    }
  });

/**
 * `cert`, `ca` and `tls_verify` act on TLS to the upstream only: on a route without an https
 * target (or backend) they would be accepted and ignored, so they are refused; `ca` with
 * `tls_verify: false` contradicts itself.
 */
function tlsSettingChecks(
  r: {
    target: string;
    backends: { url: string }[];
    cert?: unknown;
    ca?: string | undefined;
    tls_verify: boolean;
  },
  ctx: z.RefinementCtx,
): void {
  const https = [r.target, ...r.backends.map((b) => b.url)].some((u) => /^https:/i.test(u));
  const used: [string, boolean][] = [
    ['cert', r.cert !== undefined],
    ['ca', r.ca !== undefined],
    ['tls_verify', !r.tls_verify],
  ];
  for (const [key, set] of used) {
    if (set && !https) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'applies to https upstreams only, and this route has no https target or backend',
      });
    }
  }
  if (r.ca !== undefined && !r.tls_verify) {
    ctx.addIssue({
      code: 'custom',
      path: ['ca'],
      message: 'is never used with tls_verify: false: remove one of them',
    });
  }
}

/**
 * `target` is a member of the route's backends with weight 1 unless its URL is listed in
 * `backends`, whose entry then sets its weight. A URL listed twice is an error (its weight
 * would be ambiguous), and so is a set where no member has a positive weight (nothing would
 * take traffic while all are up). URLs that do not parse were reported by their own schema.
 */
function checkBackends(
  target: string,
  backends: readonly { url: string; weight: number }[],
  ctx: z.RefinementCtx,
): void {
  if (backends.length === 0) return;
  const keyOf = (url: string): string | undefined => {
    try {
      return backendKey(url);
    } catch {
      return undefined;
    }
  };
  const seen = new Map<string, number>();
  backends.forEach((b, i) => {
    const key = keyOf(b.url);
    if (key === undefined) return;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else {
      ctx.addIssue({
        code: 'custom',
        path: ['backends', i, 'url'],
        message: `the same backend as backends[${first}]`,
      });
    }
  });
  const targetKey = keyOf(target);
  const targetListed = targetKey !== undefined && seen.has(targetKey);
  if (!targetListed) return;
  if (!backends.some((b) => b.weight > 0)) {
    ctx.addIssue({
      code: 'custom',
      path: ['backends'],
      message:
        'no backend has a positive weight (target is listed here, so its entry sets its weight): nothing would take traffic',
    });
  }
}

/** Schema of routes.yml; a missing or empty `routes` is an empty list. */
export const routesFileSchema = z.strictObject({
  routes: z
    .array(routeSchema)
    .nullish()
    .transform((r) => r ?? []),
});

/** One normalised route of routes.yml, regexes compiled. */
export type RouteConfig = z.output<typeof routeSchema>;
export type BackendConfig = RouteConfig['backends'][number];
export type HealthCheckConfig = NonNullable<RouteConfig['health_check']>;
export type RouteCertConfig = NonNullable<RouteConfig['cert']>;

import { BenchError } from './bench-error.js';

/** The process a scenario sends its load to; each is started by the runner. */
/** `baseline`: another build of the gateway (`--baseline DIR`), for before/after comparisons. */
/** `gateway-stats`: this build with `stats: true` and 100,000 revocations in its store. */
/** `gateway-ratelimit`: ratelimit_proxy so high that nothing is refused. */
/** `gateway-refusing`: ratelimit_proxy of one request a day, already spent: every request 429. */
/** `gateway-balanced`: the route balanced over two upstream processes, weights 3 and 1. */
/** `gateway-filters`: the route has `filters` on the method and a header. */
/** `gateway-filters-body`: the route has a `body_json` filter. */
/** `gateway-cors`: `cors_origins` lists {@link BENCH_CORS_ORIGIN}. */
/** `gateway-csrf`: session_cookie with csrf_token (the route checks cookie requests' tokens). */
/** `gateway-login`: ratelimit_auth so high that no login is refused; its load is `POST /auth`. */
/** `haproxy-jwt`, `fastify-jwt`: the peers, verifying an HS256 JWT (bench/haproxy.ts, fastify.ts). */
/** `raw-argon2`: no server: Argon2 verifications on worker threads in the runner (raw-argon2.ts). */
/** `gateway-forward-auth`: trusted_proxies 127.0.0.1, so the load tool may ask /auth/verify. */
/** `gateway-features-on`: ratelimit_proxy (never refusing), stats and the metrics listener, all on. */
/** `gateway-one-edge`: the plain gateway with `num_instances: 1` (every other proxy gets 2). */
/** `floor`: uWS processes relaying to the upstream over bare net.Sockets, no gateway logic. */
export type ServiceName =
  | 'upstream'
  | 'gateway'
  | 'gateway-stats'
  | 'gateway-ratelimit'
  | 'gateway-refusing'
  | 'gateway-balanced'
  | 'gateway-filters'
  | 'gateway-filters-body'
  | 'gateway-cors'
  | 'gateway-csrf'
  | 'gateway-metrics'
  | 'gateway-login'
  | 'gateway-forward-auth'
  | 'gateway-features-on'
  | 'gateway-one-edge'
  | 'nginx'
  | 'haproxy-jwt'
  | 'fastify-jwt'
  | 'floor'
  | 'raw-argon2'
  | 'baseline';

/** What a correct answer looks like; checked before timing and on every run. */
export interface ExpectedAnswer {
  readonly status: number;
  /** Exact body; omitted when only the status matters (error bodies are the gateway's business). */
  readonly body?: string;
  /** Response headers (lower-case names) that must have exactly these values. */
  readonly headers?: Readonly<Record<string, string>>;
  /** A body that differs per request (a CSRF token) must match this whole. */
  readonly bodyPattern?: RegExp;
}

/**
 * One benchmark scenario: a request sent to one service, with a bearer token, with the session
 * cookie plus a CSRF token in X-CSRF-Token and the gateway's own Origin (`cookie-csrf`, what a
 * browser page sends), or with no credential.
 */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly service: ServiceName;
  readonly path: string;
  /** `login`: the request is a login: the service's user and password posted as JSON. */
  readonly auth: 'bearer' | 'cookie-csrf' | 'login' | 'none';
  readonly expect: ExpectedAnswer;
  /** Default GET. */
  readonly method?: 'GET' | 'POST';
  /** What the request does, for the report's ratio columns; default `get` (small GET). */
  readonly shape?: Shape;
  /**
   * Connections of this scenario's load, when it must differ from `--connections`: a login
   * takes milliseconds of Argon2, so 64 waiting logins would outlast wrk's 2 s timeout.
   */
  readonly connections?: number;
  /** Sent besides the bearer header. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/**
 * What a request does, so that the report compares like with like: `get` a small GET, `large`
 * a GET of {@link LARGE_BODY_BYTES}, `post` a 1 KiB POST whose body reaches the upstream,
 * `login` a password check (no proxy has a counterpart: no ratio to them).
 */
export type Shape = 'get' | 'large' | 'post' | 'login';

/** Body the upstream answers on `/hello`. */
export const UPSTREAM_BODY = 'hello';

/** Path the upstream serves; the gateway maps `/api/hello` onto it. */
export const UPSTREAM_PATH = '/hello';

/** Path where the upstream serves a fixed body of {@link LARGE_BODY_BYTES}. */
export const LARGE_PATH = '/large';

/** Size of the upstream's large body: 100 KiB. */
export const LARGE_BODY_BYTES = 100 * 1024;

/** Path where the upstream reads a POST body and answers {@link echoAnswer}. */
export const ECHO_PATH = '/echo';

/**
 * The 100 KiB body: lines of printable text, so that a truncated or reordered body fails the
 * exact comparison before timing.
 */
export function largeBody(): string {
  let text = '';
  for (let i = 0; text.length < LARGE_BODY_BYTES; i++) {
    text += `line ${String(i).padStart(6, '0')} of the bench's large body\n`;
  }
  return text.slice(0, LARGE_BODY_BYTES);
}

/** What the upstream answers on {@link ECHO_PATH}: the byte count it received (proves forwarding). */
export function echoAnswer(bytes: number): string {
  return `received ${bytes} bytes`;
}

/** Prefix of the gateway route written to routes.yml. */
export const GATEWAY_PREFIX = '/api';

/** HTML pages the upstream serves (about 20 KiB), with one CSRF placeholder or none, identity or gzip. */
export const PAGE_PATHS = Object.freeze({
  placeholder: '/page.html',
  plain: '/page-plain.html',
  placeholderGzip: '/page-gzip.html',
  plainGzip: '/page-plain-gzip.html',
} as const);

const PLACEHOLDER = '{{ csrf_token }}';
/** What the plain page has where the other has its placeholder: as many bytes. */
const NO_PLACEHOLDER = 'no placeholder!!';

/**
 * The bench's HTML page: a form with a hidden CSRF field, then table rows up to 20 KiB, the
 * shape of a server-rendered admin page; `placeholder: false` gives the same bytes without it.
 */
export function benchPage(placeholder: boolean): string {
  const head = `<!doctype html><html><head><meta charset="utf-8"><title>Items</title></head><body><form method="post" action="/api/items"><input type="hidden" name="csrf_token" value="${placeholder ? PLACEHOLDER : NO_PLACEHOLDER}"><button>Save</button></form><table>\n`;
  const tail = '</table></body></html>\n';
  let rows = '';
  for (let i = 0; head.length + rows.length + tail.length < 20 * 1024 - 100; i++) {
    rows += `<tr><td>${i}</td><td><a href="/api/items/${i}">Item ${i}</a></td><td>{ status: active }</td></tr>\n`;
  }
  return head + rows + tail;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The placeholder page as the gateway sends it: any 44-character CSRF token in its place. */
const PAGE_WITH_TOKEN = new RegExp(
  `^${escapeRegExp(benchPage(true)).replace(escapeRegExp(PLACEHOLDER), '[A-Za-z0-9_-]{44}')}$`,
);
const GZIP_HEADER: Readonly<Record<string, string>> = { 'accept-encoding': 'gzip' };

const CLIENT_HEADER: Readonly<Record<string, string>> = { 'x-client': 'bench-1' };
const JSON_HEADER: Readonly<Record<string, string>> = { 'content-type': 'application/json' };

/** The origin the `gateway-cors` service lists and its scenario sends. */
export const BENCH_CORS_ORIGIN = 'https://app.bench.test';

/** A 1 KiB JSON object whose `status` is `active` (what the body filter allows). */
function BENCH_JSON_BODY(): string {
  const base = { status: 'active', pad: '' };
  const size = JSON.stringify(base).length;
  return JSON.stringify({ ...base, pad: 'x'.repeat(1024 - size) });
}

/** The body of the POST scenarios of every proxy: 1 KiB of JSON. */
const POST_BODY = BENCH_JSON_BODY();

/** The bench user's token, minted per login: any non-empty token in the JSON answer. */
const LOGIN_ANSWER = /^\{"token":"[^"]+".*\}$/s;

/** The body of the CSRF scenarios: what a small form-like JSON post carries. */
const SMALL_JSON_BODY = JSON.stringify({ title: 'bench', done: false });

/** Concurrent logins of `gateway-login`: 4 per pool thread keeps every thread busy. */
export const LOGIN_CONNECTIONS = 8;

/** Where the gateway's logins go. */
export const LOGIN_PATH = '/auth';

/**
 * The 100 KiB GET and the 1 KiB POST of one proxy (`service`), through `prefix` (the gateway's
 * route prefix, or '' for a plain proxy), with a bearer token or none.
 */
function shapedScenarios(
  service: ServiceName,
  prefix: string,
  auth: 'bearer' | 'none',
  large: string,
  post: string,
  who: string,
): Scenario[] {
  return [
    {
      name: large,
      description: `GET of a 100 KiB body through ${who}`,
      service,
      path: `${prefix}${LARGE_PATH}`,
      auth,
      shape: 'large',
      expect: { status: 200, body: largeBody() },
    },
    {
      name: post,
      description: `1 KiB JSON POST through ${who}: the body reaches the upstream, which answers its size`,
      service,
      path: `${prefix}${ECHO_PATH}`,
      auth,
      shape: 'post',
      method: 'POST',
      headers: JSON_HEADER,
      body: POST_BODY,
      expect: { status: 200, body: echoAnswer(Buffer.byteLength(POST_BODY)) },
    },
  ];
}
/** The forward-auth endpoint; its scenario asks about the request gateway-auth-proxy sends. */
export const FORWARD_AUTH_PATH = '/auth/verify';
const FORWARD_AUTH_HEADERS: Readonly<Record<string, string>> = {
  'x-original-method': 'GET',
  'x-original-uri': `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
};

const FORWARD_AUTH_ALLOWED: ExpectedAnswer = {
  status: 200,
  body: '',
  headers: { 'x-user': 'bench', 'x-proxyauth-status': '200' },
};

/** Scenarios in the order they run within each round. */
export const SCENARIOS: readonly Scenario[] = Object.freeze([
  {
    name: 'upstream-direct',
    description: 'GET straight to the upstream (baseline: the ceiling every scenario shares)',
    service: 'upstream',
    path: UPSTREAM_PATH,
    auth: 'none',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-auth-proxy',
    description: 'authenticated GET through the gateway (token check + proxy)',
    service: 'gateway',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-metrics',
    description:
      'gateway-auth-proxy with the metrics listener on (config metrics): every request counted',
    service: 'gateway-metrics',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-stats-revocations',
    description:
      'gateway-auth-proxy with stats: true and 100,000 revocations in force (none of them ours)',
    service: 'gateway-stats',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-features-on',
    description:
      'gateway-auth-proxy with ratelimit_proxy (as gateway-ratelimit-high), stats: true and the metrics listener, all on',
    service: 'gateway-features-on',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-one-edge',
    description:
      'gateway-auth-proxy on a gateway with num_instances: 1 (one edge; every other proxy gets 2)',
    service: 'gateway-one-edge',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-ratelimit-high',
    description:
      'gateway-auth-proxy with ratelimit_proxy at 1,000,000 rps + 1,000,000 burst: limited, never refused',
    service: 'gateway-ratelimit',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-ratelimit-refusing',
    description:
      'gateway-auth-proxy with ratelimit_proxy at one request a day, spent: every request refused (429)',
    service: 'gateway-refusing',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 429 },
  },
  {
    name: 'gateway-balanced',
    description:
      'gateway-auth-proxy over two weighted backends (3:1, two upstream processes): balancer + health state',
    service: 'gateway-balanced',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-forward-auth',
    description:
      'forward-auth decision: GET /auth/verify with a bearer token and nginx headers naming GET /api/hello (nothing forwarded)',
    service: 'gateway-forward-auth',
    path: FORWARD_AUTH_PATH,
    auth: 'bearer',
    headers: FORWARD_AUTH_HEADERS,
    expect: FORWARD_AUTH_ALLOWED,
  },
  {
    name: 'gateway-filters-head',
    description:
      'gateway-auth-proxy on a route with filters on the method and a header (X-Client), which pass',
    service: 'gateway-filters',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    headers: CLIENT_HEADER,
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-filters-json',
    description:
      'authenticated 1 KiB JSON POST on a route with a body_json filter, which passes (body buffered, checked, forwarded)',
    service: 'gateway-filters-body',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    method: 'POST',
    headers: JSON_HEADER,
    body: BENCH_JSON_BODY(),
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-cors-origin',
    description:
      'gateway-auth-proxy from a listed Origin (cors_origins): Allow-Origin, credentials and Vary added',
    service: 'gateway-cors',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    headers: { origin: BENCH_CORS_ORIGIN },
    expect: {
      status: 200,
      body: UPSTREAM_BODY,
      headers: { 'access-control-allow-origin': BENCH_CORS_ORIGIN, vary: 'Origin' },
    },
  },
  {
    name: 'gateway-csrf-bearer-post',
    description:
      'bearer POST of a small JSON body in session-cookie mode with csrf_token (exempt from the CSRF check)',
    service: 'gateway-csrf',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    method: 'POST',
    headers: JSON_HEADER,
    body: SMALL_JSON_BODY,
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-csrf-cookie-post',
    description:
      'the same POST authenticated by the session cookie, with X-CSRF-Token and Origin (CSRF check: origin, token MAC and expiry)',
    service: 'gateway-csrf',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'cookie-csrf',
    method: 'POST',
    headers: JSON_HEADER,
    body: SMALL_JSON_BODY,
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'gateway-page',
    description:
      'authenticated GET of the 20 KiB HTML page without a placeholder, CSRF off (plain gateway)',
    service: 'gateway',
    path: `${GATEWAY_PREFIX}${PAGE_PATHS.plain}`,
    auth: 'bearer',
    expect: { status: 200, body: benchPage(false) },
  },
  {
    name: 'gateway-csrf-page-plain',
    description:
      'cookie-authenticated GET of the 20 KiB HTML page without a placeholder, CSRF on (scanned, chunked)',
    service: 'gateway-csrf',
    path: `${GATEWAY_PREFIX}${PAGE_PATHS.plain}`,
    auth: 'cookie-csrf',
    expect: { status: 200, body: benchPage(false) },
  },
  {
    name: 'gateway-csrf-page',
    description:
      'cookie-authenticated GET of the 20 KiB HTML page with one placeholder, replaced by a token',
    service: 'gateway-csrf',
    path: `${GATEWAY_PREFIX}${PAGE_PATHS.placeholder}`,
    auth: 'cookie-csrf',
    expect: { status: 200, bodyPattern: PAGE_WITH_TOKEN },
  },
  {
    name: 'gateway-csrf-page-plain-gzip',
    description: 'gateway-csrf-page-plain with a gzip body (decoded, scanned, encoded again)',
    service: 'gateway-csrf',
    path: `${GATEWAY_PREFIX}${PAGE_PATHS.plainGzip}`,
    auth: 'cookie-csrf',
    headers: GZIP_HEADER,
    expect: { status: 200, body: benchPage(false) },
  },
  {
    name: 'gateway-csrf-page-gzip',
    description: 'gateway-csrf-page with a gzip body (decoded, replaced, encoded again)',
    service: 'gateway-csrf',
    path: `${GATEWAY_PREFIX}${PAGE_PATHS.placeholderGzip}`,
    auth: 'cookie-csrf',
    headers: GZIP_HEADER,
    expect: { status: 200, bodyPattern: PAGE_WITH_TOKEN },
  },
  {
    name: 'nginx-proxy',
    description: 'nginx as a plain reverse proxy (no auth), keep-alive pool to the upstream',
    service: 'nginx',
    path: UPSTREAM_PATH,
    auth: 'none',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  ...shapedScenarios(
    'upstream',
    '',
    'none',
    'upstream-large',
    'upstream-post',
    'the upstream, direct',
  ),
  ...shapedScenarios(
    'gateway',
    GATEWAY_PREFIX,
    'bearer',
    'gateway-large',
    'gateway-post',
    'the gateway, with a token',
  ),
  ...shapedScenarios('nginx', '', 'none', 'nginx-large', 'nginx-post', 'nginx (no auth)'),
  {
    name: 'haproxy-jwt-auth-proxy',
    description:
      'HAProxy verifying an HS256 JWT (alg, signature, exp) with a stick-table rate limit, GET',
    service: 'haproxy-jwt',
    path: UPSTREAM_PATH,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  ...shapedScenarios(
    'haproxy-jwt',
    '',
    'bearer',
    'haproxy-jwt-large',
    'haproxy-jwt-post',
    'HAProxy with a JWT',
  ),
  {
    name: 'fastify-jwt-auth-proxy',
    description:
      'fastify + @fastify/http-proxy + jose verifying an HS256 JWT, one process per core, GET',
    service: 'fastify-jwt',
    path: UPSTREAM_PATH,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  ...shapedScenarios(
    'fastify-jwt',
    '',
    'bearer',
    'fastify-jwt-large',
    'fastify-jwt-post',
    'fastify with a JWT',
  ),
  {
    name: 'floor-proxy',
    description:
      "the design's floor: uWS processes relaying to the upstream over keep-alive net.Sockets, no gateway logic (token sent, ignored), GET",
    service: 'floor',
    path: UPSTREAM_PATH,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  ...shapedScenarios(
    'floor',
    '',
    'bearer',
    'floor-large',
    'floor-post',
    "the design's floor (uWS + a bare net client)",
  ),
  {
    name: 'gateway-login',
    description: `POST ${LOGIN_PATH} with the bench user's password (Argon2id verify in the crypto pool, token issued)`,
    service: 'gateway-login',
    path: LOGIN_PATH,
    auth: 'login',
    shape: 'login',
    connections: LOGIN_CONNECTIONS,
    method: 'POST',
    expect: { status: 200, bodyPattern: LOGIN_ANSWER },
  },
  {
    name: 'raw-argon2',
    description:
      "Argon2id verifications of the login's hash on worker threads, one per core, no gateway (verifications/s)",
    service: 'raw-argon2',
    path: '',
    auth: 'none',
    shape: 'login',
    expect: { status: 200 },
  },
  {
    name: 'gateway-no-token',
    description: 'same gateway route without a token: the cost of a rejection (401)',
    service: 'gateway',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'none',
    expect: { status: 401 },
  },
  {
    name: 'baseline-auth-proxy',
    description: 'gateway-auth-proxy against the --baseline build',
    service: 'baseline',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'bearer',
    expect: { status: 200, body: UPSTREAM_BODY },
  },
  {
    name: 'baseline-no-token',
    description: 'gateway-no-token against the --baseline build',
    service: 'baseline',
    path: `${GATEWAY_PREFIX}${UPSTREAM_PATH}`,
    auth: 'none',
    expect: { status: 401 },
  },
  // gateway-large and gateway-post against the --baseline build.
  ...shapedScenarios(
    'baseline',
    GATEWAY_PREFIX,
    'bearer',
    'baseline-large',
    'baseline-post',
    'the --baseline build',
  ),
] satisfies Scenario[]);

/** Scenarios of the `--baseline` build; each mirrors the `gateway-` scenario of the same suffix. */
export const BASELINE_PREFIX = 'baseline-';

/** Revocations in the store of the `gateway-stats` service. */
export const BENCH_REVOCATIONS = 100_000;

/** [scenario with features on, the plain scenario it extends]: the report pairs them by round. */
export const FEATURE_PAIRS: readonly (readonly [string, string])[] = Object.freeze([
  ['gateway-metrics', 'gateway-auth-proxy'] as const,
  ['gateway-features-on', 'gateway-auth-proxy'] as const,
  ['gateway-stats-revocations', 'gateway-auth-proxy'] as const,
  ['gateway-ratelimit-high', 'gateway-auth-proxy'] as const,
  ['gateway-ratelimit-refusing', 'gateway-auth-proxy'] as const,
  ['gateway-balanced', 'gateway-auth-proxy'] as const,
  ['gateway-filters-head', 'gateway-auth-proxy'] as const,
  ['gateway-filters-json', 'gateway-auth-proxy'] as const,
  ['gateway-cors-origin', 'gateway-auth-proxy'] as const,
  ['gateway-forward-auth', 'gateway-auth-proxy'] as const,
  ['gateway-csrf-cookie-post', 'gateway-csrf-bearer-post'] as const,
  ['gateway-csrf-page', 'gateway-csrf-page-plain'] as const,
  ['gateway-csrf-page-plain', 'gateway-page'] as const,
  ['gateway-csrf-page-gzip', 'gateway-csrf-page-plain-gzip'] as const,
  ['gateway-csrf-page-plain-gzip', 'gateway-csrf-page-plain'] as const,
]);

/**
 * [one edge, the plain scenario on two edges]: the report pairs them by round, req/s and CPU
 * per request (issue 13: how throughput scales with edges on this machine).
 */
export const EDGE_PAIRS: readonly (readonly [string, string])[] = Object.freeze([
  ['gateway-one-edge', 'gateway-auth-proxy'] as const,
]);

/** `num_instances` of the `gateway-one-edge` service. */
export const ONE_EDGE_INSTANCES = 1;

/** Weights of the `gateway-balanced` route: the first upstream (also `target`), then the second. */
export const BENCH_BACKEND_WEIGHTS = Object.freeze([3, 1] as const);

/** ratelimit_proxy of the `gateway-ratelimit` service: nothing is ever refused. */
export const BENCH_HIGH_LIMIT = Object.freeze({
  requests_per_second: 1_000_000,
  burst: 1_000_000,
  block_delay: 0,
});

/** ratelimit_proxy of the `gateway-refusing` service: one request a day, spent at start. */
export const BENCH_REFUSING_LIMIT = Object.freeze({
  requests_per_second: 1 / 86_400,
  burst: 0,
  block_delay: 0,
});

/** The families the report's ratio columns compare every scenario with. */
export type ReferenceFamily = 'nginx' | 'haproxy' | 'upstream';

/**
 * The reference scenario of each family for each {@link Shape}: a scenario's ratio to nginx is
 * its req/s over that of the nginx scenario of the same shape, paired by round.
 */
export const REFERENCES: Readonly<
  Record<ReferenceFamily, Readonly<Partial<Record<Shape, string>>>>
> = Object.freeze({
  nginx: { get: 'nginx-proxy', large: 'nginx-large', post: 'nginx-post' },
  haproxy: { get: 'haproxy-jwt-auth-proxy', large: 'haproxy-jwt-large', post: 'haproxy-jwt-post' },
  upstream: { get: 'upstream-direct', large: 'upstream-large', post: 'upstream-post' },
});

/** [login through the gateway, raw Argon2 in the runner]: the report pairs them by round. */
export const LOGIN_PAIRS: readonly (readonly [string, string])[] = Object.freeze([
  ['gateway-login', 'raw-argon2'] as const,
]);

/**
 * Picks scenarios by name, keeping the order of {@link SCENARIOS}.
 * An empty filter selects all; an unknown name throws with code `BENCH_UNKNOWN_SCENARIO`.
 */
export function selectScenarios(
  names: readonly string[],
  all: readonly Scenario[] = SCENARIOS,
  withBaseline = false,
): Scenario[] {
  if (names.length === 0) return all.filter((s) => withBaseline || s.service !== 'baseline');
  const known = new Set(all.map((s) => s.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new BenchError(
      'BENCH_UNKNOWN_SCENARIO',
      `unknown scenario(s): ${unknown.join(', ')} (known: ${[...known].join(', ')})`,
    );
  }
  const wanted = new Set(names);
  return all.filter((s) => wanted.has(s.name));
}

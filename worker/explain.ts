/*
 * `proxyauth explain`: one request run through the edge's own code, on the config and store an
 * edge would load, with nothing sent anywhere. The same dispatcher (dispatch.ts runRequest:
 * request checks, CORS, canonical path, gateway endpoints, route table, fold check, the route's
 * steps) answers a synthetic exchange (explain-exchange.ts), so a refusal is the status, code
 * and body an edge would send. What differs is only what would leave the process: the route's
 * handler records the upstream request instead of sending it, gateway endpoints record that
 * they were reached instead of running, the rate limiter admits without spending, and a
 * single-use CSRF token is not spent (explain-services.ts).
 */

import type { LoadedConfig } from '../conf/load.js';
import { CodedError } from '../shared/coded-error.js';
import type { ExplainSpec } from '../shared/explain-spec.js';
import type { ConfigSnapshot } from '../shared/ipc.js';
import { mayFold } from '../shared/path-fold.js';
import type { Store } from '../shared/store.js';
import { canonicalizePath } from './canonical-path.js';
import { openContext, runRequest } from './dispatch.js';
import type { Endpoint } from './endpoints.js';
import { type RecordedAnswer, RecordingResponse, SyntheticRequest } from './explain-exchange.js';
import { describeRoutes, notConsidered, type RouteVerdict } from './explain-routes.js';
import { type ExplainServices, explainServices, keyRingInForce } from './explain-services.js';
import { type StepRecord, StepTracer, traceFeatures } from './explain-trace.js';
import type { Handler } from './pipeline.js';
import { upstreamHeadersOf } from './proxy-handler.js';
import { compilePolicy } from './rate-limiter.js';
import type { RequestContext } from './request-context.js';
import { loginIssuedAt, type RevocationSet } from './revocation-set.js';
import { ROUTE_FEATURES } from './route-features.js';
import { Runtime } from './runtime.js';
import { upstreamPathFor } from './upstream-url.js';
import { header, openExchange, type UpgradeContext } from './uws-io.js';

export type ExplainErrorCode = 'EXPLAIN_UNKNOWN_USER';

/** An explain request that cannot be run as asked (exit status 1). */
export class ExplainError extends CodedError<ExplainErrorCode> {}

/** Where the request would go upstream; nothing is sent. */
export interface UpstreamPlan {
  readonly method: string;
  /** The URL of the route's target (no balancer) or of the member a fresh edge picks first. */
  readonly url: string;
  /** Every member with its weight (-1: backup), when the route has a balancer. */
  readonly backends: readonly { readonly url: string; readonly weight: number }[] | undefined;
  readonly websocket: boolean;
  /** The headers the upstream request carries, values of credentials and cookies withheld. */
  readonly headers: readonly (readonly [string, string])[];
}

/** The credential explain put on the request. */
export interface CredentialReport {
  readonly kind: 'user' | 'token' | 'none';
  readonly user: string | undefined;
  /** The token's public id (never the token). */
  readonly tokenId: string | undefined;
  /** `valid`, or why the edge's codec refuses it: malformed, bad_mac, unknown_key, expired... */
  readonly token: string | undefined;
  /** A revocation in force refuses it (the node's store). */
  readonly revoked: boolean | undefined;
}

/** Everything explain found out; `--json` prints it as is. */
export interface Explanation {
  readonly request: {
    readonly method: string;
    readonly target: string;
    readonly host: string | undefined;
    readonly clientIp: string;
    readonly bodyBytes: number;
  };
  readonly credential: CredentialReport;
  /** null: the path cannot be canonicalized (400 BAD_PATH). */
  readonly canonicalPath: string | null;
  /** The gateway endpoint that took the request (`/auth`, `/adm/...`), if one did. */
  readonly endpoint: string | undefined;
  readonly routes: readonly RouteVerdict[];
  /** The route the table matched, if any. */
  readonly route: string | undefined;
  readonly foldCheck: 'passed' | 'refused' | 'nothing to fold' | 'not reached';
  /** The route's steps, in order, with their verdicts (features without a step are left out). */
  readonly steps: readonly StepRecord[];
  readonly rateLimit:
    | {
        readonly policy: string;
        readonly requestsPerSecond: number;
        readonly burst: number;
        readonly blockDelayMs: number;
        /** The budget the request was counted against (`u:NAME` or `i:ADDRESS`). */
        readonly key: string;
      }
    | undefined;
  readonly upstream: UpstreamPlan | undefined;
  readonly answer: {
    /** `forwarded`: sent upstream (the upstream answers); `answered`: the gateway answered. */
    readonly outcome: 'forwarded' | 'answered' | 'gateway endpoint';
    /** The gateway's status (undefined when forwarded, or left to an endpoint). */
    readonly status: number | undefined;
    readonly code: string | undefined;
    readonly headers: readonly (readonly [string, string])[];
    readonly body: string;
    /** The connection would be closed after the answer. */
    readonly closes: boolean;
  };
  /** What the edge's code logged, and what explain did not do that a live request would. */
  readonly notes: readonly string[];
}

/** What explain needs: the request, the loaded config dir, the store opened read-only. */
export interface ExplainInput {
  readonly spec: ExplainSpec;
  readonly loaded: LoadedConfig;
  readonly store: Store;
  readonly nowSeconds: number;
}

interface Outcome {
  upstream: UpstreamPlan | undefined;
  endpoint: string | undefined;
}

/** Header values never printed back: credentials and cookies. */
const WITHHELD = new Set(['authorization', 'proxy-authorization', 'cookie']);

function plan(ctx: RequestContext, websocket: boolean): UpstreamPlan {
  const route = ctx.route!;
  const balancer = route.balancer;
  const backends = balancer?.members.map((m) => ({
    url: `${m.origin}${upstreamPathFor(ctx, m)}`,
    weight: m.weight,
  }));
  // A fresh balancer's first pick: what a new edge sends this request to.
  const first = balancer?.pick();
  const to = first ?? route;
  const flat = upstreamHeadersOf(ctx);
  const headers: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    const value = flat[i + 1]!;
    headers.push([name, WITHHELD.has(name) ? `(${value.length} characters, not shown)` : value]);
  }
  return {
    method: ctx.ex.method,
    url: `${first?.origin ?? route.origin}${upstreamPathFor(ctx, to)}`,
    backends,
    websocket,
    headers,
  };
}

/** An endpoint whose handlers record that they were reached (405 for other methods stays). */
function recordingEndpoint(endpoint: Endpoint, outcome: Outcome): Endpoint {
  const reached: Handler = () => {
    outcome.endpoint = endpoint.path;
    return undefined;
  };
  return {
    ...endpoint,
    methods: new Map([...endpoint.methods.keys()].map((m) => [m, reached])),
    steps: [],
  };
}

/** The Authorization or Cookie header carrying the credential, and what explain says of it. */
function credentialOf(
  spec: ExplainSpec,
  rt: Runtime,
  revocations: RevocationSet,
  now: number,
  viaCookie: boolean,
): { header: [string, string] | undefined; report: CredentialReport } {
  const c = spec.credential;
  if (c === undefined) {
    return {
      header: undefined,
      report: {
        kind: 'none',
        user: undefined,
        tokenId: undefined,
        token: undefined,
        revoked: undefined,
      },
    };
  }
  let token: string;
  if (c.kind === 'user') {
    if (!rt.users.has(c.user)) {
      throw new ExplainError(
        'EXPLAIN_UNKNOWN_USER',
        `--user: no user ${JSON.stringify(c.user)} in config.json`,
      );
    }
    // As POST /auth issues it (auth-handler.ts), in memory only: never printed or recorded.
    const iat = loginIssuedAt(revocations.notBeforeOf(c.user), now);
    token = rt.codec.issue(c.user, rt.config.token_expiry_seconds, iat).token;
  } else token = c.token;
  const header: [string, string] = viaCookie
    ? ['cookie', `session_token=${token}`]
    : ['authorization', `Bearer ${token}`];
  const result = rt.codec.verify(token, now);
  if (!result.ok) {
    return {
      header,
      report: {
        kind: c.kind,
        user: undefined,
        tokenId: undefined,
        token: result.reason,
        revoked: undefined,
      },
    };
  }
  const { claims } = result;
  const tokenId = rt.codec.tokenId(claims);
  return {
    header,
    report: {
      kind: c.kind,
      user: claims.sub,
      tokenId,
      token: 'valid',
      revoked: revocations.revokes({ tokenId, user: claims.sub, iat: claims.iat }, now),
    },
  };
}

/** The request's header lines: Host (unless given), the given ones, the credential, the length. */
function headerLines(
  spec: ExplainSpec,
  credential: [string, string] | undefined,
  body: Buffer | undefined,
): [string, string][] {
  const given = spec.headers.map(([k, v]) => [k, v] as [string, string]);
  const has = (name: string) => given.some(([k]) => k.toLowerCase() === name);
  const lines: [string, string][] = [];
  if (!has('host')) lines.push(['host', 'localhost']);
  lines.push(...given);
  if (credential !== undefined) lines.push(credential);
  if (body !== undefined && !has('content-length') && !has('transfer-encoding')) {
    lines.push(['content-length', String(body.byteLength)]);
  }
  return lines;
}

/** uWS hands a GET with `Upgrade: websocket` and a key to the WebSocket route (uws-io.ts). */
function isHandshake(method: string, headers: readonly (readonly [string, string])[]): boolean {
  const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
  return (
    method.toUpperCase() === 'GET' &&
    get('upgrade')?.toLowerCase() === 'websocket' &&
    get('sec-websocket-key') !== undefined
  );
}

/** uWS's socket context is opaque to the edge; explain never accepts an upgrade on it. */
const HANDSHAKE: UpgradeContext = {};

/** Runs the request through the edge's code and reports what it did. */
export async function explain(input: ExplainInput): Promise<Explanation> {
  const { spec, loaded, store } = input;
  const now = input.nowSeconds;
  const held = explainServices(store, now);
  try {
    const tracer = new StepTracer();
    const outcome: Outcome = { upstream: undefined, endpoint: undefined };
    const snapshot: ConfigSnapshot = {
      generation: 1,
      configDir: spec.configDir,
      dataDir: spec.dataDir,
      files: loaded.files,
      raw: loaded.raw,
      routeFiles: loaded.routeFiles,
      ...(loaded.loginPage === undefined ? {} : { loginPage: loaded.loginPage }),
      keyRing: keyRingInForce(store, loaded.config, now),
    };
    const rt = await Runtime.build(snapshot, held.services, undefined, {
      features: traceFeatures(ROUTE_FEATURES, tracer),
      handler: (ctx) => {
        outcome.upstream = plan(ctx, false);
        return undefined;
      },
      upgrade: (ctx) => {
        outcome.upstream = plan(ctx, true);
        return undefined;
      },
      endpoint: (e) => recordingEndpoint(e, outcome),
    });
    const revocations = held.services.revocations;
    const credential = credentialOf(spec, rt, revocations, now, spec.viaCookie);
    const body = spec.body === undefined ? undefined : Buffer.from(spec.body, 'base64');
    const lines = headerLines(spec, credential.header, body);
    const res = new RecordingResponse(spec.ip, body);
    const ex = openExchange(res, new SyntheticRequest(spec.method, spec.target, lines));
    const handshake = isHandshake(spec.method, lines);
    const ctx = openContext(rt, held.services, ex, handshake ? HANDSHAKE : undefined);
    await runRequest(ctx);
    return report({
      ctx,
      prefixes: loaded.routes.map((r) => r.prefix),
      tracer,
      outcome,
      credential: credential.report,
      held,
      answer: res.answer(),
    });
  } finally {
    await held.close();
  }
}

interface Findings {
  readonly ctx: RequestContext;
  readonly prefixes: readonly string[];
  readonly tracer: StepTracer;
  readonly outcome: Outcome;
  readonly credential: CredentialReport;
  readonly held: ExplainServices;
  readonly answer: RecordedAnswer;
}

function routesOf(f: Findings, canonical: string | null, endpoint: string | undefined) {
  const { ctx, prefixes } = f;
  const routed =
    ctx.route !== undefined ||
    ctx.code === 'NO_ROUTE' ||
    (ctx.code === 'BAD_PATH' && ctx.path !== '');
  if (canonical !== null && endpoint === undefined && routed) {
    return describeRoutes(prefixes, canonical, ctx.rt.routes.match(canonical)?.route.prefix);
  }
  const why =
    endpoint !== undefined
      ? `the gateway answers ${endpoint} itself`
      : ctx.code !== undefined
        ? `refused before routing (${ctx.code})`
        : 'answered by the gateway before routing (CORS preflight)';
  return notConsidered(prefixes, why);
}

function foldCheckOf(ctx: RequestContext): Explanation['foldCheck'] {
  if (ctx.route !== undefined) return mayFold(ctx.path) ? 'passed' : 'nothing to fold';
  if (ctx.code === 'BAD_PATH' && ctx.path !== '' && ctx.rt.routes.match(ctx.path) !== null) {
    return 'refused';
  }
  return 'not reached';
}

function rateLimitOf(f: Findings): Explanation['rateLimit'] {
  const asked = f.held.limiter.asked[0];
  const route = f.ctx.route;
  const policy =
    asked?.policy ??
    (route === undefined
      ? undefined
      : route.config.ratelimit === undefined
        ? compilePolicy('proxy', f.ctx.rt.config.ratelimit_proxy)
        : compilePolicy('route', route.config.ratelimit, route.prefix));
  if (policy === undefined) return undefined;
  return {
    policy: policy.name,
    requestsPerSecond: policy.rps,
    burst: policy.burst,
    blockDelayMs: policy.blockMs,
    key: asked?.client ?? '(not reached)',
  };
}

function notesOf(f: Findings, endpoint: string | undefined): string[] {
  // Found in review: "I added the route, why 404?" is the question explain is asked most.
  const notes: string[] = [
    'explained with config.json and routes.yml as they are on disk now, which the next start or reload runs; a running gateway that has not reloaded since they changed runs an older generation',
  ];
  if (f.credential.kind === 'user') {
    notes.push(
      `a token was minted in memory for ${f.credential.user} with the active key, as POST /auth would; it is neither recorded nor printed`,
    );
  }
  for (const line of f.held.log.lines) {
    const reason = line.fields?.reason;
    notes.push(
      `the edge logged (${line.level}): ${line.msg}${reason === undefined ? '' : `: ${reason}`}`,
    );
  }
  if (f.held.limiter.asked.length > 0) {
    notes.push(
      'rate limit: a live request spends one token of this budget; explain spent none and cannot see the bucket (it lives in the running supervisor), so it cannot tell whether a live request would get 429',
    );
  }
  if (f.held.csrfSpends.count > 0) {
    notes.push(
      'csrf_single_use: a live request spends this CSRF token; explain did not, and cannot tell whether it was spent already',
    );
  }
  if (f.outcome.upstream?.backends !== undefined) {
    notes.push(
      'the route balances: each edge picks on its own (smooth weighted round robin, health per edge); the URL shown is what a fresh edge picks first',
    );
  }
  if (endpoint !== undefined && f.outcome.endpoint !== undefined) {
    notes.push(
      `${endpoint} is a gateway endpoint: explain stops there and does not run its own checks (admin token, rate limit, lockout, password)`,
    );
  }
  return notes;
}

function report(f: Findings): Explanation {
  const { ctx, answer, outcome } = f;
  const ex = ctx.ex;
  const canonical = ctx.path !== '' ? ctx.path : canonicalizePath(ex.url);
  const endpoint =
    outcome.endpoint ??
    (ctx.route === undefined && ctx.code !== 'NO_ROUTE' ? ctx.logRoute : undefined);
  const status = Number.parseInt(answer.statusLine, 10);
  return {
    request: {
      method: ex.method,
      target: ex.query === '' ? ex.url : `${ex.url}?${ex.query}`,
      host: ex.host,
      clientIp: ctx.clientIp,
      bodyBytes: Number(header(ex, 'content-length') ?? 0) || 0,
    },
    credential: f.credential,
    canonicalPath: canonical,
    endpoint,
    routes: routesOf(f, canonical, endpoint),
    route: ctx.route?.prefix,
    foldCheck: foldCheckOf(ctx),
    steps: ctx.route === undefined ? [] : f.tracer.stepsOf(ctx.route.prefix),
    rateLimit: rateLimitOf(f),
    upstream: outcome.upstream,
    answer: {
      outcome:
        outcome.upstream !== undefined
          ? 'forwarded'
          : outcome.endpoint !== undefined
            ? 'gateway endpoint'
            : 'answered',
      status: Number.isNaN(status) ? undefined : status,
      code: ctx.code,
      headers: answer.headers,
      body: answer.body,
      closes: answer.closed,
    },
    notes: notesOf(f, endpoint),
  };
}

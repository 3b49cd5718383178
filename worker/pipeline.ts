/*
 * The request pipeline. At config load each route compiles the ordered steps it needs: every
 * feature (worker/steps/) looks at the route's config and adds its steps, or nothing when the
 * route does not use it, so a feature that is off costs nothing per request. At request time the
 * steps run in order over one RequestContext; a step refuses by throwing a GatewayError, which
 * is answered synchronously by dispatch.ts (measured: a rejected promise per refusal cost more
 * than the rest of the refusal path); a step may also wait (see Step). The route's handler
 * (forwarding) runs last.
 */

import type { Config } from '../conf/config-schema.js';
import type { RouteConfig } from '../conf/routes-schema.js';
import type { RequestContext } from './request-context.js';
import { holdBody } from './uws-io.js';

/**
 * One check or transformation of a request; throws GatewayError to refuse it. A step that must
 * wait (the rate limiter asking the supervisor for tokens) returns a promise, and the steps
 * after it run once it resolves; a rejection refuses the request. Most steps return nothing.
 */
export type Step = (ctx: RequestContext) => Promise<void> | undefined | void;

/**
 * What ends a request that passed its steps: forwarding, or a gateway endpoint. Returns a
 * promise that settles when the answer is complete, or undefined when it answered at once.
 */
export type Handler = (ctx: RequestContext) => Promise<void> | undefined;

/** The upstream response headers as undici gives them: lower-case names, one object per response. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/**
 * Where a response body transform sends its output: the relay (upstream-relay.ts), which writes
 * it to the client. Output may come synchronously from `push` or later (zlib runs off the event
 * loop); the head goes out with the first bytes, or with `end`.
 */
export interface BodySink {
  /**
   * Sends bytes to the client (pieces in order, in one socket write); false when its socket is
   * full: produce no more until `drained`.
   */
  write(chunk: Buffer | readonly Buffer[]): boolean;
  /** The transformed body is complete. */
  end(): void;
  /** Upstream reading may go on again (after `push` returned false). */
  ready(): void;
  /**
   * The body cannot be transformed: a corrupt compressed body (the response is abandoned: 502
   * before anything was sent), or a GatewayError of the transform's own (OVERLOADED), answered as is.
   */
  fail(cause: Error): void;
}

/**
 * A streaming transform of proxied response bodies (CSRF placeholders in HTML), one instance per
 * response. When `start` accepts a response, its Content-Length is dropped (the body goes out
 * chunked) and every upstream chunk passes through `push`. Backpressure both ways: `push`
 * returning false pauses the upstream until the transform calls `sink.ready()`, and a full
 * client (`sink.write` false) is reported back by `drained`.
 */
export interface ResponseBodyTransform {
  /**
   * Whether to transform this response (by status and upstream headers), editing `headers` to
   * describe the body it will send; false leaves the response as is. Also called for a HEAD
   * answer, whose head must say what GET's would (its body is then never pushed).
   */
  start(status: number, headers: ResponseHeaders): boolean;
  /** An upstream chunk; false asks the relay to stop reading until `sink.ready()`. */
  push(chunk: Buffer): boolean;
  /** The upstream body ended: finish with `sink.end()` (or `sink.fail`). */
  end(): void;
  /** The client can take more after `sink.write` returned false. */
  drained(): void;
  /** The exchange is over early (client gone, upstream failed): release everything, call nothing. */
  destroy(): void;
}

/** Makes a request's transform: `sink` receives its output; `ctx` is the request (its session). */
export type TransformFactory = (ctx: RequestContext, sink: BodySink) => ResponseBodyTransform;

/**
 * Edits a proxied response's head (status, upstream headers as undici gives them) before it is
 * written: runs on every upstream answer of the route, HEAD and bodiless ones included, before
 * the body transform's `start`.
 */
export type HeadEdit = (status: number, headers: ResponseHeaders) => void;

/** What a feature may add to a route being compiled. */
export interface RouteBuilder {
  readonly route: RouteConfig;
  readonly config: Config;
  /** Appends a step; steps run in the order features add them. */
  step(step: Step): void;
  /** Sets the route's response body transform (one per route). */
  transformResponses(factory: TransformFactory): void;
  /** Adds an edit of the route's upstream response heads; edits run in the order added. */
  editResponseHeads(edit: HeadEdit): void;
}

/** A per-request behaviour of proxied routes: its compile function adds what the route needs. */
export interface RouteFeature {
  readonly name: string;
  compile(build: RouteBuilder): void;
}

/** The steps and transform of one route, in feature order. */
export interface RoutePipeline {
  readonly steps: readonly Step[];
  readonly transform: TransformFactory | undefined;
  /** The features' head edits as one function; undefined when none (nothing runs). */
  readonly headEdit: HeadEdit | undefined;
}

/** Runs every feature's compile over `route`. Throws if two features set a transform. */
export function compileRoutePipeline(
  route: RouteConfig,
  config: Config,
  features: readonly RouteFeature[],
): RoutePipeline {
  const steps: Step[] = [];
  const edits: HeadEdit[] = [];
  let transform: TransformFactory | undefined;
  let owner = '';
  for (const feature of features) {
    feature.compile({
      route,
      config,
      step: (step) => steps.push(step),
      transformResponses: (factory) => {
        if (transform !== undefined) {
          throw new Error(`${feature.name}: route ${route.prefix} already transformed by ${owner}`);
        }
        transform = factory;
        owner = feature.name;
      },
      editResponseHeads: (edit) => edits.push(edit),
    });
  }
  return { steps, transform, headEdit: combine(edits) };
}

function combine(edits: readonly HeadEdit[]): HeadEdit | undefined {
  if (edits.length <= 1) return edits[0];
  return (status, headers) => {
    for (const edit of edits) edit(status, headers);
  };
}

/**
 * Runs a route's steps from `from`; undefined when all ran at once, else a promise of the rest
 * (kept apart so that the loop stays small and monomorphic).
 */
export function runSteps(
  steps: readonly Step[],
  ctx: RequestContext,
  from = 0,
): Promise<void> | undefined {
  for (let i = from; i < steps.length; i++) {
    const wait = steps[i]!(ctx);
    if (wait !== undefined) {
      // The body must not be lost while the request waits (uws-io.ts holdBody).
      holdBody(ctx.ex);
      return wait.then(() => (ctx.ex.done ? undefined : runSteps(steps, ctx, i + 1)));
    }
  }
  return undefined;
}

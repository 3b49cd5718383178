/*
 * Per-step verdicts for `proxyauth explain`, without touching the edge's request path: explain
 * compiles its runtime with every route feature wrapped, so that each step a feature adds is
 * recorded (which feature, in which order) and, when it runs, traced (passed, refused with the
 * error's code, or waited). The step functions inside are the edge's own; an edge compiles the
 * unwrapped features (runtime.ts) and pays nothing for this.
 */

import { type ErrorCode, GatewayError } from '../shared/errors.js';
import type { RouteFeature, Step } from './pipeline.js';

/** One step of a route, as compiled, and what it did to the explained request. */
export interface StepRecord {
  /** The feature that added it (worker/route-features.ts names). */
  readonly feature: string;
  /**
   * `not reached`: an earlier step refused; `passed`; `passed after waiting` (it returned a
   * promise that resolved); `refused`.
   */
  verdict: 'not reached' | 'passed' | 'passed after waiting' | 'refused';
  code?: ErrorCode | 'INTERNAL';
  /** The refusal's detail as the client reads it. */
  detail?: string;
  /** What the refusal's rule was, for the operator (GatewayError.reason, never sent). */
  reason?: string;
}

/** The records of the routes compiled with {@link traceFeatures}, by route prefix. */
export class StepTracer {
  readonly #byRoute = new Map<string, StepRecord[]>();

  /** The steps of the route at `prefix`, in order, with their verdicts so far. */
  stepsOf(prefix: string): readonly StepRecord[] {
    return this.#byRoute.get(prefix) ?? [];
  }

  /** Called at compile time: a step `feature` added to the route at `prefix`. */
  add(prefix: string, feature: string): StepRecord {
    const record: StepRecord = { feature, verdict: 'not reached' };
    let list = this.#byRoute.get(prefix);
    if (list === undefined) {
      list = [];
      this.#byRoute.set(prefix, list);
    }
    list.push(record);
    return record;
  }
}

function refused(record: StepRecord, err: unknown): void {
  record.verdict = 'refused';
  if (err instanceof GatewayError) {
    record.code = err.code;
    if (err.detail !== undefined) record.detail = err.detail;
    if (err.reason !== undefined) record.reason = err.reason;
  } else record.code = 'INTERNAL';
}

/** `step`, recording its verdict in `record` each time it runs. */
export function tracedStep(step: Step, record: StepRecord): Step {
  return (ctx) => {
    let wait: ReturnType<Step>;
    try {
      wait = step(ctx);
    } catch (err) {
      refused(record, err);
      throw err;
    }
    if (wait === undefined) {
      record.verdict = 'passed';
      return undefined;
    }
    return wait.then(
      () => {
        record.verdict = 'passed after waiting';
      },
      (err: unknown) => {
        refused(record, err);
        throw err;
      },
    );
  };
}

/** `features`, each adding its own steps wrapped by {@link tracedStep} and recorded in `tracer`. */
export function traceFeatures(
  features: readonly RouteFeature[],
  tracer: StepTracer,
): RouteFeature[] {
  return features.map((feature) => ({
    name: feature.name,
    compile(build) {
      feature.compile({
        route: build.route,
        config: build.config,
        step: (step) => build.step(tracedStep(step, tracer.add(build.route.prefix, feature.name))),
        transformResponses: (factory) => build.transformResponses(factory),
        editResponseHeads: (edit) => build.editResponseHeads(edit),
      });
    },
  }));
}

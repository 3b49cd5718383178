// Which scenario `--profile DIR` and `--instructions` run, and how its gateway service is
// started: any scenario whose service is one of this build's gateways (the plain one, a featured
// one, the balanced one).

import { BenchError } from './bench-error.js';
import type { GatewayFeatures } from './gateway.js';
import { FEATURED_GATEWAYS } from './gateway-services.js';
import { SCENARIOS, type Scenario, type ServiceName } from './scenarios.js';

/** The scenario `--profile` and `--instructions` run without `--scenarios`. */
export const PROFILE_SCENARIO = 'gateway-auth-proxy';

/** How the profiled gateway service is started (as the comparison run starts it). */
export interface ProfiledGateway {
  readonly service: ServiceName & ('gateway' | 'gateway-balanced' | FeaturedService);
  readonly features: GatewayFeatures;
  /** `num_instances`; default the runner's processes per proxy. */
  readonly instances?: number | undefined;
  /** The route is balanced over the upstream and a second one the run starts. */
  readonly balanced: boolean;
}

type FeaturedService = (typeof FEATURED_GATEWAYS)[number]['service'];

/** The gateway service `service` names, or undefined when it is no gateway of this build. */
export function profiledGatewayOf(service: ServiceName): ProfiledGateway | undefined {
  if (service === 'gateway') return { service, features: {}, balanced: false };
  if (service === 'gateway-balanced') return { service, features: {}, balanced: true };
  const featured = FEATURED_GATEWAYS.find((g) => g.service === service);
  if (featured === undefined) return undefined;
  const { features, instances } = featured;
  return { service: featured.service, features, instances, balanced: false };
}

/** The scenarios `--profile --scenarios NAME` accepts, in the catalog's order. */
export function profilableScenarios(all: readonly Scenario[] = SCENARIOS): Scenario[] {
  return all.filter((s) => profiledGatewayOf(s.service) !== undefined);
}

/**
 * The one scenario `--profile` (or `--instructions`, the `mode` its messages name) runs: `names`
 * empty gives {@link PROFILE_SCENARIO}; several names, an unknown one or one whose service is no
 * gateway of this build (a peer, the upstream, raw-argon2, the `--baseline` build) throw
 * `BENCH_BAD_OPTION`.
 */
export function profileScenarioOf(
  names: readonly string[],
  mode: '--profile' | '--instructions' = '--profile',
): Scenario {
  if (names.length > 1) {
    throw new BenchError(
      'BENCH_BAD_OPTION',
      `${mode} runs one scenario at a time: --scenarios got ${names.length} (${names.join(', ')})`,
    );
  }
  const name = names[0] ?? PROFILE_SCENARIO;
  const scenario = profilableScenarios().find((s) => s.name === name);
  if (scenario === undefined) {
    const known = SCENARIOS.some((s) => s.name === name) ? 'not a gateway scenario' : 'unknown';
    throw new BenchError(
      'BENCH_BAD_OPTION',
      `${mode} --scenarios ${name}: ${known}; it takes one of ${profilableScenarios()
        .map((s) => s.name)
        .join(', ')}`,
    );
  }
  return scenario;
}

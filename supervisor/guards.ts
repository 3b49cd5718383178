import type { Config } from '../conf/config-schema.js';
import type { Logger } from '../shared/log.js';
import type { Store } from '../shared/store.js';
import type { Fleet } from './fleet.js';
import { type LockoutSettings, LoginGuard } from './login-guard.js';
import { RateAuthority } from './rate-authority.js';

/** The config keys the guards read. */
export type GuardConfig = Pick<Config, 'ratelimit_max_clients' | 'login_lockout' | 'users'>;

/** What the guards need of the fleet (a fake in tests). */
export type GuardFleet = Pick<Fleet, 'on' | 'answer' | 'notifyAll'> & {
  readonly edges: readonly unknown[];
};

/** The supervisor's node-wide rate limits and login lockouts, served to the edges. */
export interface Guards {
  readonly rates: RateAuthority;
  readonly logins: LoginGuard;
  /** Applies a (re)loaded config's limits. */
  configure(config: GuardConfig): void;
  stop(): void;
}

/** `login_lockout` in the guard's units. */
export function lockoutSettings(config: GuardConfig): LockoutSettings {
  const l = config.login_lockout;
  return {
    maxFailures: l.max_failures,
    findTimeMs: l.find_time * 1000,
    banTimeMs: l.ban_time * 1000,
    knownUsers: new Set(config.users.map((u) => u.username)),
  };
}

/** Creates the guards for `config`, answers the edges' asks and starts their timers. */
export function serveGuards(
  fleet: GuardFleet,
  store: Store,
  config: GuardConfig,
  log: Logger,
): Guards {
  const rates = new RateAuthority({
    maxKeys: config.ratelimit_max_clients,
    edges: () => fleet.edges.length,
    log,
    onBlock: (key, ms) => fleet.notifyAll({ type: 'rate-block', key, ms }),
  });
  const logins = new LoginGuard({ store, log, settings: lockoutSettings(config) });
  fleet.answer('rate-take', (ask) => ({ results: rates.take(ask.items) }));
  fleet.on('rate-settle', (event) => rates.settle(event.items));
  fleet.answer('login-attempt', (ask) => logins.attempt(ask.user, ask.ip));
  fleet.on('login-result', (event) => logins.result(event.ticket, event.outcome));
  rates.start();
  logins.start();
  return {
    rates,
    logins,
    configure(next) {
      rates.configure(next.ratelimit_max_clients);
      logins.configure(lockoutSettings(next));
    },
    stop() {
      rates.stop();
      logins.stop();
    },
  };
}

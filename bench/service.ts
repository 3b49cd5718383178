import { BenchError } from './bench-error.js';
import type { ExitInfo } from './managed-process.js';
import type { Scenario, ServiceName } from './scenarios.js';

/** A started service that scenarios send load to. */
export interface Service {
  readonly name: ServiceName;
  /** `http://127.0.0.1:<port>` without a trailing slash. */
  readonly baseUrl: string;
  /** Headers a scenario with `auth: 'bearer'` sends; absent for services without auth. */
  readonly authHeaders?: Readonly<Record<string, string>>;
  /** Headers a scenario with `auth: 'cookie-csrf'` sends; only session-cookie gateways have them. */
  readonly cookieHeaders?: Readonly<Record<string, string>>;
  /** Root of the service's process tree, for CPU accounting. */
  readonly pid?: number | undefined;
  /** Where the service's stdout and stderr go (a gateway's: its access log among them). */
  readonly logPath?: string | undefined;
  /** The gateway's bench user: what `auth: 'login'` scenarios post, and its Argon2 hash. */
  readonly login?: BenchLogin | undefined;
  /**
   * Stops the service now (SIGTERM, then SIGKILL of its group after a grace period) and says how
   * it ended; the cleanup at exit is then a no-op for it. Gateways only (`--profile` needs the
   * edges to exit cleanly, which is when they write their profiles).
   */
  readonly stop?: (() => Promise<ExitInfo>) | undefined;
}

/** A user that can log in to a gateway service. */
export interface BenchLogin {
  readonly username: string;
  readonly password: string;
  /** The argon2id PHC string in its config. */
  readonly passwordHash: string;
}

/** Services by name; a missing entry means not started (not selected, or failed). */
export type Services = Partial<Record<ServiceName, Service>>;

/** Where a scenario's requests go and which headers they carry. */
export interface Target {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly pid?: number | undefined;
  readonly method?: 'GET' | 'POST' | undefined;
  readonly body?: string | undefined;
}

/**
 * The URL and headers of `scenario` against its started service; an `auth: 'login'` scenario
 * posts the service's user and password as JSON.
 */
export function targetFor(scenario: Scenario, service: Service): Target {
  if (scenario.auth === 'login') {
    const login = service.login;
    if (!login) {
      throw new BenchError('BENCH_NO_AUTH', `${service.name} has no user for ${scenario.name}`);
    }
    return {
      url: `${service.baseUrl}${scenario.path}`,
      headers: { 'content-type': 'application/json', ...scenario.headers },
      pid: service.pid,
      method: 'POST',
      body: JSON.stringify({ username: login.username, password: login.password }),
    };
  }
  const credentials =
    scenario.auth === 'bearer'
      ? service.authHeaders
      : scenario.auth === 'cookie-csrf'
        ? service.cookieHeaders
        : {};
  if (!credentials) {
    throw new BenchError(
      'BENCH_NO_AUTH',
      `${service.name} has no ${scenario.auth} credentials for ${scenario.name}`,
    );
  }
  const headers = { ...credentials, ...scenario.headers };
  return {
    url: `${service.baseUrl}${scenario.path}`,
    headers,
    pid: service.pid,
    method: scenario.method,
    body: scenario.body,
  };
}

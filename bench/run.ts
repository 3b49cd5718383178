// Entry point of `npm run bench`: starts the upstream and the proxies, checks every scenario's
// answers, then times the scenarios in interleaved rounds and prints a table.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { hashPassword, verifyPassword } from '../crypto-pool/password.js';
import { BenchError } from './bench-error.js';
import { CleanupStack } from './cleanup-stack.js';
import { heapReportArgs } from './edge-heap.js';
import { fastifyPeerMissing } from './fastify.js';
import { startFloor } from './floor.js';
import { BENCH_USER, startGateway } from './gateway.js';
import { FEATURED_GATEWAYS } from './gateway-services.js';
import { findHaproxy } from './haproxy.js';
import { runInstructions } from './instructions.js';
import { mintBenchJwt, newJwtSecret } from './jwt.js';
import { fastifyVersions, type JwtPeers, type PeerStarts, startJwtPeers } from './jwt-peers.js';
import { loadRequestFor } from './load-request.js';
import type { LoadResult, LoadTool } from './load-result.js';
import { detectLoadTool } from './load-tool.js';
import { collectMachineInfo } from './machine-info.js';
import { findNginx, type NginxInstall, startNginx } from './nginx.js';
import { type BenchOptions, parseBenchOptions, USAGE } from './options.js';
import { benchDir, gatewayCliPath, resultsDir } from './paths.js';
import { treeCpuTimes } from './process-cpu.js';
import { runProfile } from './profile.js';
import { renderRatioChart } from './ratio-chart.js';
import { measureArgon2 } from './raw-argon2.js';
import {
  type BenchReport,
  renderReport,
  reportPath,
  type ScenarioRecord,
  summarize,
  writeReportJson,
} from './report.js';
import { openRunDir } from './run-dir.js';
import {
  BENCH_BACKEND_WEIGHTS,
  type Scenario,
  type ServiceName,
  selectScenarios,
} from './scenarios.js';
import { type BenchLogin, type Services, type Target, targetFor } from './service.js';
import { runSoak } from './soak.js';
import { startUpstream } from './upstream.js';
import { checkLoadResult, describeSocketErrors, verifyScenario } from './verify.js';

// Gateway num_instances and nginx worker_processes, equal so that both proxies get the same
// number of processes.
const PROXY_PROCESSES = 2;

/** A selected scenario with its record and, once verified, where its load goes. */
interface Entry {
  readonly scenario: Scenario;
  readonly record: ScenarioRecord;
  target?: Target;
  /** raw-argon2: the hash and password it verifies (the login service's, when it runs). */
  argon2?: BenchLogin;
}

/** The peers found on this machine. */
interface Peers extends JwtPeers {
  readonly nginx: NginxInstall | undefined;
}

async function main(
  argv: readonly string[],
  cleanup: CleanupStack,
  signal: AbortSignal,
): Promise<number> {
  const options = parseBenchOptions(argv);
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  // The run's own temp dir (the services' files, the load tool's scripts): the cleanup removes
  // it on every way out, an error and SIGINT included, and its guard when the runner is killed.
  const work = await openRunDir(cleanup);
  if (options.instructions) {
    console.log(`\n${await runInstructions({ options, cleanup, work, signal })}`);
    return 0;
  }
  if (options.profileDir !== undefined) {
    const { profileDir } = options;
    const tool = await detectLoadTool(options.tool, work);
    const plan = { options: { ...options, profileDir }, tool, processes: PROXY_PROCESSES, work };
    console.log(`\n${await runProfile({ ...plan, cleanup, signal })}`);
    console.log(`summary: ${join(resolve(profileDir), 'summary.md')}`);
    return 0;
  }
  const soak = options.soakMinutes !== undefined;
  const names = soak ? [SOAK_SCENARIO] : options.scenarios;
  const entries = selectScenarios(names, undefined, options.baseline !== undefined).map(newEntry);
  const machine = collectMachineInfo();
  const startedAt = new Date().toISOString();
  const tool = await detectLoadTool(options.tool, work);
  const peers: Peers = {
    nginx: uses(entries, 'nginx') ? await findNginx() : undefined,
    haproxy: uses(entries, 'haproxy-jwt') ? await findHaproxy() : undefined,
    fastifyMissing: uses(entries, 'fastify-jwt') ? await fastifyPeerMissing() : undefined,
  };

  const heapReportDir = soak ? join(work, 'soak-heap') : undefined;
  if (heapReportDir !== undefined) await mkdir(heapReportDir, { mode: 0o700 });
  const gatewayArgs = heapReportDir === undefined ? [] : heapReportArgs(heapReportDir);
  const services = await startServices(
    entries,
    peers,
    options.baseline,
    work,
    cleanup,
    gatewayArgs,
  );
  await verifyAll(entries, services);
  const ctx: LoadContext = { tool, options, signal };
  const active = () => entries.filter((e) => e.record.status === 'ok');
  const soakEntry = soak ? active()[0] : undefined;
  const soakReport =
    soakEntry?.target === undefined || heapReportDir === undefined
      ? undefined
      : await runSoak({
          scenario: soakEntry.scenario,
          target: soakEntry.target,
          tool,
          options,
          signal,
          heapReportDir,
          upstreamPid: services.upstream?.pid,
          gatewayLog: services.gateway?.logPath,
        });
  if (!soak && options.warmupSec > 0) await warmUp(active(), ctx);
  for (let round = 1; !soak && round <= options.runs; round++) {
    // Every other round runs in reverse order: measured (an A/A run of one build against
    // itself), a scenario's place in the round shifted its CPU per request by 7-14%.
    const order = round % 2 === 1 ? active() : active().reverse();
    for (const entry of order) await timedRun(entry, round, ctx);
  }

  const records = entries.map((e) => e.record);
  const report: BenchReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    tools: {
      load: `${tool.name} ${tool.version}`,
      nginx: peers.nginx?.version,
      haproxy: peers.haproxy ? `HAProxy ${peers.haproxy.version}` : undefined,
      fastify: uses(entries, 'fastify-jwt') ? await fastifyVersions() : undefined,
    },
    parameters: { ...parameters(options), proxyProcesses: PROXY_PROCESSES },
    scenarios: records,
    summary: summarize(records),
    ...(soakReport ? { soak: soakReport } : {}),
  };
  console.log(`\n${renderReport(report)}`);
  const dir = resultsDir();
  console.log(`results: ${await writeReportJson(report, dir)}`);
  const chart = renderRatioChart(
    report.summary,
    `ProxyAuth bench ${startedAt}: req/s ratio to the peers`,
  );
  if (chart !== undefined) {
    const path = reportPath(report, dir, '.svg');
    await writeFile(path, chart);
    console.log(`chart: ${path}`);
  }
  const soakFailed = soak && (soakReport === undefined || soakReport.stoppedBy !== undefined);
  return records.some((r) => r.status === 'failed') || soakFailed ? 1 : 0;
}

/** The scenario `--soak` runs. */
const SOAK_SCENARIO = 'gateway-auth-proxy';

function newEntry(scenario: Scenario): Entry {
  return {
    scenario,
    record: { name: scenario.name, description: scenario.description, status: 'ok', runs: [] },
  };
}

function uses(entries: readonly Entry[], service: ServiceName): boolean {
  return entries.some((e) => e.scenario.service === service && e.record.status === 'ok');
}

function markNotRun(
  entries: readonly Entry[],
  service: ServiceName,
  status: 'failed' | 'skipped',
  reason: string,
): void {
  for (const e of entries) {
    if (e.scenario.service !== service || e.record.status !== 'ok') continue;
    e.record.status = status;
    e.record.reason = reason;
  }
}

/**
 * The upstream is required; a proxy that cannot start only fails its own scenarios. Each service
 * keeps its files in a directory of its own under `dir`. `gatewayArgs`: node flags of the plain
 * `gateway` service (`--soak`: heap reports on a signal).
 */
async function startServices(
  entries: readonly Entry[],
  peers: Peers,
  baselineRoot: string | undefined,
  dir: string,
  cleanup: CleanupStack,
  gatewayArgs: readonly string[],
): Promise<Services> {
  const { nginx } = peers;
  const upstream = await startUpstream(cleanup);
  const upstreamPort = Number(new URL(upstream.baseUrl).port);
  const services: Services = { upstream };
  const gateways = [['gateway', gatewayCliPath()]] as ['gateway' | 'baseline', string][];
  if (baselineRoot !== undefined) gateways.push(['baseline', gatewayCliPath(baselineRoot)]);
  for (const [name, cli] of gateways) {
    if (!uses(entries, name)) continue;
    if (!existsSync(cli)) {
      markNotRun(entries, name, 'failed', `${name} CLI not built: ${cli} missing`);
      continue;
    }
    services[name] = await tryStart(entries, name, () =>
      startGateway(name, cli, join(dir, name), upstreamPort, PROXY_PROCESSES, cleanup, {
        nodeArgs: name === 'gateway' ? gatewayArgs : [],
      }),
    );
  }
  for (const { service: name, features, instances } of FEATURED_GATEWAYS) {
    if (!uses(entries, name)) continue;
    services[name] = await tryStart(entries, name, () =>
      startGateway(
        name,
        gatewayCliPath(),
        join(dir, name),
        upstreamPort,
        instances ?? PROXY_PROCESSES,
        cleanup,
        features,
      ),
    );
  }
  if (uses(entries, 'gateway-balanced')) {
    // Two backends, each its own upstream process; the first is the one every scenario uses.
    const second = await startUpstream(cleanup);
    const ports = [upstreamPort, Number(new URL(second.baseUrl).port)];
    const backends = ports.map((port, i) => ({ port, weight: BENCH_BACKEND_WEIGHTS[i]! }));
    services['gateway-balanced'] = await tryStart(entries, 'gateway-balanced', () =>
      startGateway(
        'gateway-balanced',
        gatewayCliPath(),
        join(dir, 'gateway-balanced'),
        upstreamPort,
        PROXY_PROCESSES,
        cleanup,
        { backends },
      ),
    );
  }
  if (uses(entries, 'nginx') && !nginx) {
    console.log('notice: nginx not found, skipping the nginx scenario');
    markNotRun(entries, 'nginx', 'skipped', 'nginx not installed');
  } else if (nginx && uses(entries, 'nginx')) {
    services.nginx = await tryStart(entries, 'nginx', () =>
      startNginx(nginx, join(dir, 'nginx'), upstreamPort, PROXY_PROCESSES, cleanup),
    );
  }
  if (uses(entries, 'floor')) {
    const authHeaders = services.gateway?.authHeaders ?? (await standInAuth());
    const params = { entry: join(benchDir, 'floor-server.js'), upstreamPort, authHeaders };
    services.floor = await tryStart(entries, 'floor', () =>
      startFloor({ ...params, processes: PROXY_PROCESSES }, cleanup),
    );
  }
  const peerStarts: PeerStarts = {
    wanted: (service) => uses(entries, service),
    skip: (service, reason) => {
      console.log(`notice: ${reason}, skipping the ${service} scenarios`);
      markNotRun(entries, service, 'skipped', reason);
    },
    start: (service, start) => tryStart(entries, service, start),
  };
  const peerSetup = { dir, upstreamPort, processes: PROXY_PROCESSES, cleanup };
  Object.assign(services, await startJwtPeers(peers, peerSetup, peerStarts));
  await prepareArgon2(entries, services);
  return services;
}

/**
 * The floor's Authorization header when the gateway does not run (its own token is then
 * unknown): a JWT as the peers get. The floor ignores it either way.
 */
async function standInAuth(): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await mintBenchJwt(newJwtSecret(), BENCH_USER)}` };
}

/**
 * raw-argon2 verifies the login service's own hash when that service runs, else a hash made
 * here with the same function and parameters (crypto-pool/password.ts).
 */
async function prepareArgon2(entries: readonly Entry[], services: Services): Promise<void> {
  const entry = entries.find((e) => e.scenario.service === 'raw-argon2');
  if (entry === undefined || entry.record.status !== 'ok') return;
  const own = services['gateway-login']?.login;
  if (own !== undefined) {
    entry.argon2 = own;
  } else {
    const password = randomBytes(18).toString('base64url');
    entry.argon2 = { username: BENCH_USER, password, passwordHash: await hashPassword(password) };
  }
  services['raw-argon2'] = { name: 'raw-argon2', baseUrl: '' };
}

async function tryStart<T>(
  entries: readonly Entry[],
  service: ServiceName,
  start: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await start();
  } catch (err) {
    console.error(`error: ${service} did not start: ${(err as Error).message}`);
    markNotRun(entries, service, 'failed', `${service} did not start`);
    return undefined;
  }
}

async function verifyAll(entries: readonly Entry[], services: Services): Promise<void> {
  for (const entry of entries) {
    if (entry.record.status !== 'ok') continue;
    const service = services[entry.scenario.service];
    if (!service) {
      fail(entry, `${entry.scenario.service} is not running`);
      continue;
    }
    try {
      if (entry.argon2 !== undefined) {
        await verifyArgon2(entry.argon2);
        entry.target = { url: '', headers: {} };
        console.log(`checked ${entry.scenario.name}: the hash verifies, a wrong password does not`);
        continue;
      }
      const target = targetFor(entry.scenario, service);
      await verifyScenario(entry.scenario, target);
      entry.target = target;
      console.log(`checked ${entry.scenario.name}: answers are correct`);
    } catch (err) {
      fail(entry, `wrong answer before timing: ${(err as Error).message}`);
    }
  }
}

/** Throws `BENCH_WRONG_ANSWER` unless the hash accepts its password and refuses another. */
async function verifyArgon2(login: BenchLogin): Promise<void> {
  const right = await verifyPassword(login.passwordHash, login.password);
  const wrong = await verifyPassword(login.passwordHash, `${login.password}x`);
  if (!right || wrong) {
    throw new BenchError('BENCH_WRONG_ANSWER', `raw-argon2: verify gave ${right} and ${wrong}`);
  }
}

/** What every load run needs besides its scenario. */
interface LoadContext {
  readonly tool: LoadTool;
  readonly options: BenchOptions;
  readonly signal: AbortSignal;
}

async function warmUp(entries: readonly Entry[], ctx: LoadContext): Promise<void> {
  for (const entry of entries) {
    const result = await measure(entry, 'warm-up', ctx.options.warmupSec, ctx);
    if (result) console.log(`warmed up ${entry.scenario.name}`);
  }
}

async function timedRun(entry: Entry, round: number, ctx: LoadContext): Promise<void> {
  const measured = await measure(entry, `round ${round}`, ctx.options.durationSec, ctx);
  if (!measured) return;
  const { result, cpuUsPerRequest, sysUsPerRequest } = measured;
  entry.record.runs.push({
    round,
    result,
    warning: describeSocketErrors(result),
    cpuUsPerRequest,
    sysUsPerRequest,
  });
  const { requestsPerSec, latencyP50Ms, latencyP99Ms } = result;
  const cpu =
    cpuUsPerRequest === undefined
      ? ''
      : `, ${cpuUsPerRequest.toFixed(0)} µs CPU/req` +
        (sysUsPerRequest === undefined ? '' : ` (kernel ${sysUsPerRequest.toFixed(0)})`);
  console.log(
    `[round ${round}/${ctx.options.runs}] ${entry.scenario.name}: ${Math.round(requestsPerSec)} req/s, ` +
      `p50 ${latencyP50Ms} ms, p99 ${latencyP99Ms} ms${cpu}`,
  );
}

/** A checked run and the CPU its server spent per request (µs), when measurable. */
interface Measured {
  readonly result: LoadResult;
  readonly cpuUsPerRequest: number | undefined;
  /** The kernel's part of it (stime), µs. */
  readonly sysUsPerRequest: number | undefined;
}

/** One checked load run; undefined, with the scenario failed, when it cannot be trusted. */
async function measure(
  entry: Entry,
  label: string,
  durationSec: number,
  ctx: LoadContext,
): Promise<Measured | undefined> {
  const target = entry.target as Target;
  const pid = target.pid;
  const cpuBefore = pid === undefined ? undefined : treeCpuTimes(pid);
  let measured: Measured;
  try {
    if (entry.argon2 !== undefined) {
      const { passwordHash: hash, password } = entry.argon2;
      const run = await measureArgon2({ hash, password, durationSec });
      measured = {
        result: run.result,
        cpuUsPerRequest: run.cpuUsPerVerification,
        sysUsPerRequest: undefined,
      };
    } else {
      const request = loadRequestFor(entry.scenario, target, ctx.options, durationSec);
      const result = await ctx.tool.run(request, ctx.signal);
      const cpuAfter = pid === undefined ? undefined : treeCpuTimes(pid);
      const known = cpuBefore !== undefined && cpuAfter !== undefined && result.requests > 0;
      measured = {
        result,
        cpuUsPerRequest: known
          ? ((cpuAfter.total - cpuBefore.total) * 1e6) / result.requests
          : undefined,
        sysUsPerRequest: known
          ? ((cpuAfter.sys - cpuBefore.sys) * 1e6) / result.requests
          : undefined,
      };
    }
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    fail(entry, `${label}: ${(err as Error).message}`);
    return undefined;
  }
  const problem = checkLoadResult(entry.scenario, measured.result);
  if (problem) fail(entry, `${label}: ${problem}`);
  return problem ? undefined : measured;
}

function fail(entry: Entry, reason: string): void {
  entry.record.status = 'failed';
  entry.record.reason = reason;
  console.error(`error: ${entry.scenario.name}: ${reason}`);
}

function parameters(options: BenchOptions): Omit<BenchReport['parameters'], 'proxyProcesses'> {
  const { runs, durationSec, warmupSec, connections, threads } = options;
  return { runs, durationSec, warmupSec, connections, threads };
}

const cleanup = new CleanupStack();
const aborter = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping services`);
    aborter.abort();
    void cleanup.run().then(() => process.exit(130));
  });
}
try {
  process.exitCode = await main(process.argv.slice(2), cleanup, aborter.signal);
} catch (err) {
  if (!aborter.signal.aborted) {
    const code = (err as { code?: string }).code;
    console.error(`error${code ? ` [${code}]` : ''}: ${(err as Error).message}`);
    process.exitCode = 1;
  }
} finally {
  await cleanup.run();
}

// `--instructions`: one gateway scenario with one edge under valgrind's callgrind; after an
// uncounted warm-up, a few windows of an exact number of requests, the edge's user-space
// instructions counted in each; with `--baseline`, the other build the same way after this one.

import { existsSync, realpathSync } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BenchError } from './bench-error.js';
import {
  type CallgrindFiles,
  type CallgrindTools,
  callgrindControl,
  callgrindFilesIn,
  callgrindLauncher,
  dumpInstructions,
  findCallgrind,
  findEdgePid,
} from './callgrind.js';
import {
  categoryTotals,
  type InstructionCategory,
  type NamedFunction,
  nameFunctions,
  parseCallgrindProfile,
  parsePerfMap,
} from './callgrind-functions.js';
import type { CleanupStack } from './cleanup-stack.js';
import { FixedLoad } from './fixed-load.js';
import { startGateway } from './gateway.js';
import { collectMachineInfo, type MachineInfo } from './machine-info.js';
import { describeExit } from './managed-process.js';
import type { BenchOptions } from './options.js';
import { gatewayCliPath, packageRoot, resultsDir } from './paths.js';
import { profiledGatewayOf, profileScenarioOf } from './profile-scenario.js';
import { BENCH_BACKEND_WEIGHTS, type Scenario } from './scenarios.js';
import type { Service } from './service.js';
import { targetFor } from './service.js';
import { median } from './stats.js';
import { startUpstream } from './upstream.js';
import { verifyScenario } from './verify.js';

/** Start of a gateway under valgrind (node's start, the edge's, the login's Argon2), ms. */
const VALGRIND_READY_MS = 300_000;
/** SIGTERM to SIGKILL of a gateway under valgrind (its edge drains and writes its last dump), ms. */
const VALGRIND_STOP_GRACE_MS = 60_000;

/** What the instructions run needs from the runner. */
export interface InstructionsPlan {
  readonly options: BenchOptions;
  readonly cleanup: CleanupStack;
  /** The run's temp dir, removed at cleanup: the gateways' files and callgrind's go below it. */
  readonly work: string;
  readonly signal: AbortSignal;
}

/** One counted window: its requests and the edge's instructions (Ir) while they ran. */
export interface InstructionWindow {
  readonly requests: number;
  readonly instructions: number;
  readonly perRequest: number;
  /**
   * Wall-clock seconds of its requests (instrumentation on): what the edge's per-second timers
   * fire over, so their instructions weigh this long against the window's requests.
   */
  readonly seconds: number;
}

/** One function (or category) of a breakdown: its instructions per request and share. */
export interface InstructionShare {
  /** The function's display name (see `nameFunctions`), or the category's. */
  readonly name: string;
  readonly category: InstructionCategory;
  /** Ir per request of the window. */
  readonly perRequest: number;
  /** Of the window's total Ir, as a fraction (inclusive shares of nested functions overlap). */
  readonly share: number;
}

/** `--top N`: where one build's median window's instructions went. */
export interface InstructionBreakdown {
  /** Which window (1-based): the median one (the lower of the two middle ones when even). */
  readonly window: number;
  readonly requests: number;
  /** The window's total Ir per request (its `perRequest`). */
  readonly perRequest: number;
  /** The N functions with the most self Ir, largest first. */
  readonly self: readonly InstructionShare[];
  /** The N functions with the most inclusive Ir, largest first. */
  readonly inclusive: readonly InstructionShare[];
  /** Self Ir of every category (zero ones included), in the README's order. */
  readonly categories: readonly InstructionShare[];
  /** JIT code no perf map entry named (kept as hex addresses), Ir per request. */
  readonly unnamedPerRequest: number;
  /** Entries of the edge's perf map as of the window's dump. */
  readonly perfMapEntries: number;
}

/** The windows of one build and their summary (instructions per request). */
export interface BuildInstructions {
  /** `this build` or `baseline`. */
  readonly label: string;
  /** The checkout whose dist/ ran. */
  readonly root: string;
  readonly windows: readonly InstructionWindow[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max - min) / median, the windows' spread as a fraction. */
  readonly spread: number;
  /** Wall-clock seconds from the gateway's start to its stop. */
  readonly seconds: number;
  /** `--top N`: the median window's functions and categories. */
  readonly breakdown?: InstructionBreakdown | undefined;
}

/** The JSON written to `bench/results/<timestamp>-instructions.json`. */
export interface InstructionsReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  /** `valgrind --version`. */
  readonly valgrind: string;
  readonly scenario: string;
  readonly parameters: {
    readonly windows: number;
    readonly windowRequests: number;
    readonly warmupRequests: number;
    readonly connections: number;
    /** The gateway's `num_instances`: always 1 (one edge counted). */
    readonly edges: 1;
    /** `--top N` (0: no breakdown, no `--perf-basic-prof`). */
    readonly top: number;
  };
  readonly builds: readonly BuildInstructions[];
  /** This build's median over the baseline's, when `--baseline` ran. */
  readonly ratio?: number | undefined;
}

/**
 * Runs the mode and returns the report's text; the JSON goes to `resultsDir()`. Throws
 * `BENCH_NO_VALGRIND` without valgrind, `BENCH_WRONG_ANSWER` at any wrong answer,
 * `BENCH_CALLGRIND` when a control call or a dump fails, `BENCH_GATEWAY_START` when a gateway
 * does not start, `BENCH_INSTRUCTIONS` when the baseline is not built.
 */
export async function runInstructions(plan: InstructionsPlan): Promise<string> {
  const { options } = plan;
  const scenario = profileScenarioOf(options.scenarios, '--instructions');
  const tools = await findCallgrind();
  const builds: { label: string; root: string }[] = [{ label: 'this build', root: packageRoot() }];
  if (options.baseline !== undefined) {
    const root = resolve(options.baseline);
    if (!existsSync(gatewayCliPath(root))) {
      throw new BenchError(
        'BENCH_INSTRUCTIONS',
        `--baseline ${root}: ${gatewayCliPath(root)} missing (build that checkout first)`,
      );
    }
    builds.push({ label: 'baseline', root });
  }
  const machine = collectMachineInfo();
  const startedAt = new Date().toISOString();
  const upstreams = await startUpstreams(scenario, plan.cleanup);
  const connections = scenario.connections ?? options.connections;
  const measured: BuildInstructions[] = [];
  for (const build of builds) {
    console.log(`${build.label} (${build.root}): starting the gateway under callgrind`);
    measured.push(await measureBuild(build, scenario, upstreams, tools, plan));
  }
  const [own, baseline] = measured;
  const report: InstructionsReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    valgrind: tools.version,
    scenario: scenario.name,
    parameters: {
      windows: options.windows,
      windowRequests: options.windowRequests,
      warmupRequests: options.warmupRequests,
      connections,
      edges: 1,
      top: options.top,
    },
    builds: measured,
    ratio: own !== undefined && baseline !== undefined ? own.median / baseline.median : undefined,
  };
  const dir = resultsDir();
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${startedAt.replaceAll(':', '-')}-instructions.json`);
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
  return `${renderInstructionsReport(report)}\nresults: ${path}`;
}

/** The upstream ports the scenario's gateway routes to: one, or two for the balanced route. */
async function startUpstreams(scenario: Scenario, cleanup: CleanupStack): Promise<number[]> {
  const profiled = profiledGatewayOf(scenario.service);
  const ports = [Number(new URL((await startUpstream(cleanup)).baseUrl).port)];
  if (profiled?.balanced) ports.push(Number(new URL((await startUpstream(cleanup)).baseUrl).port));
  return ports;
}

/**
 * One build: its gateway (the scenario's features, one edge) under callgrind, the answers
 * checked, the warm-up, the windows, then a stop (whose exit is only reported: the counts are in).
 */
async function measureBuild(
  build: { label: string; root: string },
  scenario: Scenario,
  upstreams: readonly number[],
  tools: CallgrindTools,
  plan: InstructionsPlan,
): Promise<BuildInstructions> {
  const { options, signal } = plan;
  const began = Date.now();
  const dirName = build.label === 'baseline' ? 'baseline' : 'gateway';
  const files = callgrindFilesIn(join(plan.work, `callgrind-${dirName}`));
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  const gateway = await startCountedGateway(
    scenario,
    build,
    dirName,
    upstreams,
    files,
    tools,
    plan,
  );
  const root = gateway.pid as number;
  const edge = findEdgePid(root);
  const perfMap = options.top > 0 ? perfMapPath(edge) : undefined;
  if (perfMap !== undefined) {
    const maps = [perfMapPath(root), perfMap];
    plan.cleanup.add(`${build.label}'s perf maps`, () => removeFiles(maps));
  }
  console.log(
    `${build.label}: gateway ${root} ready after ${seconds(began)} s, edge ${edge}; checking answers`,
  );
  const target = targetFor(scenario, gateway);
  await verifyScenario(scenario, target);
  const connections = scenario.connections ?? options.connections;
  const load = new FixedLoad(target, scenario.expect, connections);
  const windows: InstructionWindow[] = [];
  const dumps: CountedDump[] = [];
  try {
    // Instrumentation is off from the start: warm-up requests are run, not counted.
    if (options.warmupRequests > 0) {
      await load.send(options.warmupRequests, signal);
      console.log(`${build.label}: ${options.warmupRequests} warm-up requests sent`);
    }
    for (let w = 1; w <= options.windows; w++) {
      const counted = await countWindow(load, options.windowRequests, edge, files, tools, signal);
      windows.push(counted.window);
      dumps.push({ file: counted.dump, perfMapBytes: await perfMapBytes(perfMap) });
      const last = counted.window;
      console.log(
        `${build.label}: window ${w}/${options.windows}: ${formatCount(last.perRequest)} instructions/request (${last.seconds} s)`,
      );
    }
  } finally {
    await load.close();
  }
  const exit = await gateway.stop?.();
  if (exit !== undefined && exit.code !== 0) {
    console.error(`notice: ${build.label}: the gateway's exit: ${describeExit(exit)}`);
  }
  const summary = summarizeWindows(build, windows, seconds(began));
  if (perfMap === undefined) return summary;
  try {
    const chosen = medianWindowIndex(windows);
    const breakdown = await breakDownWindow(
      windows[chosen] as InstructionWindow,
      chosen + 1,
      dumps[chosen] as CountedDump,
      perfMap,
      build.root,
      options.top,
    );
    return { ...summary, breakdown };
  } finally {
    await removeFiles([perfMapPath(root), perfMap]);
  }
}

/** A window's dump file and the length of the edge's perf map when it was written, bytes. */
interface CountedDump {
  readonly file: string;
  readonly perfMapBytes: number;
}

/** Where node (V8's `--perf-basic-prof`) writes the map of process `pid`'s JIT code. */
export function perfMapPath(pid: number): string {
  return `/tmp/perf-${pid}.map`;
}

/**
 * The node flags of a gateway under `--top`: V8 appends each code object it makes to
 * `/tmp/perf-<pid>.map` (a small cost per compiled function, none per call); the V8 log that
 * flag opens goes to `dir` (`isolate-<address>-<pid>-v8.log`), not the gateway's cwd.
 */
export function perfNodeArgs(dir: string): string[] {
  return ['--perf-basic-prof', `--logfile=${join(dir, 'v8.log')}`];
}

/**
 * The perf map's length now, bytes (0 without `--top`): V8 only appends to it, so its first
 * that many bytes are the map as of the dump just written. Throws `BENCH_INSTRUCTIONS` when
 * the map is missing.
 */
async function perfMapBytes(path: string | undefined): Promise<number> {
  if (path === undefined) return 0;
  try {
    return (await stat(path)).size;
  } catch (err) {
    throw new BenchError(
      'BENCH_INSTRUCTIONS',
      `--top: the edge's perf map ${path} is missing (did node take --perf-basic-prof?): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The first `bytes` bytes of a file, as UTF-8. */
async function readPrefix(path: string, bytes: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

async function removeFiles(paths: readonly string[]): Promise<void> {
  await Promise.all(paths.map((p) => rm(p, { force: true })));
}

/**
 * The index of the median window: the middle one by instructions per request (the lower of
 * the two middle ones for an even count). Throws `BENCH_INSTRUCTIONS` without windows.
 */
export function medianWindowIndex(windows: readonly InstructionWindow[]): number {
  if (windows.length === 0) throw new BenchError('BENCH_INSTRUCTIONS', 'no window');
  const order = windows.map((w, i) => ({ per: w.perRequest, i })).sort((a, b) => a.per - b.per);
  return (order[Math.floor((order.length - 1) / 2)] as { i: number }).i;
}

/**
 * One window's breakdown: its dump read function by function, JIT code named from the perf map
 * as it was at the dump, the top `top` by self and by inclusive Ir, and the categories, all
 * per request. Throws `BENCH_CALLGRIND` when the dump does not parse or does not add up to the
 * window's count.
 */
async function breakDownWindow(
  window: InstructionWindow,
  number: number,
  dump: CountedDump,
  perfMap: string,
  root: string,
  top: number,
): Promise<InstructionBreakdown> {
  const profile = parseCallgrindProfile(await readFile(dump.file, 'utf8'), dump.file);
  if (profile.total !== window.instructions) {
    throw new BenchError(
      'BENCH_CALLGRIND',
      `${dump.file}: total ${profile.total}, the window counted ${window.instructions}`,
    );
  }
  const entries = parsePerfMap(await readPrefix(perfMap, dump.perfMapBytes));
  const named = nameFunctions(profile, {
    perfMap: entries,
    root,
    node: realpathSync(process.execPath),
  });
  return breakdownOf(named, window, number, top, entries.length);
}

/** The breakdown of a window's named functions (pure: see {@link breakDownWindow}). */
export function breakdownOf(
  named: readonly NamedFunction[],
  window: Pick<InstructionWindow, 'requests' | 'instructions' | 'perRequest'>,
  number: number,
  top: number,
  perfMapEntries: number,
): InstructionBreakdown {
  const share = (name: string, category: InstructionCategory, ir: number): InstructionShare => ({
    name,
    category,
    perRequest: ir / window.requests,
    share: window.instructions > 0 ? ir / window.instructions : 0,
  });
  const bySelf = [...named].sort((a, b) => b.self - a.self || a.name.localeCompare(b.name));
  const byInclusive = [...named].sort(
    (a, b) => b.inclusive - a.inclusive || a.name.localeCompare(b.name),
  );
  return {
    window: number,
    requests: window.requests,
    perRequest: window.perRequest,
    self: bySelf.slice(0, top).map((f) => share(f.name, f.category, f.self)),
    inclusive: byInclusive.slice(0, top).map((f) => share(f.name, f.category, f.inclusive)),
    categories: categoryTotals(named).map((c) => share(c.category, c.category, c.self)),
    unnamedPerRequest:
      named.filter((f) => f.name.endsWith(' [???]')).reduce((s, f) => s + f.self, 0) /
      window.requests,
    perfMapEntries,
  };
}

/** The scenario's gateway, from `build`'s checkout, with one edge, under callgrind. */
async function startCountedGateway(
  scenario: Scenario,
  build: { label: string; root: string },
  dirName: 'gateway' | 'baseline',
  upstreams: readonly number[],
  files: CallgrindFiles,
  tools: CallgrindTools,
  plan: InstructionsPlan,
): Promise<Service> {
  const profiled = profiledGatewayOf(scenario.service);
  if (profiled === undefined) {
    throw new BenchError('BENCH_INSTRUCTIONS', `${scenario.name}: no gateway`);
  }
  const backends = profiled.balanced
    ? upstreams.map((port, i) => ({ port, weight: BENCH_BACKEND_WEIGHTS[i] as number }))
    : undefined;
  return startGateway(
    dirName === 'baseline' ? 'baseline' : profiled.service,
    gatewayCliPath(build.root),
    join(plan.work, dirName),
    upstreams[0] as number,
    1,
    plan.cleanup,
    {
      ...profiled.features,
      ...(backends ? { backends } : {}),
      ...(plan.options.top > 0 ? { nodeArgs: perfNodeArgs(files.dir) } : {}),
      launcher: callgrindLauncher(tools.valgrind, files),
      readyTimeoutMs: VALGRIND_READY_MS,
      stopGraceMs: VALGRIND_STOP_GRACE_MS,
    },
  );
}

/**
 * One window: the edge's counters zeroed, instrumentation on, exactly `requests` requests,
 * instrumentation off, a dump, its Ir over the requests.
 */
async function countWindow(
  load: FixedLoad,
  requests: number,
  edge: number,
  files: CallgrindFiles,
  tools: CallgrindTools,
  signal: AbortSignal,
): Promise<{ window: InstructionWindow; dump: string }> {
  await callgrindControl(tools, files, edge, 'zero');
  await callgrindControl(tools, files, edge, 'instrumentation on');
  const began = Date.now();
  let sent: number;
  try {
    await load.send(requests, signal);
  } finally {
    sent = seconds(began);
    await callgrindControl(tools, files, edge, 'instrumentation off');
  }
  const { file, instructions } = await dumpInstructions(tools, files, edge);
  return {
    window: { requests, instructions, perRequest: instructions / requests, seconds: sent },
    dump: file,
  };
}

/** The median, range and spread of one build's windows (at least one). */
export function summarizeWindows(
  build: { label: string; root: string },
  windows: readonly InstructionWindow[],
  wallSeconds: number,
): BuildInstructions {
  const per = windows.map((w) => w.perRequest);
  if (per.length === 0) throw new BenchError('BENCH_INSTRUCTIONS', `${build.label}: no window`);
  const mid = median(per);
  const min = Math.min(...per);
  const max = Math.max(...per);
  return {
    ...build,
    windows,
    median: mid,
    min,
    max,
    spread: mid > 0 ? (max - min) / mid : 0,
    seconds: wallSeconds,
  };
}

/** The markdown table of a report: one row per build, its windows, median and spread. */
export function renderInstructionsReport(report: InstructionsReport): string {
  const { parameters: p } = report;
  const most = Math.max(...report.builds.map((b) => b.windows.length));
  const heads = Array.from({ length: most }, (_, i) => `window ${i + 1}`);
  const rows = report.builds.map((b) => {
    const cells = heads.map((_, i) => {
      const w = b.windows[i];
      return w === undefined ? '' : formatCount(w.perRequest);
    });
    const range = `${formatCount(b.min)}–${formatCount(b.max)} (${(b.spread * 100).toFixed(1)}%)`;
    return `| ${b.label} | ${cells.join(' | ')} | ${formatCount(b.median)} | ${range} | ${Math.round(b.seconds)} |`;
  });
  const lines = [
    `## Instructions per request: ${report.scenario}`,
    '',
    `User-space instructions (callgrind Ir) of the one edge per request; ${p.windows} windows of ` +
      `${p.windowRequests} requests after ${p.warmupRequests} uncounted, ${p.connections} ` +
      `keep-alive connections; ${report.valgrind}.`,
    '',
    `| build | ${heads.join(' | ')} | median | min–max (spread) | run s |`,
    `| --- | ${heads.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`,
    ...rows,
  ];
  for (const b of report.builds) lines.push('', `${b.label}: ${b.root}`);
  if (report.ratio !== undefined) {
    lines.push('', `this build / baseline (medians): ${report.ratio.toFixed(4)}`);
  }
  for (const b of report.builds) {
    if (b.breakdown !== undefined) lines.push('', ...renderBreakdown(b.label, b.breakdown));
  }
  return `${lines.join('\n')}\n`;
}

/** The `--top` tables of one build: functions by self Ir, categories, functions by inclusive Ir. */
export function renderBreakdown(label: string, d: InstructionBreakdown): string[] {
  const percent = (s: InstructionShare): string => `${(s.share * 100).toFixed(1)}`;
  const table = (head: string, rows: readonly InstructionShare[], what: string): string[] => [
    `| ${head} | % | ${what} |`,
    '| ---: | ---: | --- |',
    ...rows.map((r) => `| ${formatCount(r.perRequest)} | ${percent(r)} | ${escapeCell(r.name)} |`),
  ];
  return [
    `### ${label}: where the instructions go (window ${d.window}, the median: ${formatCount(d.perRequest)} instructions/request)`,
    '',
    ...table('instructions/request (self)', d.self, 'function'),
    '',
    ...table('instructions/request (self)', d.categories, 'category'),
    '',
    ...table('instructions/request (inclusive)', d.inclusive, 'function'),
    '',
    `JIT code named from ${d.perfMapEntries} perf map entries; unnamed (hex addresses): ` +
      `${formatCount(d.unnamedPerRequest)} instructions/request. Tier marks: ~ interpreted, ` +
      '^ Sparkplug, + Maglev, * TurboFan.',
  ];
}

/** A table cell's text: `|` escaped, so that a name cannot split the row. */
function escapeCell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function seconds(sinceMs: number): number {
  return Math.round((Date.now() - sinceMs) / 100) / 10;
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadResult } from './load-result.js';
import type { MachineInfo } from './machine-info.js';
import {
  BASELINE_PREFIX,
  EDGE_PAIRS,
  FEATURE_PAIRS,
  LOGIN_PAIRS,
  REFERENCES,
  type ReferenceFamily,
  SCENARIOS,
  type Shape,
} from './scenarios.js';
import { renderSoak, soakRunsLabel } from './soak-render.js';
import type { SoakReport } from './soak-report.js';
import { median, range } from './stats.js';

/** One timed run of one scenario. */
export interface RunRecord {
  /** 1-based round; every scenario runs once per round. */
  readonly round: number;
  readonly result: LoadResult;
  readonly warning?: string;
  /** CPU time the serving process tree spent per request, in microseconds (Linux only). */
  readonly cpuUsPerRequest?: number | undefined;
  /** The kernel's part of cpuUsPerRequest (stime), in microseconds. */
  readonly sysUsPerRequest?: number | undefined;
}

/** Everything measured (or why nothing was) for one scenario. */
export interface ScenarioRecord {
  readonly name: string;
  readonly description: string;
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  readonly runs: RunRecord[];
}

/**
 * A scenario's req/s over its reference's, paired by round (both ran within seconds of each
 * other, so a disturbance of the machine hits both): the median and range of those ratios.
 */
export interface PairedRatio {
  /** The reference scenario (e.g. `nginx-large` for a 100 KiB GET). */
  readonly reference: string;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Rounds where both ran. */
  readonly rounds: number;
}

/** Medians over a scenario's runs; ratios are against the reference of the same shape. */
export interface ScenarioSummary {
  readonly name: string;
  readonly runs: number;
  readonly medianRps: number;
  readonly minRps: number;
  readonly maxRps: number;
  readonly medianP50Ms: number;
  readonly medianP99Ms: number;
  /** Median CPU time of the serving process tree per request (µs); absent off Linux. */
  readonly medianCpuUs: number | undefined;
  /** Median of the runs' kernel part of the CPU per request (µs); undefined when not measured. */
  readonly medianSysUs?: number | undefined;
  /** Keyed by family (nginx, haproxy, upstream); absent when that reference did not run. */
  readonly ratios: Readonly<Partial<Record<ReferenceFamily, PairedRatio>>>;
}

/** Settings the numbers were measured with. */
export interface BenchParameters {
  readonly runs: number;
  readonly durationSec: number;
  readonly warmupSec: number;
  readonly connections: number;
  readonly threads: number;
  readonly proxyProcesses: number;
}

/** The JSON written to bench/results/. */
export interface BenchReport {
  readonly startedAt: string;
  finishedAt: string;
  readonly machine: MachineInfo;
  readonly tools: {
    readonly load: string;
    readonly nginx?: string | undefined;
    readonly haproxy?: string | undefined;
    readonly fastify?: string | undefined;
  };
  readonly parameters: BenchParameters;
  readonly scenarios: readonly ScenarioRecord[];
  summary: readonly ScenarioSummary[];
  /** Present in `--soak` mode: the edges' memory and p99 over time. */
  soak?: SoakReport;
}

/** The shape of each known scenario (default `get`), for picking its references. */
function knownShape(name: string): Shape | undefined {
  const scenario = SCENARIOS.find((s) => s.name === name);
  return scenario === undefined ? undefined : (scenario.shape ?? 'get');
}

/**
 * Summaries of the scenarios that completed all their runs, in run order. `shapeOf` tells what
 * each scenario does (the scenario list by default); a scenario of unknown shape gets no ratio.
 */
export function summarize(
  records: readonly ScenarioRecord[],
  shapeOf: (name: string) => Shape | undefined = knownShape,
): ScenarioSummary[] {
  const ok = records.filter((r) => r.status === 'ok' && r.runs.length > 0);
  return ok.map((r) => {
    const rps = r.runs.map((run) => run.result.requestsPerSec);
    const { min, max } = range(rps);
    return {
      name: r.name,
      runs: r.runs.length,
      medianRps: median(rps),
      minRps: min,
      maxRps: max,
      medianP50Ms: median(r.runs.map((run) => run.result.latencyP50Ms)),
      medianP99Ms: median(r.runs.map((run) => run.result.latencyP99Ms)),
      medianCpuUs: medianOfDefined(r.runs.map((run) => run.cpuUsPerRequest)),
      medianSysUs: medianOfDefined(r.runs.map((run) => run.sysUsPerRequest)),
      ratios: ratiosOf(r, ok, shapeOf(r.name)),
    };
  });
}

const FAMILIES = Object.keys(REFERENCES) as ReferenceFamily[];

function ratiosOf(
  record: ScenarioRecord,
  ok: readonly ScenarioRecord[],
  shape: Shape | undefined,
): Partial<Record<ReferenceFamily, PairedRatio>> {
  const ratios: Partial<Record<ReferenceFamily, PairedRatio>> = {};
  if (shape === undefined) return ratios;
  for (const family of FAMILIES) {
    const reference = REFERENCES[family][shape];
    const base = ok.find((r) => r.name === reference);
    if (reference === undefined || base === undefined) continue;
    const paired = pairedRatios(record, base, (run) => run.result.requestsPerSec);
    if (paired.length === 0) continue;
    ratios[family] = { reference, median: median(paired), ...range(paired), rounds: paired.length };
  }
  return ratios;
}

/** Markdown table of the summaries, one row per scenario. */
export function renderTable(summaries: readonly ScenarioSummary[]): string {
  const header = [
    'scenario',
    'median req/s',
    'min–max req/s',
    'p50 ms',
    'p99 ms',
    'server CPU µs/req',
    'of which kernel',
    ...FAMILIES.map((f) => `vs ${f}`),
    'runs',
  ];
  const align = ['---', ...header.slice(1).map(() => '--:')];
  const rows = summaries.map((s) => [
    s.name,
    formatRps(s.medianRps),
    `${formatRps(s.minRps)}–${formatRps(s.maxRps)}`,
    formatMs(s.medianP50Ms),
    formatMs(s.medianP99Ms),
    s.medianCpuUs === undefined ? 'n/a' : s.medianCpuUs.toFixed(0),
    s.medianSysUs === undefined ? 'n/a' : s.medianSysUs.toFixed(0),
    ...FAMILIES.map((f) => formatPaired(s.ratios[f])),
    String(s.runs),
  ]);
  return [header, align, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function formatPaired(ratio: PairedRatio | undefined): string {
  if (ratio === undefined) return 'n/a';
  return `${formatRatio(ratio.median)} [${formatRatio(ratio.min)}–${formatRatio(ratio.max)}]`;
}

/** The full human report: context lines, the table, and scenarios that did not run. */
export function renderReport(report: BenchReport): string {
  const m = report.machine;
  const p = report.parameters;
  const notRun = report.scenarios
    .filter((s) => s.status !== 'ok')
    .map((s) => `- ${s.name}: ${s.status}${s.reason ? ` (${s.reason})` : ''}`);
  const warnings = report.scenarios.flatMap((s) =>
    s.runs.filter((r) => r.warning).map((r) => `- ${s.name} round ${r.round}: ${r.warning}`),
  );
  return [
    `## ProxyAuth bench, ${report.startedAt}`,
    '',
    `- machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, node ${m.node}`,
    `- load average at start: ${m.loadavg.join(' / ')}`,
    `- tools: ${[report.tools.load, report.tools.nginx, report.tools.haproxy, report.tools.fastify].filter(Boolean).join(', ')}`,
    `- parameters: ${report.soak ? `soak of ${report.soak.minutes} min in ${soakRunsLabel(report.soak)}` : `${p.runs} runs × ${p.durationSec} s`} (warm-up ${p.warmupSec} s), ` +
      `${p.connections} connections, ${p.threads} load threads, ${p.proxyProcesses} processes per proxy`,
    '- the load tool, the proxy and the upstream share these CPUs; the upstream bounds every scenario',
    '- server CPU µs/req: CPU time of the serving process tree (proxy, or the upstream alone for upstream-*) per request; of which kernel: its system time (its syscalls and, on loopback, the TCP path of what it sends)',
    '- vs nginx / haproxy / upstream: req/s over the reference of the same shape (GET, 100 KiB, POST), paired by round: median [min–max]',
    ...(report.summary.length > 0 ? ['', renderTable(report.summary)] : []),
    ...renderBaseline(report.scenarios),
    ...renderFeatureCost(report.scenarios),
    ...renderEdges(report.scenarios),
    ...renderLogin(report.scenarios),
    ...(report.soak ? ['', ...renderSoak(report.soak)] : []),
    ...(notRun.length > 0 ? ['', 'not measured:', ...notRun] : []),
    ...(warnings.length > 0 ? ['', 'warnings:', ...warnings] : []),
    '',
  ].join('\n');
}

/**
 * This build against the `--baseline` build, same run: each `baseline-X` scenario next to its
 * `gateway-X` twin. Besides the ratio of the medians, each round gives a paired ratio (both ran
 * within seconds of each other, so a disturbance of the machine hits both): their median is the
 * steadier figure, and their range shows the noise.
 */
export function renderBaseline(records: readonly ScenarioRecord[]): string[] {
  const pairs: [string, string][] = [];
  for (const r of records) {
    if (r.name.startsWith(BASELINE_PREFIX)) {
      pairs.push([`gateway-${r.name.slice(BASELINE_PREFIX.length)}`, r.name]);
    }
  }
  return pairedTable(
    records,
    pairs,
    'this build vs --baseline (same run; ratios this/baseline, paired by round: median [min–max]):',
  );
}

/**
 * Scenarios with features on against the plain scenario they extend ({@link FEATURE_PAIRS}),
 * same run, paired by round as {@link renderBaseline}: what the features cost.
 */
export function renderFeatureCost(records: readonly ScenarioRecord[]): string[] {
  return pairedTable(
    records,
    FEATURE_PAIRS,
    'features on vs off (same run; ratios with/without, paired by round: median [min–max]):',
  );
}

/**
 * One edge against two ({@link EDGE_PAIRS}: `gateway-one-edge`, `num_instances: 1`, against
 * `gateway-auth-proxy`'s 2), same run, paired by round: each side's median req/s and CPU µs per
 * request, and the paired ratios 1 edge / 2 edges. CPU per request is the figure that transfers
 * to a machine with more cores; req/s shows what a second edge buys on this one.
 */
export function renderEdges(records: readonly ScenarioRecord[]): string[] {
  const rows: string[] = [];
  const ok = records.filter((r) => r.status === 'ok' && r.runs.length > 0);
  for (const [one, two] of EDGE_PAIRS) {
    const a = ok.find((r) => r.name === one);
    const b = ok.find((r) => r.name === two);
    if (!a || !b) continue;
    const rps = [a, b].map((r) => median(r.runs.map((x) => x.result.requestsPerSec)));
    const cpu = [a, b].map((r) => medianOfDefined(r.runs.map((x) => x.cpuUsPerRequest)));
    const [cpuA, cpuB] = cpu;
    rows.push(
      `| ${one} vs ${two} | ${formatRps(rps[0] as number)} vs ${formatRps(rps[1] as number)} | ${describeRatios(
        pairedRatios(a, b, (run) => run.result.requestsPerSec),
      )} | ${
        cpuA === undefined || cpuB === undefined
          ? 'n/a'
          : `${cpuA.toFixed(1)} vs ${cpuB.toFixed(1)}`
      } | ${describeRatios(pairedRatios(a, b, (run) => run.cpuUsPerRequest))} |`,
    );
  }
  if (rows.length === 0) return [];
  return [
    '',
    'edges: 1 edge vs 2 (same run, same machine; ratios 1 edge / 2 edges, paired by round: median [min–max]; CPU µs/req is the figure that transfers):',
    '',
    '| scenarios | req/s medians | req/s ratio | server CPU µs/req medians | CPU µs/req ratio |',
    '| --- | --: | --: | --: | --: |',
    ...rows,
  ];
}

/**
 * Logins through the gateway against raw Argon2 verifications on every core, same run, paired by
 * round: how much of the hash's throughput the gateway delivers as logins.
 */
export function renderLogin(records: readonly ScenarioRecord[]): string[] {
  return pairedTable(
    records,
    LOGIN_PAIRS,
    'login throughput vs raw Argon2 (same run; logins/s over verifications/s, paired by round: median [min–max]):',
  );
}

function pairedTable(
  records: readonly ScenarioRecord[],
  pairs: readonly (readonly [string, string])[],
  title: string,
): string[] {
  const rows: string[] = [];
  const ok = records.filter((r) => r.status === 'ok' && r.runs.length > 0);
  for (const [name, reference] of pairs) {
    const twin = ok.find((r) => r.name === name);
    const base = ok.find((r) => r.name === reference);
    if (!twin || !base) continue;
    const rps = pairedRatios(twin, base, (run) => run.result.requestsPerSec);
    const cpu = pairedRatios(twin, base, (run) => run.cpuUsPerRequest);
    const [mine, theirs] = [twin, base].map((r) =>
      medianOfDefined(r.runs.map((x) => x.cpuUsPerRequest)),
    );
    rows.push(
      `| ${name} vs ${reference} | ${describeRatios(rps)} | ${describeRatios(cpu)} | ${
        mine === undefined || theirs === undefined
          ? 'n/a'
          : `${mine.toFixed(1)} vs ${theirs.toFixed(1)}`
      } |`,
    );
  }
  if (rows.length === 0) return [];
  return [
    '',
    title,
    '',
    '| scenarios | req/s ratio | server CPU µs/req ratio | CPU µs/req medians |',
    '| --- | --: | --: | --: |',
    ...rows,
  ];
}

function pairedRatios(
  mine: ScenarioRecord,
  theirs: ScenarioRecord,
  value: (run: RunRecord) => number | undefined,
): number[] {
  const ratios: number[] = [];
  for (const run of mine.runs) {
    const other = theirs.runs.find((r) => r.round === run.round);
    const a = value(run);
    const b = other === undefined ? undefined : value(other);
    if (a !== undefined && b !== undefined && b > 0) ratios.push(a / b);
  }
  return ratios;
}

function describeRatios(ratios: readonly number[]): string {
  if (ratios.length === 0) return 'n/a';
  const { min, max } = range(ratios);
  return `${formatRatio(median(ratios))} [${formatRatio(min)}–${formatRatio(max)}]`;
}

function medianOfDefined(values: readonly (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length === 0 ? undefined : median(known);
}

/** `<dir>/<timestamp><extension>`: where a report's files go. */
export function reportPath(report: BenchReport, dir: string, extension: string): string {
  // Colons are not allowed in file names everywhere.
  return join(dir, `${report.startedAt.replaceAll(':', '-')}${extension}`);
}

/** Writes the report as `<dir>/<timestamp>.json` and returns the path. */
export async function writeReportJson(report: BenchReport, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = reportPath(report, dir, '.json');
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}

function formatRps(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function formatMs(value: number): string {
  return value < 1 ? value.toFixed(3) : value.toFixed(2);
}

function formatRatio(value: number | undefined): string {
  return value === undefined ? 'n/a' : `${value.toFixed(2)}×`;
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadResult } from './load-result.js';
import type { MachineInfo } from './machine-info.js';
import { BASELINE_PREFIX, FEATURE_PAIRS, REFERENCE_SCENARIOS } from './scenarios.js';
import { median, range } from './stats.js';

/** One timed run of one scenario. */
export interface RunRecord {
  /** 1-based round; every scenario runs once per round. */
  readonly round: number;
  readonly result: LoadResult;
  readonly warning?: string;
  /** CPU time the serving process tree spent per request, in microseconds (Linux only). */
  readonly cpuUsPerRequest?: number | undefined;
}

/** Everything measured (or why nothing was) for one scenario. */
export interface ScenarioRecord {
  readonly name: string;
  readonly description: string;
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  readonly runs: RunRecord[];
}

/** Medians over a scenario's runs; ratios are against the reference scenarios' medians. */
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
  /** Keyed by reference scenario name; absent when that reference did not run. */
  readonly ratios: Readonly<Record<string, number>>;
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
  readonly tools: { readonly load: string; readonly nginx?: string };
  readonly parameters: BenchParameters;
  readonly scenarios: readonly ScenarioRecord[];
  summary: readonly ScenarioSummary[];
}

/** Summaries of the scenarios that completed all their runs, in run order. */
export function summarize(records: readonly ScenarioRecord[]): ScenarioSummary[] {
  const base = records
    .filter((r) => r.status === 'ok' && r.runs.length > 0)
    .map((r) => {
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
      };
    });
  const references = base.filter((s) =>
    (REFERENCE_SCENARIOS as readonly string[]).includes(s.name),
  );
  return base.map((s) => ({
    ...s,
    ratios: Object.fromEntries(references.map((ref) => [ref.name, s.medianRps / ref.medianRps])),
  }));
}

/** Markdown table of the summaries, one row per scenario. */
export function renderTable(summaries: readonly ScenarioSummary[]): string {
  const refs = REFERENCE_SCENARIOS;
  const header = [
    'scenario',
    'median req/s',
    'min–max req/s',
    'p50 ms',
    'p99 ms',
    'server CPU µs/req',
    ...refs.map((r) => `vs ${r}`),
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
    ...refs.map((r) => formatRatio(s.ratios[r])),
    String(s.runs),
  ]);
  return [header, align, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
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
    `- tools: ${report.tools.load}${report.tools.nginx ? `, ${report.tools.nginx}` : ''}`,
    `- parameters: ${p.runs} runs × ${p.durationSec} s (warm-up ${p.warmupSec} s), ` +
      `${p.connections} connections, ${p.threads} load threads, ${p.proxyProcesses} processes per proxy`,
    '- the load tool, the proxy and the upstream share these CPUs; the upstream bounds every scenario',
    '- server CPU µs/req: CPU time of the serving process tree (proxy, or the upstream alone for upstream-direct) per request',
    '',
    renderTable(report.summary),
    ...renderBaseline(report.scenarios),
    ...renderFeatureCost(report.scenarios),
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

/** Writes the report as `<dir>/<timestamp>.json` and returns the path. */
export async function writeReportJson(report: BenchReport, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  // Colons are not allowed in file names everywhere.
  const path = join(dir, `${report.startedAt.replaceAll(':', '-')}.json`);
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

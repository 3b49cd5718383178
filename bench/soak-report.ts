/** One soak interval: a back-to-back load run, then the edges' memory right after it. */
export interface SoakSample {
  /** Seconds since the soak's first interval started (the warm-up excluded). */
  readonly elapsedSec: number;
  /** Resident memory of each edge (children of the supervisor), in KiB, keyed by pid. */
  readonly edgesRssKiB: Readonly<Record<string, number>>;
  readonly requestsPerSec: number;
  readonly latencyP99Ms: number;
}

/** Start (first interval, after the warm-up) against end (last interval). */
export interface SoakSummary {
  readonly startRssKiB: number;
  readonly endRssKiB: number;
  /** (end - start) / start, in percent, of the edges' summed RSS. */
  readonly rssGrowthPercent: number;
  readonly startP99Ms: number;
  readonly endP99Ms: number;
  readonly p99GrowthPercent: number;
  /** True when the set of edge pids changed (an edge restarted: its memory started over). */
  readonly edgesChanged: boolean;
}

/** What `--soak` adds to the report. */
export interface SoakReport {
  readonly scenario: string;
  readonly minutes: number;
  readonly intervalSec: number;
  readonly samples: readonly SoakSample[];
  readonly summary: SoakSummary | undefined;
}

/** Sum of the edges' RSS in one sample, KiB. */
export function totalRssKiB(sample: SoakSample): number {
  return Object.values(sample.edgesRssKiB).reduce((a, b) => a + b, 0);
}

/** Growth from `start` to `end` in percent; 0 when start is 0. */
export function growthPercent(start: number, end: number): number {
  return start === 0 ? 0 : ((end - start) / start) * 100;
}

/** Start vs end of a soak; undefined without a sample. */
export function summarizeSoak(samples: readonly SoakSample[]): SoakSummary | undefined {
  const first = samples[0];
  const last = samples.at(-1);
  if (first === undefined || last === undefined) return undefined;
  const [startRssKiB, endRssKiB] = [totalRssKiB(first), totalRssKiB(last)];
  const pids = (s: SoakSample) => Object.keys(s.edgesRssKiB).sort().join(',');
  return {
    startRssKiB,
    endRssKiB,
    rssGrowthPercent: growthPercent(startRssKiB, endRssKiB),
    startP99Ms: first.latencyP99Ms,
    endP99Ms: last.latencyP99Ms,
    p99GrowthPercent: growthPercent(first.latencyP99Ms, last.latencyP99Ms),
    edgesChanged: samples.some((s) => pids(s) !== pids(first)),
  };
}

/** The soak's lines in the human report: one row per interval, then start vs end. */
export function renderSoak(soak: SoakReport): string[] {
  const rows = soak.samples.map(
    (s) =>
      `| ${s.elapsedSec.toFixed(0)} | ${Object.keys(s.edgesRssKiB).length} | ${mib(totalRssKiB(s))} | ${Math.round(s.requestsPerSec).toLocaleString('en-US')} | ${s.latencyP99Ms.toFixed(2)} |`,
  );
  const sum = soak.summary;
  const verdict =
    sum === undefined
      ? ['no interval completed']
      : [
          `start (first interval after warm-up) vs end: edges' RSS ${mib(sum.startRssKiB)} → ${mib(sum.endRssKiB)} MiB (${signed(sum.rssGrowthPercent)}), ` +
            `p99 ${sum.startP99Ms.toFixed(2)} → ${sum.endP99Ms.toFixed(2)} ms (${signed(sum.p99GrowthPercent)})`,
          ...(sum.edgesChanged
            ? ['an edge restarted during the soak: its memory started over']
            : []),
        ];
  return [
    `soak: ${soak.scenario} for ${soak.minutes} min, back-to-back runs of ${soak.intervalSec} s, edges' RSS (VmRSS) after each:`,
    '',
    '| s | edges | edges RSS MiB | req/s | p99 ms |',
    '| --: | --: | --: | --: | --: |',
    ...rows,
    '',
    ...verdict,
  ];
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function signed(percent: number): string {
  return `${percent >= 0 ? '+' : ''}${percent.toFixed(1)}%`;
}

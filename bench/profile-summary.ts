// Summary of V8 CPU profiles (`node --cpu-prof`) of the gateway's edges, for `--profile DIR`.
// The .cpuprofile format is the Chrome DevTools Protocol's `Profiler.Profile`: a call tree of
// `nodes` (id, callFrame, children), `samples` (the leaf node id of each sample) and
// `timeDeltas` (µs between consecutive samples, the first one from `startTime`).

/** Where a call tree node's code comes from (CDP `Runtime.CallFrame`). */
export interface CpuProfileCallFrame {
  readonly functionName: string;
  /** `file:///…/dist/worker/edge.js`, `node:internal/…`, or '' for native code. */
  readonly url: string;
  /** 0-based. */
  readonly lineNumber: number;
  readonly columnNumber?: number;
  readonly scriptId?: string | number;
}

/** One node of the call tree. */
export interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: CpuProfileCallFrame;
  readonly children?: readonly number[];
}

/** A `.cpuprofile` file as V8 writes it; times in µs of the monotonic clock. */
export interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where self time is charged; see {@link categoryOf}. */
export type ProfileCategory =
  | 'gateway code'
  | 'undici'
  | 'uWS native (from uws-io.js)'
  | 'node:internal'
  | 'GC'
  | 'program'
  | 'other';

/** A name and its share of the busy samples. */
export interface ProfileShare {
  readonly name: string;
  readonly samples: number;
  /** Percent of the busy samples (0–100). */
  readonly percent: number;
}

/** Samples time window, in µs of the profiles' clock (the monotonic clock, as `process.hrtime`). */
export interface ProfileWindow {
  /** Samples taken before this are left out (the warm-up). */
  readonly fromUs?: number | undefined;
  /** Samples taken after this are left out (the stop). */
  readonly toUs?: number | undefined;
}

/** What {@link summarizeProfiles} found, summed over the profiles given. */
export interface ProfileSummary {
  readonly profiles: number;
  /** Samples outside the window (before `fromUs` or after `toUs`). */
  readonly samplesOutside: number;
  /** `(idle)` samples in the window: the thread waiting for events; not in any percentage. */
  readonly idleSamples: number;
  /** Samples in the window that are not idle: the denominator of every percentage. */
  readonly busySamples: number;
  /** Every category, largest first (zero ones included, so the table always has all rows). */
  readonly categories: readonly ProfileShare[];
  readonly topSelf: readonly ProfileShare[];
  /** Inclusive time: a function is counted once per sample however often it is on the stack. */
  readonly topInclusive: readonly ProfileShare[];
}

/** How many functions the top lists keep. */
export const PROFILE_TOP = 25;

const CATEGORIES: readonly ProfileCategory[] = [
  'gateway code',
  'undici',
  'uWS native (from uws-io.js)',
  'node:internal',
  'GC',
  'program',
  'other',
];

/** Whether a profile is an edge's main thread: one of its frames is `…/worker/edge.js`. */
export function isEdgeProfile(profile: CpuProfile): boolean {
  return profile.nodes.some((n) => n.callFrame.url.endsWith('/worker/edge.js'));
}

/** Throws `TypeError` unless `value` has the shape of a `.cpuprofile` (the fields used here). */
export function asCpuProfile(value: unknown, source: string): CpuProfile {
  const p = value as Partial<CpuProfile> | null;
  if (
    p === null ||
    typeof p !== 'object' ||
    !Array.isArray(p.nodes) ||
    !Array.isArray(p.samples) ||
    !Array.isArray(p.timeDeltas) ||
    typeof p.startTime !== 'number' ||
    p.samples.length !== p.timeDeltas.length
  ) {
    throw new TypeError(`${source}: not a V8 .cpuprofile (nodes, samples, timeDeltas, startTime)`);
  }
  return p as CpuProfile;
}

const SPECIAL: Readonly<Record<string, ProfileCategory | 'idle' | 'root'>> = {
  '(idle)': 'idle',
  '(root)': 'root',
  '(garbage collector)': 'GC',
  '(program)': 'program',
};

function categoryOfUrl(url: string): ProfileCategory {
  if (url.includes('/node_modules/undici/') || url.startsWith('node:internal/deps/undici/'))
    return 'undici';
  // Checked before gateway code: see categoryOf.
  if (url.endsWith('/worker/uws-io.js')) return 'uWS native (from uws-io.js)';
  if (/\/dist\/(?:worker|shared|conf)\//.test(url)) return 'gateway code';
  if (url.startsWith('node:')) return 'node:internal';
  return 'other';
}

/**
 * The category a node's self time goes to: `(garbage collector)` GC, `(program)` program
 * (V8 and native code outside any JS frame: uWS's own event loop work lands here); a frame of
 * worker/uws-io.js uWS native: V8 makes no frame for a native API callback such as uWS's
 * `res.cork`/`res.end`, so a uWS call's time is the self time of the uws-io.js function that
 * made it, and uws-io.js is the thin layer that makes every uWS call; any other frame of
 * dist/worker, dist/shared or dist/conf gateway code; npm's undici or node's bundled one undici;
 * `node:` node:internal; a native frame (no url: a V8 builtin, a node binding) goes to its
 * nearest caller with a url (a builtin called by gateway code is gateway code).
 */
export function categoryOf(
  node: CpuProfileNode,
  parentOf: ReadonlyMap<number, CpuProfileNode>,
): ProfileCategory | 'idle' | 'root' {
  const special = SPECIAL[node.callFrame.functionName];
  if (special !== undefined && node.callFrame.url === '') return special;
  if (node.callFrame.url !== '') return categoryOfUrl(node.callFrame.url);
  for (let up = parentOf.get(node.id); up !== undefined; up = parentOf.get(up.id)) {
    if (up.callFrame.url !== '') return categoryOfUrl(up.callFrame.url);
  }
  return 'other';
}

/** A function's name in the tables: `name (file:line)`, the file relative to dist/ or node_modules/. */
export function functionLabel(frame: CpuProfileCallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return SPECIAL[name] === undefined ? `${name} [native]` : name;
  const url = frame.url;
  const cut = Math.max(url.lastIndexOf('/node_modules/'), url.lastIndexOf('/dist/'));
  const file = cut >= 0 ? url.slice(url.indexOf('/', cut + 1) + 1) : url.replace(/^file:\/\//, '');
  return `${name} (${file}:${frame.lineNumber + 1})`;
}

/**
 * Sums the samples of `profiles` taken inside `window`: `(idle)` samples are counted apart, every
 * other one is busy and charged to its leaf (self time, by function and by
 * {@link categoryOf}) and once to every distinct function on its stack (inclusive time: a
 * recursive function is counted once per sample). Functions are matched across profiles by
 * label (name, file, line), so the edges add up. Percentages are of the busy samples.
 */
export function summarizeProfiles(
  profiles: readonly CpuProfile[],
  window: ProfileWindow = {},
  top = PROFILE_TOP,
): ProfileSummary {
  const from = window.fromUs ?? Number.NEGATIVE_INFINITY;
  const to = window.toUs ?? Number.POSITIVE_INFINITY;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const categories = new Map<ProfileCategory, number>(CATEGORIES.map((c) => [c, 0]));
  let outside = 0;
  let idle = 0;
  let busy = 0;
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parentOf = new Map<number, CpuProfileNode>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n);
    const labels = new Map(profile.nodes.map((n) => [n.id, functionLabel(n.callFrame)]));
    let time = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      time += profile.timeDeltas[i] ?? 0;
      if (time < from || time > to) {
        outside++;
        continue;
      }
      const leaf = byId.get(profile.samples[i] as number);
      if (leaf === undefined) continue;
      const category = categoryOf(leaf, parentOf);
      if (category === 'idle') {
        idle++;
        continue;
      }
      if (category === 'root') continue;
      busy++;
      categories.set(category, (categories.get(category) ?? 0) + 1);
      add(self, labels.get(leaf.id) as string);
      const onStack = new Set<string>();
      for (let n: CpuProfileNode | undefined = leaf; n !== undefined; n = parentOf.get(n.id)) {
        if (n.callFrame.functionName === '(root)' && n.callFrame.url === '') continue;
        onStack.add(labels.get(n.id) as string);
      }
      for (const label of onStack) add(inclusive, label);
    }
  }
  const share = ([name, samples]: [string, number]): ProfileShare => ({
    name,
    samples,
    percent: busy === 0 ? 0 : (samples * 100) / busy,
  });
  return {
    profiles: profiles.length,
    samplesOutside: outside,
    idleSamples: idle,
    busySamples: busy,
    categories: [...categories].sort(largestFirst).map(share),
    topSelf: [...self].sort(largestFirst).slice(0, top).map(share),
    topInclusive: [...inclusive].sort(largestFirst).slice(0, top).map(share),
  };
}

function add(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function largestFirst(a: [string, number], b: [string, number]): number {
  return b[1] - a[1] || a[0].localeCompare(b[0]);
}

/** Context printed above the tables. */
export interface ProfileSummaryContext {
  readonly scenario: string;
  /** Profile files read, and which of them were edges. */
  readonly files: readonly { readonly name: string; readonly edge: boolean }[];
  readonly intervalUs: number;
  readonly warmupSec: number;
  readonly durationSec: number;
  /** The timed run's throughput under the profiler (slower than without it). */
  readonly requestsPerSec?: number | undefined;
}

/** The summary as markdown (also written to DIR/summary.md). */
export function renderProfileSummary(s: ProfileSummary, ctx: ProfileSummaryContext): string {
  const inWindow = s.idleSamples + s.busySamples;
  const pct = (n: number, of: number) => (of === 0 ? 'n/a' : `${((n * 100) / of).toFixed(1)}%`);
  const table = (title: string, rows: readonly ProfileShare[], first: string) => [
    '',
    `### ${title}`,
    '',
    `| ${first} | samples | % of busy |`,
    '| --- | --: | --: |',
    ...rows.map(
      (r) => `| ${r.name.replaceAll('|', '\\|')} | ${r.samples} | ${r.percent.toFixed(1)} |`,
    ),
  ];
  const edges = ctx.files.filter((f) => f.edge).map((f) => f.name);
  const others = ctx.files.filter((f) => !f.edge).map((f) => f.name);
  return [
    `## CPU profile of the gateway's edges, ${ctx.scenario}`,
    '',
    'V8 samples wall time on the thread: time the kernel spends in a syscall (send/write on loopback) lands on the JS function that made it, so "busy" includes those syscalls; `(idle)` is the thread waiting for events. V8 makes no frame for a native call (uWS `cork`/`end`, a node binding): its time is the self time of the JS function that called it (uWS calls: the uws-io.js functions, category "uWS native").',
    '',
    `- edge profiles: ${edges.length} (${edges.join(', ') || 'none'}); left out (supervisor, worker threads): ${others.length}`,
    `- sampling interval ${ctx.intervalUs} µs; samples of the warm-up (${ctx.warmupSec} s) and of the stop left out: ${s.samplesOutside}`,
    `- timed run: ${ctx.durationSec} s${ctx.requestsPerSec === undefined ? '' : `, ${Math.round(ctx.requestsPerSec).toLocaleString('en-US')} req/s under the profiler`}`,
    `- samples in the timed run: ${inWindow}; idle ${s.idleSamples} (${pct(s.idleSamples, inWindow)}, excluded), busy ${s.busySamples}: every percentage below is of the busy samples`,
    ...table('Self time by category', s.categories, 'category'),
    ...table(`Top ${s.topSelf.length} functions by self time`, s.topSelf, 'function'),
    ...table(
      `Top ${s.topInclusive.length} functions by inclusive time (counted once per stack)`,
      s.topInclusive,
      'function',
    ),
    '',
  ].join('\n');
}

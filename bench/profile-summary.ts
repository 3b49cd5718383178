// Summary of V8 CPU profiles (`node --cpu-prof`) of the gateway's threads, for `--profile DIR`.
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
  | 'Argon2 native (from password.js)'
  | 'piscina'
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
  'Argon2 native (from password.js)',
  'piscina',
  'node:internal',
  'GC',
  'program',
  'other',
];

/** Whether a profile is an edge's main thread: one of its frames is `…/worker/edge.js`. */
export function isEdgeProfile(profile: CpuProfile): boolean {
  return profile.nodes.some((n) => n.callFrame.url.endsWith('/worker/edge.js'));
}

/**
 * The process and thread of a profile from its file name, node's default
 * `CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile` (threadId 0: the main thread, else a
 * worker thread's `threadId`); undefined for any other name.
 */
export function profileThreadOf(fileName: string): { pid: number; threadId: number } | undefined {
  const m = /^CPU\.\d{8}\.\d{6}\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(fileName);
  return m === null ? undefined : { pid: Number(m[1]), threadId: Number(m[2]) };
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
  // The same for Argon2: password.js is the layer that calls @node-rs/argon2's native code.
  if (url.endsWith('/crypto-pool/password.js')) return 'Argon2 native (from password.js)';
  if (url.includes('/node_modules/piscina/')) return 'piscina';
  if (/\/dist\/(?:worker|shared|conf|supervisor|crypto-pool)\//.test(url)) return 'gateway code';
  if (url.startsWith('node:')) return 'node:internal';
  return 'other';
}

/**
 * The category a node's self time goes to: `(garbage collector)` GC, `(program)` program
 * (V8 and native code outside any JS frame: uWS's own event loop work lands here); a frame of
 * worker/uws-io.js uWS native: V8 makes no frame for a native API callback such as uWS's
 * `res.cork`/`res.end`, so a uWS call's time is the self time of the uws-io.js function that
 * made it, and uws-io.js is the thin layer that makes every uWS call; likewise a frame of
 * crypto-pool/password.js Argon2 native (its sync calls into @node-rs/argon2); piscina's own
 * code piscina, except its `atomicsWaitLoop`, which is idle (see isPoolWait); any other frame of
 * dist/worker, shared, conf, supervisor or crypto-pool gateway code; npm's undici or node's
 * bundled one undici; `node:` node:internal; a native frame (no url: a V8 builtin, a node
 * binding) goes to its nearest caller with a url (a builtin called by gateway code is gateway
 * code).
 */
export function categoryOf(
  node: CpuProfileNode,
  parentOf: ReadonlyMap<number, CpuProfileNode>,
): ProfileCategory | 'idle' | 'root' {
  const special = SPECIAL[node.callFrame.functionName];
  if (special !== undefined && node.callFrame.url === '') return special;
  let owner: CpuProfileNode | undefined = node;
  while (owner !== undefined && owner.callFrame.url === '') owner = parentOf.get(owner.id);
  if (owner === undefined) return 'other';
  if (isPoolWait(owner.callFrame)) return 'idle';
  return categoryOfUrl(owner.callFrame.url);
}

/**
 * piscina's thread waiting for its next task: its `atomicsWaitLoop` blocks in `Atomics.wait`, for
 * which V8 makes no frame, so the wait is that function's self time; it is the pool thread's idle.
 */
function isPoolWait(frame: CpuProfileCallFrame): boolean {
  return frame.functionName === 'atomicsWaitLoop' && frame.url.includes('/node_modules/piscina/');
}

/** A function's name in the tables: `name (file:line)`, the file relative to dist/ or node_modules/. */
export function functionLabel(frame: CpuProfileCallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return SPECIAL[name] === undefined ? `${name} [native]` : name;
  const url = frame.url;
  // A package's own dist/ stays in its name (piscina/dist/worker.js, not worker.js).
  const modules = url.lastIndexOf('/node_modules/');
  const cut = modules >= 0 ? modules : url.lastIndexOf('/dist/');
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

/** The threads a section of the summary covers. */
export type ProfileGroup = 'edge main' | 'edge worker' | 'supervisor';

/** The sections' titles, in the summary's order. */
export const PROFILE_GROUP_TITLES: Readonly<Record<ProfileGroup, string>> = {
  'edge main': "Edges' main threads",
  'edge worker': "Edges' worker threads (crypto pool: Argon2)",
  supervisor: 'Supervisor (main thread)',
};

/** A profile file read, and the section it went to (none: left out). */
export interface ProfileFile {
  readonly name: string;
  readonly group: ProfileGroup | undefined;
}

/** One section: the summary of a group's profiles. */
export interface ProfileSection {
  readonly group: ProfileGroup;
  readonly summary: ProfileSummary;
}

/** Context printed above the tables. */
export interface ProfileSummaryContext {
  readonly scenario: string;
  readonly files: readonly ProfileFile[];
  readonly intervalUs: number;
  readonly warmupSec: number;
  readonly durationSec: number;
  /** The timed run's throughput under the profiler (slower than without it). */
  readonly requestsPerSec?: number | undefined;
  /** Requests of the timed run: each section's busy time per request. */
  readonly requests?: number | undefined;
  /** The per-thread CPU table (markdown), printed after the context. */
  readonly threadTable?: string | undefined;
}

/** The summary as markdown (also written to DIR/summary.md): context, thread table, sections. */
export function renderProfileSummary(
  sections: readonly ProfileSection[],
  ctx: ProfileSummaryContext,
): string {
  const inGroup = (g: ProfileGroup | undefined) =>
    ctx.files.filter((f) => f.group === g).map((f) => f.name);
  const listed = (g: ProfileGroup | undefined) => {
    const names = inGroup(g);
    return `${names.length} (${names.join(', ') || 'none'})`;
  };
  const requestsPerSec =
    ctx.requestsPerSec === undefined
      ? ''
      : `, ${Math.round(ctx.requestsPerSec).toLocaleString('en-US')} req/s under the profiler`;
  return [
    `# CPU profile of the gateway, ${ctx.scenario}`,
    '',
    'V8 samples wall time on the thread: time the kernel spends in a syscall (send/write on loopback) lands on the JS function that made it, and so does time the thread is preempted while running, so "busy" includes both; `(idle)` is the thread waiting for events, and so is a pool thread waiting for its next task in the `atomicsWaitLoop` of piscina (`Atomics.wait`, which V8 counts as busy). V8 makes no frame for a native call (uWS `cork`/`end`, a node binding, Argon2): its time is the self time of the JS function that called it (uWS calls: the uws-io.js functions, category "uWS native").',
    '',
    `- edges' main threads: ${listed('edge main')}`,
    `- edges' worker threads: ${listed('edge worker')}`,
    `- supervisor: ${listed('supervisor')}; left out: ${listed(undefined)}`,
    `- sampling interval ${ctx.intervalUs} µs; samples of the warm-up (${ctx.warmupSec} s) and of the stop left out`,
    `- timed run: ${ctx.durationSec} s${requestsPerSec}${ctx.requests === undefined ? '' : `, ${ctx.requests.toLocaleString('en-US')} requests`}`,
    '',
    ...(ctx.threadTable === undefined ? [] : [ctx.threadTable]),
    ...sections.flatMap((s) => renderSection(s, ctx)),
  ].join('\n');
}

function renderSection(section: ProfileSection, ctx: ProfileSummaryContext): string[] {
  const s = section.summary;
  const inWindow = s.idleSamples + s.busySamples;
  const pct = (n: number, of: number) => (of === 0 ? 'n/a' : `${((n * 100) / of).toFixed(1)}%`);
  const perRequest =
    ctx.requests === undefined || ctx.requests === 0
      ? ''
      : ` (${((s.busySamples * ctx.intervalUs) / ctx.requests).toFixed(0)} µs/request of sampled busy time)`;
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
  return [
    `## ${PROFILE_GROUP_TITLES[section.group]}`,
    '',
    `- profiles: ${s.profiles}; samples outside the timed run, left out: ${s.samplesOutside}`,
    `- samples in the timed run: ${inWindow}; idle ${s.idleSamples} (${pct(s.idleSamples, inWindow)}, excluded), busy ${s.busySamples}${perRequest}: every percentage below is of the busy samples`,
    ...table('Self time by category', s.categories, 'category'),
    ...table(`Top ${s.topSelf.length} functions by self time`, s.topSelf, 'function'),
    ...table(
      `Top ${s.topInclusive.length} functions by inclusive time (counted once per stack)`,
      s.topInclusive,
      'function',
    ),
    '',
  ];
}

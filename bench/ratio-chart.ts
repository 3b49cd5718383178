import type { PairedRatio, ScenarioSummary } from './report.js';
import type { ReferenceFamily } from './scenarios.js';

/** The families drawn, in bar order, with their colours. */
const SERIES: readonly { readonly family: ReferenceFamily; readonly colour: string }[] = [
  { family: 'nginx', colour: '#4e79a7' },
  { family: 'haproxy', colour: '#f28e2b' },
];

const LABEL_WIDTH = 280;
const PLOT_WIDTH = 480;
const RIGHT_MARGIN = 90;
const BAR_HEIGHT = 12;
const ROW_GAP = 10;
const TOP = 56;
const BOTTOM = 36;

/** Text with the five XML special characters escaped (XML 1.0 §2.4), for content and attributes. */
export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

/** The scale's end: the largest ratio drawn (or 1.0) rounded up to the next half. */
export function chartMax(summaries: readonly ScenarioSummary[]): number {
  let max = 1;
  for (const s of summaries) {
    for (const { family } of SERIES) max = Math.max(max, s.ratios[family]?.max ?? 0);
  }
  return Math.ceil(max * 2) / 2;
}

/** The scenarios with a ratio to nginx or HAProxy other than themselves, in report order. */
function charted(summaries: readonly ScenarioSummary[]): ScenarioSummary[] {
  return summaries.filter((s) => SERIES.some(({ family }) => drawn(s, s.ratios[family])));
}

function drawn(s: ScenarioSummary, ratio: PairedRatio | undefined): ratio is PairedRatio {
  return ratio !== undefined && ratio.reference !== s.name;
}

/**
 * An SVG 1.1 chart of each scenario's req/s ratio to nginx and to HAProxy (paired by round):
 * one horizontal bar per ratio whose length is proportional to the median, a whisker over the
 * min–max range, the value at its end, and a dashed line at 1.0 (as fast as the peer). Written
 * by hand, no dependency; every name is escaped. Undefined when there is nothing to draw.
 */
export function renderRatioChart(
  summaries: readonly ScenarioSummary[],
  title: string,
): string | undefined {
  const rows = charted(summaries);
  if (rows.length === 0) return undefined;
  const max = chartMax(rows);
  const x = (ratio: number) => LABEL_WIDTH + (ratio / max) * PLOT_WIDTH;
  const rowHeight = SERIES.length * BAR_HEIGHT + ROW_GAP;
  const height = TOP + rows.length * rowHeight + BOTTOM;
  const width = LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...SERIES.map(
      ({ family, colour }, i) =>
        `<rect x="${10 + i * 150}" y="32" width="12" height="12" fill="${colour}"/><text x="${26 + i * 150}" y="42">req/s vs ${family}</text>`,
    ),
  ];
  rows.forEach((s, i) => {
    const top = TOP + i * rowHeight;
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${top + BAR_HEIGHT + 4}" text-anchor="end">${escapeXml(s.name)}</text>`,
    );
    SERIES.forEach(({ family, colour }, j) => {
      const r = s.ratios[family];
      if (!drawn(s, r)) return;
      const y = top + j * BAR_HEIGHT;
      const mid = y + BAR_HEIGHT / 2;
      parts.push(
        `<rect class="bar" data-scenario="${escapeXml(s.name)}" data-family="${family}" x="${LABEL_WIDTH}" y="${y + 1}" width="${fmt(x(r.median) - LABEL_WIDTH)}" height="${BAR_HEIGHT - 2}" fill="${colour}"/>`,
        `<line x1="${fmt(x(r.min))}" y1="${mid}" x2="${fmt(x(r.max))}" y2="${mid}" stroke="#333333"/>`,
        `<text x="${fmt(x(r.max) + 4)}" y="${mid + 4}" font-size="10">${r.median.toFixed(2)}×</text>`,
      );
    });
  });
  const axisY = TOP + rows.length * rowHeight;
  parts.push(
    `<line x1="${LABEL_WIDTH}" y1="${axisY}" x2="${LABEL_WIDTH + PLOT_WIDTH}" y2="${axisY}" stroke="#333333"/>`,
  );
  for (let tick = 0; tick <= max + 1e-9; tick += 0.5) {
    parts.push(
      `<text x="${fmt(x(tick))}" y="${axisY + 16}" text-anchor="middle" font-size="10">${tick.toFixed(1)}</text>`,
    );
  }
  parts.push(
    `<line class="parity" x1="${fmt(x(1))}" y1="${TOP - 6}" x2="${fmt(x(1))}" y2="${axisY}" stroke="#c0392b" stroke-dasharray="4 3"/>`,
    '</svg>',
    '',
  );
  return parts.join('\n');
}

function fmt(n: number): string {
  return Number(n.toFixed(2)).toString();
}

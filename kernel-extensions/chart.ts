/**
 * Charts as data, drawn two ways: as a static SVG (here: readable in every
 * front end, in saved notebooks, on GitHub and by the checker) and as a
 * Plotly figure (`plotly_figure.ts`: interactive in the notebook). Both are
 * made from the same {@link Chart}, so they always show the same numbers.
 */
import { escapeHtml } from "./rich";
import { finiteRange, viridisHex } from "./colormap";

/** How a trace is drawn. */
export type TraceKind = "line" | "scatter" | "bar";

/** One named set of points. */
export interface Trace {
  /** Legend name. */
  readonly name: string;
  /** Drawing style. */
  readonly kind: TraceKind;
  /** x values (numbers), or category labels for bars. */
  readonly x: readonly number[] | readonly string[];
  readonly y: readonly number[];
}

/** A line, scatter or bar chart. */
export interface Chart {
  readonly traces: readonly Trace[];
  readonly title?: string;
  readonly xLabel?: string;
  readonly yLabel?: string;
  /** Log scale on y (values must be > 0). Default false. */
  readonly logY?: boolean;
  /** Pixels. Default 480. */
  readonly width?: number;
  /** Pixels. Default 280. */
  readonly height?: number;
  /** Said under the chart (e.g. that points were downsampled). */
  readonly note?: string;
}

/** A matrix of values drawn as colored cells (viridis), row 0 at the top. */
export interface Heatmap {
  /** [rows][columns]. */
  readonly values: readonly (readonly number[])[];
  /** One label per column / row (shown when there are ≤ 40). */
  readonly xLabels?: readonly string[];
  readonly yLabels?: readonly string[];
  readonly title?: string;
  readonly xLabel?: string;
  readonly yLabel?: string;
  /** Color range. Default: the values' finite min..max. */
  readonly range?: readonly [number, number];
  /** Print each value in its cell (small matrices, e.g. confusion matrices). Default false. */
  readonly annotate?: boolean;
  /** Pixels of the whole picture. Default: 24 px per cell, within 160…640. */
  readonly width?: number;
  readonly height?: number;
  readonly note?: string;
}

/** The trace colors (matplotlib's tab10). */
export const TRACE_COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** Short, stable number formatting for tick labels and summaries. */
export function tick(value: number): string {
  if (value === 0) return "0";
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4 || magnitude < 1e-3) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

const f = (v: number) => v.toFixed(1);

/** Round tick values (1, 2 or 5 × 10^k apart) inside [low, high], about `count` of them. */
export function niceTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const raw = (high - low) / Math.max(1, count - 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  // The 1-2-5 step whose number of intervals is closest to count - 1.
  const steps = [1, 2, 5, 10].map((m) => m * power);
  const step = steps.reduce((best, s) =>
    Math.abs((high - low) / s - (count - 1)) < Math.abs((high - low) / best - (count - 1)) ? s : best,
  );
  const ticks: number[] = [];
  for (let v = Math.ceil(low / step - 1e-9) * step; v <= high + step * 1e-9; v += step)
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return ticks;
}

function svgOpen(width: number, height: number): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
}

function labels(
  parts: string[],
  chart: { title?: string; xLabel?: string; yLabel?: string; note?: string },
  width: number,
  height: number,
  plot: { left: number; top: number; width: number; height: number },
): void {
  if (chart.title)
    parts.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="13">${escapeHtml(chart.title)}</text>`);
  if (chart.xLabel)
    parts.push(
      `<text x="${f(plot.left + plot.width / 2)}" y="${height - (chart.note ? 18 : 6)}" text-anchor="middle">${escapeHtml(chart.xLabel)}</text>`,
    );
  if (chart.yLabel)
    parts.push(
      `<text transform="translate(12 ${f(plot.top + plot.height / 2)}) rotate(-90)" text-anchor="middle">${escapeHtml(chart.yLabel)}</text>`,
    );
  if (chart.note) parts.push(`<text x="4" y="${height - 4}" font-size="10" fill="#666">${escapeHtml(chart.note)}</text>`);
}

/** Checks a chart's traces, naming the bad one. */
export function validateChart(chart: Chart, who: string): void {
  if (chart.traces.length === 0) throw new Error(`${who}: no series given`);
  for (const trace of chart.traces) {
    if (trace.x.length !== trace.y.length)
      throw new Error(`${who}: series "${trace.name}" has ${trace.x.length} x values and ${trace.y.length} y values`);
    if (chart.logY && trace.y.some((v) => !(v > 0)))
      throw new Error(`${who}: series "${trace.name}" has values ≤ 0, which logY cannot show`);
  }
}

/** The chart as an SVG document. */
export function chartSvg(chart: Chart): string {
  const width = chart.width ?? 480;
  const height = chart.height ?? 280;
  const categorical = chart.traces.some((t) => typeof t.x[0] === "string");
  const categories = categorical ? [...new Set(chart.traces.flatMap((t) => t.x as readonly string[]))] : [];
  const margin = { left: 56, right: 16, top: chart.title ? 28 : 12, bottom: (chart.xLabel ? 40 : 26) + (chart.note ? 12 : 0) };
  const plot = {
    left: margin.left,
    top: margin.top,
    width: width - margin.left - margin.right,
    height: height - margin.top - margin.bottom,
  };
  const ty = (v: number) => (chart.logY ? Math.log10(v) : v);
  const xOf = (trace: Trace, i: number) => (categorical ? categories.indexOf(String(trace.x[i])) : (trace.x[i] as number));
  const points = chart.traces.map((trace) =>
    trace.y.map((y, i) => [xOf(trace, i), ty(y)] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  );
  const all = points.flat();
  if (all.length === 0) throw new Error("chart: no finite points to draw");
  const hasBars = chart.traces.some((t) => t.kind === "bar");
  let [xMin, xMax] = categorical ? [-0.5, categories.length - 0.5] : finiteRange(all.map((p) => p[0]));
  if (hasBars && !categorical) [xMin, xMax] = [xMin - 0.5, xMax + 0.5];
  let [yMin, yMax] = finiteRange(all.map((p) => p[1]));
  if (hasBars && !chart.logY) [yMin, yMax] = [Math.min(0, yMin), Math.max(0, yMax)];
  if (yMax === yMin) yMax = yMin + 1;
  const sx = (x: number) => plot.left + ((x - xMin) / (xMax - xMin)) * plot.width;
  const sy = (y: number) => plot.top + (1 - (y - yMin) / (yMax - yMin)) * plot.height;
  const parts = svgOpen(width, height);
  for (const yv of chart.logY ? niceTicks(Math.ceil(yMin), Math.floor(yMax)).filter(Number.isInteger) : niceTicks(yMin, yMax)) {
    parts.push(`<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${f(sy(yv))}" y2="${f(sy(yv))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${plot.left - 4}" y="${f(sy(yv) + 4)}" text-anchor="end">${tick(chart.logY ? 10 ** yv : yv)}</text>`);
  }
  if (!categorical) {
    for (const xv of niceTicks(xMin, xMax, 6))
      parts.push(`<text x="${f(sx(xv))}" y="${plot.top + plot.height + 14}" text-anchor="middle">${tick(xv)}</text>`);
  }
  if (categorical) {
    const every = Math.ceil(categories.length / 20);
    categories.forEach((c, k) => {
      if (k % every === 0)
        parts.push(`<text x="${f(sx(k))}" y="${plot.top + plot.height + 14}" text-anchor="middle">${escapeHtml(c)}</text>`);
    });
  }
  parts.push(`<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#888"/>`);
  const barTraces = chart.traces.filter((t) => t.kind === "bar");
  const slot = (plot.width / (xMax - xMin)) * 0.8;
  points.forEach((pts, k) => {
    const trace = chart.traces[k];
    const color = TRACE_COLORS[k % TRACE_COLORS.length];
    if (trace.kind === "line") {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(" ")}"/>`,
      );
    } else if (trace.kind === "scatter") {
      for (const [x, y] of pts)
        parts.push(`<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="2.5" fill="${color}" fill-opacity="0.8"/>`);
    } else {
      const barWidth = slot / barTraces.length;
      const offset = -slot / 2 + barTraces.indexOf(trace) * barWidth;
      const base = sy(chart.logY ? yMin : 0);
      for (const [x, y] of pts)
        parts.push(
          `<rect x="${f(sx(x) + offset)}" y="${f(Math.min(base, sy(y)))}" width="${f(barWidth)}" height="${f(Math.abs(base - sy(y)))}" fill="${color}"/>`,
        );
    }
    if (chart.traces.length > 1)
      parts.push(
        `<text x="${plot.left + plot.width - 4}" y="${plot.top + 14 + 14 * k}" text-anchor="end" fill="${color}">${escapeHtml(trace.name)}</text>`,
      );
  });
  labels(parts, chart, width, height, plot);
  parts.push("</svg>");
  return parts.join("");
}

/** The matrix's shape, checked (rows of equal length). */
export function heatmapShape(values: readonly (readonly number[])[], who: string): [number, number] {
  const rows = values.length;
  const columns = values[0]?.length ?? 0;
  if (rows === 0 || columns === 0) throw new Error(`${who}: expected a non-empty matrix, got ${rows} rows of ${columns} values`);
  values.forEach((row, r) => {
    if (row.length !== columns) throw new Error(`${who}: row ${r} has ${row.length} values; row 0 has ${columns}`);
  });
  return [rows, columns];
}

/** Pixels of the cell area for `count` rows or columns: 24 per cell, within 160…640. */
export function heatmapExtent(count: number): number {
  return Math.min(640, Math.max(160, count * 24));
}

/** The heatmap as an SVG document, with a color bar. */
export function heatmapSvg(heatmap: Heatmap): string {
  const [rows, columns] = heatmapShape(heatmap.values, "heatmap");
  const showX = heatmap.xLabels && columns <= 40;
  const showY = heatmap.yLabels && rows <= 40;
  const longestY = showY ? Math.max(...heatmap.yLabels!.map((l) => l.length)) : 0;
  const margin = {
    left: 12 + (heatmap.yLabel ? 16 : 0) + (showY ? Math.min(120, 6.5 * longestY + 6) : 24),
    right: 64,
    top: heatmap.title ? 28 : 10,
    bottom: 10 + (showX ? 40 : 14) + (heatmap.xLabel ? 16 : 0) + (heatmap.note ? 12 : 0),
  };
  const width = heatmap.width ?? heatmapExtent(columns) + margin.left + margin.right;
  const height = heatmap.height ?? heatmapExtent(rows) + margin.top + margin.bottom;
  const plot = {
    left: margin.left,
    top: margin.top,
    width: width - margin.left - margin.right,
    height: height - margin.top - margin.bottom,
  };
  const cellW = plot.width / columns;
  const cellH = plot.height / rows;
  const [low, high] = heatmap.range ?? finiteRange(heatmap.values.flat());
  const parts = svgOpen(width, height);
  heatmap.values.forEach((row, r) =>
    row.forEach((v, c) => {
      const t = (v - low) / (high - low || 1);
      parts.push(
        `<rect x="${f(plot.left + c * cellW)}" y="${f(plot.top + r * cellH)}" width="${f(cellW + 0.3)}" height="${f(cellH + 0.3)}" fill="${viridisHex(t)}"/>`,
      );
      if (heatmap.annotate)
        parts.push(
          `<text x="${f(plot.left + (c + 0.5) * cellW)}" y="${f(plot.top + (r + 0.5) * cellH + 4)}" text-anchor="middle" fill="${t > 0.6 ? "black" : "white"}">${tick(v)}</text>`,
        );
    }),
  );
  if (showX)
    heatmap.xLabels!.forEach((l, c) =>
      parts.push(
        `<text transform="translate(${f(plot.left + (c + 0.5) * cellW + 3)} ${plot.top + plot.height + 6}) rotate(-60)" text-anchor="end">${escapeHtml(l)}</text>`,
      ),
    );
  if (showY)
    heatmap.yLabels!.forEach((l, r) =>
      parts.push(
        `<text x="${plot.left - 4}" y="${f(plot.top + (r + 0.5) * cellH + 4)}" text-anchor="end">${escapeHtml(l)}</text>`,
      ),
    );
  // Color bar: 10 steps from low (bottom) to high (top).
  const barX = plot.left + plot.width + 12;
  for (let k = 0; k < 10; k++)
    parts.push(
      `<rect x="${barX}" y="${f(plot.top + ((9 - k) * plot.height) / 10)}" width="12" height="${f(plot.height / 10 + 0.3)}" fill="${viridisHex((k + 0.5) / 10)}"/>`,
    );
  parts.push(
    `<text x="${barX + 16}" y="${plot.top + 10}">${tick(high)}</text><text x="${barX + 16}" y="${plot.top + plot.height}">${tick(low)}</text>`,
  );
  labels(parts, heatmap, width, height, plot);
  parts.push("</svg>");
  return parts.join("");
}

/**
 * At most `limit` points of a series for drawing: every point when there are
 * few, else the min and max of equal buckets (so spikes stay visible).
 * Returns the kept indices.
 */
export function downsampleIndices(length: number, values: ArrayLike<number>, limit = 2000): number[] {
  if (length <= limit) return Array.from({ length }, (_, i) => i);
  const buckets = Math.floor(limit / 2);
  const kept: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor((b * length) / buckets);
    const end = Math.floor(((b + 1) * length) / buckets);
    let low = start;
    let high = start;
    for (let i = start; i < end; i++) {
      if (values[i] < values[low]) low = i;
      if (values[i] > values[high]) high = i;
    }
    kept.push(...(low === high ? [low] : low < high ? [low, high] : [high, low]));
  }
  return kept;
}

/**
 * Static line charts as SVG: loss curves and other series, readable in every
 * front end, in saved notebooks and by the checker (the interactive Plotly
 * versions build on the same data).
 */
import { escapeHtml, Rich } from "./rich";

/** One line. */
export interface Series {
  name: string;
  /** x values; default 0, 1, 2, ... */
  x?: number[];
  y: number[];
}

/** Options for {@link linePlot}. */
export interface LinePlotArgs {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Pixels. Default 480 × 280. */
  width?: number;
  height?: number;
  /** Log scale on y (values must be > 0). Default false. */
  logY?: boolean;
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/** Short, stable number formatting for tick labels. */
function tick(value: number): string {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4 || magnitude < 1e-3) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

/** A line chart of one or more series, as SVG with a text summary. */
export function linePlot(series: Series[], args: LinePlotArgs = {}): Rich {
  if (series.length === 0) throw new Error("linePlot: no series given");
  for (const s of series) {
    if (s.x && s.x.length !== s.y.length) throw new Error(`linePlot: series "${s.name}" has ${s.x.length} x values and ${s.y.length} y values`);
    if (args.logY && s.y.some((v) => !(v > 0))) throw new Error(`linePlot: series "${s.name}" has values ≤ 0, which logY cannot show`);
  }
  const width = args.width ?? 480;
  const height = args.height ?? 280;
  const margin = { left: 56, right: 16, top: args.title ? 28 : 12, bottom: 40 };
  const ty = (v: number) => (args.logY ? Math.log10(v) : v);
  const points = series.map((s) => s.y.map((y, i) => [s.x ? s.x[i] : i, ty(y)] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const all = points.flat();
  if (all.length === 0) throw new Error("linePlot: no finite points to draw");
  let [xMin, xMax] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [yMin, yMax] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (xMax === xMin) xMax = xMin + 1;
  if (yMax === yMin) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sx = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => margin.top + (1 - (y - yMin) / (yMax - yMin)) * plotH;
  const f = (v: number) => v.toFixed(1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (args.title) parts.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="13">${escapeHtml(args.title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const yv = yMin + ((yMax - yMin) * i) / 4;
    const xv = xMin + ((xMax - xMin) * i) / 4;
    parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${f(sy(yv))}" y2="${f(sy(yv))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 4}" y="${f(sy(yv) + 4)}" text-anchor="end">${tick(args.logY ? 10 ** yv : yv)}</text>`);
    parts.push(`<text x="${f(sx(xv))}" y="${height - margin.bottom + 14}" text-anchor="middle">${tick(xv)}</text>`);
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  points.forEach((pts, k) => {
    const color = COLORS[k % COLORS.length];
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(" ")}"/>`);
    parts.push(`<text x="${width - margin.right - 4}" y="${margin.top + 14 + 14 * k}" text-anchor="end" fill="${color}">${escapeHtml(series[k].name)}</text>`);
  });
  if (args.xLabel) parts.push(`<text x="${margin.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escapeHtml(args.xLabel)}</text>`);
  if (args.yLabel) parts.push(`<text transform="translate(12 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(args.yLabel)}</text>`);
  parts.push("</svg>");
  const summary = series
    .map((s) => `${s.name}: ${s.y.length} points, first ${tick(s.y[0])}, last ${tick(s.y[s.y.length - 1])}, min ${tick(Math.min(...s.y))}`)
    .join("; ");
  return new Rich({ "text/plain": `${args.title ? args.title + " — " : ""}${summary}`, "image/svg+xml": parts.join("") });
}

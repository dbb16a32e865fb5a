/**
 * Plots: line, scatter, bar and heatmap. Each output is interactive in the
 * notebook (plotly.js, embedded once per session, no CDN; the Plotly mime
 * bundle for JupyterLab) and carries the same chart as a static SVG, which
 * saved notebooks, GitHub and the checker show.
 *
 *   linePlot([{ name: "train", y: losses }], { title: "loss", xLabel: "step" })
 *   await heatmap(attentionWeights, { xLabels: tokens, yLabels: tokens })
 */
import * as tf from "@tensorflow/tfjs";
import type { Rich } from "./rich";
import {
  chartSvg,
  downsampleIndices,
  heatmapExtent,
  heatmapShape,
  heatmapSvg,
  tick,
  TRACE_COLORS,
  validateChart,
  type Chart,
  type Heatmap,
  type Trace,
} from "./chart";
import { elementId, FrontendRich, scriptJson, whenLoaded } from "./frontend";
import { viridisPlotlyScale } from "./colormap";

/** One series of points. */
export interface Series {
  name: string;
  /** x values; default 0, 1, 2, … */
  x?: number[];
  y: number[];
}

/** Options shared by the plots. */
export interface PlotArgs {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Pixels. Default 480 × 280. */
  width?: number;
  height?: number;
  /** Log scale on y (values must be > 0). Default false. */
  logY?: boolean;
  /** Most points drawn per series; longer ones keep each bucket's min and max, with a note. Default 2000. */
  maxPoints?: number;
}

/** Options for {@link heatmap}. */
export interface HeatmapArgs extends Omit<PlotArgs, "logY" | "maxPoints"> {
  /** Column and row labels (e.g. key and query tokens). */
  xLabels?: readonly string[];
  yLabels?: readonly string[];
  /** Color range. Default: the values' min..max. */
  range?: [number, number];
  /** Print values in the cells. Default: only for ≤ 12×12 matrices. */
  annotate?: boolean;
  /** Largest side drawn; bigger matrices are averaged down, with a note. Default 128. */
  maxCells?: number;
}

/** A Plotly figure ({data, layout}) with the chart's traces. */
export function chartFigure(chart: Chart): { data: object[]; layout: object } {
  const data = chart.traces.map((trace, k) => {
    const color = TRACE_COLORS[k % TRACE_COLORS.length];
    const common = { name: trace.name, x: trace.x, y: trace.y };
    if (trace.kind === "bar") return { ...common, type: "bar", marker: { color } };
    return {
      ...common,
      type: "scatter",
      mode: trace.kind === "line" ? "lines" : "markers",
      line: { color, width: 1.5 },
      marker: { color, size: 5 },
    };
  });
  return {
    data,
    layout: layout(chart, {
      yaxis: { title: { text: chart.yLabel ?? "" }, type: chart.logY ? "log" : "linear" },
      showlegend: chart.traces.length > 1,
    }),
  };
}

function layout(
  chart: { title?: string; xLabel?: string; width?: number; height?: number; note?: string },
  extra: object,
): object {
  return {
    title: { text: chart.title ?? "" },
    xaxis: { title: { text: chart.xLabel ?? "" } },
    width: chart.width ?? 480,
    height: (chart.height ?? 280) + 40,
    margin: { l: 60, r: 20, t: chart.title ? 56 : 24, b: 48 },
    ...(chart.note
      ? {
          annotations: [
            {
              text: chart.note,
              xref: "paper",
              yref: "paper",
              x: 0,
              y: -0.2,
              showarrow: false,
              font: { size: 10, color: "#666" },
            },
          ],
        }
      : {}),
    ...extra,
  };
}

/** The heatmap as a Plotly figure. */
export function heatmapFigure(heatmap: Heatmap): { data: object[]; layout: object } {
  const [rows, columns] = heatmapShape(heatmap.values, "heatmap");
  // Cells sit at integer positions; labels are tick texts (tokens repeat, so they cannot be categories).
  const axis = (labels: readonly string[] | undefined, count: number, title: string | undefined) => ({
    title: { text: title ?? "" },
    ...(labels ? { tickmode: "array", tickvals: labels.map((_, k) => k), ticktext: labels } : {}),
    range: [-0.5, count - 0.5],
  });
  const trace = {
    type: "heatmap",
    z: heatmap.values,
    colorscale: viridisPlotlyScale(),
    zmin: heatmap.range?.[0],
    zmax: heatmap.range?.[1],
    ...(heatmap.annotate ? { texttemplate: "%{z:.3g}" } : {}),
  };
  const yAxis = axis(heatmap.yLabels, rows, heatmap.yLabel);
  return {
    data: [trace],
    layout: layout(
      { ...heatmap, width: heatmap.width ?? heatmapExtent(columns) + 140, height: heatmap.height ?? heatmapExtent(rows) + 60 },
      { xaxis: axis(heatmap.xLabels, columns, heatmap.xLabel), yaxis: { ...yAxis, range: [rows - 0.5, -0.5] } },
    ),
  };
}

/** A rich output: interactive Plotly HTML over the static SVG, the Plotly bundle, the SVG and a text summary. */
export function plotlyOutput(figure: { data: object[]; layout: object }, svg: string, text: string): Rich {
  const id = elementId("plot");
  const markup =
    `<div id="${id}" class="mllm-plot" style="display:inline-block">${svg}</div>` +
    whenLoaded(
      "plotly",
      id,
      `var figure = ${scriptJson(figure)}; element.innerHTML = ""; lib.newPlot(element, figure.data, figure.layout, { displaylogo: false, responsive: false });`,
    );
  return new FrontendRich(
    { "text/plain": text, "text/html": markup, "application/vnd.plotly.v1+json": figure, "image/svg+xml": svg },
    {},
    "plotly",
  );
}

function toChart(kind: "line" | "scatter", series: Series[], args: PlotArgs, who: string): Chart {
  if (!Array.isArray(series) || series.length === 0) throw new Error(`${who}: no series given`);
  const limit = args.maxPoints ?? 2000;
  let thinned = 0;
  const traces: Trace[] = series.map((s) => {
    if (!Array.isArray(s.y) && !ArrayBuffer.isView(s.y))
      throw new Error(`${who}: series "${s.name}" needs y as an array of numbers, got ${typeof s.y}`);
    const y = Array.from(s.y as ArrayLike<number>);
    const x = s.x ? Array.from(s.x as ArrayLike<number>) : y.map((_, i) => i);
    if (x.length !== y.length) throw new Error(`${who}: series "${s.name}" has ${x.length} x values and ${y.length} y values`);
    const kept = downsampleIndices(y.length, y, limit);
    if (kept.length < y.length) thinned = Math.max(thinned, y.length);
    return { name: s.name, kind, x: kept.map((i) => x[i]), y: kept.map((i) => y[i]) };
  });
  const chart: Chart = {
    traces,
    title: args.title,
    xLabel: args.xLabel,
    yLabel: args.yLabel,
    logY: args.logY,
    width: args.width,
    height: args.height,
    note: thinned ? `downsampled: ${thinned} points drawn as ≤ ${limit} (min and max per bucket)` : undefined,
  };
  validateChart(chart, who);
  return chart;
}

function summary(args: { title?: string }, series: readonly { name: string; y: readonly number[] }[]): string {
  const parts = series.map((s) => {
    const finite = s.y.filter(Number.isFinite);
    return `${s.name}: ${s.y.length} points, first ${tick(s.y[0])}, last ${tick(s.y[s.y.length - 1])}, min ${tick(Math.min(...finite))}`;
  });
  return `${args.title ? args.title + " — " : ""}${parts.join("; ")}`;
}

/** A line chart of one or more series. */
export function linePlot(series: Series[], args: PlotArgs = {}): Rich {
  const chart = toChart("line", series, args, "linePlot");
  return plotlyOutput(chartFigure(chart), chartSvg(chart), summary(args, series));
}

/** A scatter plot of one or more point sets. */
export function scatterPlot(series: Series[], args: PlotArgs = {}): Rich {
  const chart = toChart("scatter", series, args, "scatterPlot");
  return plotlyOutput(chartFigure(chart), chartSvg(chart), summary(args, series));
}

/** Bars: one value per label, or several named series over the same labels (grouped). */
export function barPlot(
  bars:
    { labels: string[]; values: number[]; name?: string } | { labels: string[]; series: { name: string; values: number[] }[] },
  args: Omit<PlotArgs, "maxPoints"> = {},
): Rich {
  const groups = "series" in bars ? bars.series : [{ name: bars.name ?? "value", values: bars.values }];
  for (const g of groups) {
    if (g.values.length !== bars.labels.length)
      throw new Error(`barPlot: series "${g.name}" has ${g.values.length} values for ${bars.labels.length} labels`);
  }
  const chart: Chart = {
    traces: groups.map((g) => ({ name: g.name, kind: "bar", x: bars.labels, y: g.values })),
    title: args.title,
    xLabel: args.xLabel,
    yLabel: args.yLabel,
    logY: args.logY,
    width: args.width,
    height: args.height,
  };
  validateChart(chart, "barPlot");
  const text = `${args.title ? args.title + " — " : ""}${groups.map((g) => `${g.name}: ${bars.labels.map((l, i) => `${l} ${tick(g.values[i])}`).join(", ")}`).join("; ")}`;
  return plotlyOutput(chartFigure(chart), chartSvg(chart), text);
}

/** Rows of a [R, C] tensor or matrix, checked. */
export async function matrixRows(values: number[][] | tf.Tensor, who: string): Promise<number[][]> {
  if (values instanceof tf.Tensor) {
    if (values.rank !== 2) throw new Error(`${who}: expected a [rows, columns] tensor, got shape [${values.shape.join(", ")}]`);
    const [rows, columns] = values.shape;
    const flat = await values.data();
    return Array.from({ length: rows }, (_, r) => Array.from(flat.subarray(r * columns, (r + 1) * columns)));
  }
  heatmapShape(values, who);
  return values;
}

/** Averages a matrix down so that neither side exceeds `limit` (block means). */
export function poolMatrix(values: number[][], limit: number): { values: number[][]; factor: [number, number] } {
  const rows = values.length;
  const columns = values[0].length;
  const fr = Math.ceil(rows / limit);
  const fc = Math.ceil(columns / limit);
  if (fr === 1 && fc === 1) return { values, factor: [1, 1] };
  const out: number[][] = [];
  for (let r = 0; r < rows; r += fr) {
    const row: number[] = [];
    for (let c = 0; c < columns; c += fc) {
      let sum = 0;
      let n = 0;
      for (let i = r; i < Math.min(rows, r + fr); i++) {
        for (let j = c; j < Math.min(columns, c + fc); j++) {
          sum += values[i][j];
          n++;
        }
      }
      row.push(sum / n);
    }
    out.push(row);
  }
  return { values: out, factor: [fr, fc] };
}

/** A heatmap of a matrix ([R, C] tensor or rows of numbers), row 0 at the top. */
export async function heatmap(values: number[][] | tf.Tensor, args: HeatmapArgs = {}): Promise<Rich> {
  const full = await matrixRows(values, "heatmap");
  const rows = full.length;
  const columns = full[0].length;
  const limit = args.maxCells ?? 128;
  const pooled = poolMatrix(full, limit);
  const pooledLabels = (labels: readonly string[] | undefined, count: number, factor: number, who: string) => {
    if (labels && labels.length !== count)
      throw new Error(`heatmap: ${labels.length} ${who} labels for ${count} ${who === "x" ? "columns" : "rows"}`);
    return labels && factor === 1 ? labels : undefined;
  };
  const map: Heatmap = {
    values: pooled.values,
    xLabels: pooledLabels(args.xLabels, columns, pooled.factor[1], "x"),
    yLabels: pooledLabels(args.yLabels, rows, pooled.factor[0], "y"),
    title: args.title,
    xLabel: args.xLabel,
    yLabel: args.yLabel,
    range: args.range,
    annotate: args.annotate ?? (rows <= 12 && columns <= 12),
    width: args.width,
    height: args.height,
    note:
      pooled.factor[0] * pooled.factor[1] > 1
        ? `averaged down from ${rows}×${columns} to ${pooled.values.length}×${pooled.values[0].length}`
        : undefined,
  };
  const flat = full.flat().filter(Number.isFinite);
  const text = `${args.title ? args.title + " — " : ""}heatmap ${rows}×${columns}, min ${tick(Math.min(...flat))}, max ${tick(Math.max(...flat))}`;
  return plotlyOutput(heatmapFigure(map), heatmapSvg(map), text);
}

/**
 * tfjs-vis's charts in the notebook: its training-history view
 * (`tfvis.show.history`) and confusion matrix (`tfvis.render.confusionMatrix`),
 * drawn by the front end with tfjs-vis (embedded once per session, like
 * plotly.js), over a static SVG of the same numbers for saved notebooks,
 * GitHub and the checker.
 */
import * as tf from "@tensorflow/tfjs";
import type { Rich } from "./rich";
import { chartSvg, heatmapSvg, tick, TRACE_COLORS } from "./chart";
import { elementId, FrontendRich, scriptJson, whenLoaded } from "./frontend";
import { matrixRows } from "./plot";

/** Options for the tfjs-vis charts. */
export interface TfvisArgs {
  title?: string;
  /** Pixels. Default 480 × 280. */
  width?: number;
  height?: number;
}

function tfvisOutput(draw: string, svg: string, text: string): Rich {
  const id = elementId("tfvis");
  const markup =
    `<div id="${id}" class="mllm-tfvis" style="display:inline-block;min-width:200px">${svg}</div>` +
    whenLoaded("tfvis", id, `element.innerHTML = ""; ${draw}`);
  return new FrontendRich({ "text/plain": text, "text/html": markup, "image/svg+xml": svg }, {}, "tfvis");
}

/**
 * A training history ({metric: values per epoch or step}, as Keras's
 * `History.history`) as tfjs-vis's history chart.
 */
export function historyChart(history: Record<string, number[]>, args: TfvisArgs & { metrics?: string[] } = {}): Rich {
  const metrics = args.metrics ?? Object.keys(history ?? {});
  if (metrics.length === 0) throw new Error("historyChart: no metrics given");
  for (const name of metrics) {
    const values = history[name];
    if (!Array.isArray(values) || values.length === 0)
      throw new Error(
        `historyChart: metric "${name}" has no values (history has ${
          Object.keys(history)
            .map((k) => `"${k}"`)
            .join(", ") || "nothing"
        })`,
      );
  }
  const width = args.width ?? 480;
  const height = args.height ?? 280;
  const svg = chartSvg({
    traces: metrics.map((name) => ({ name, kind: "line", x: history[name].map((_, i) => i), y: history[name] })),
    title: args.title,
    xLabel: "step",
    width,
    height,
  });
  const data = { history: Object.fromEntries(metrics.map((m) => [m, history[m]])) };
  const draw = `lib.show.history(element, ${scriptJson(data)}, ${scriptJson(metrics)}, ${scriptJson({ width, height, xLabel: "step", seriesColors: TRACE_COLORS.slice(0, metrics.length) })});`;
  const text = `${args.title ? args.title + " — " : ""}history: ${metrics.map((m) => `${m} ${history[m].length} values, last ${tick(history[m][history[m].length - 1])}`).join("; ")}`;
  return tfvisOutput(draw, svg, text);
}

/**
 * A confusion matrix (rows = true class, columns = predicted) as tfjs-vis's
 * confusion-matrix view. Give the counts, or `labels`/`predictions` class
 * indices via {@link confusionCounts}.
 */
export async function confusionMatrix(
  counts: number[][] | tf.Tensor,
  classNames: readonly string[],
  args: TfvisArgs = {},
): Promise<Rich> {
  const rows = await matrixRows(counts, "confusionMatrix");
  if (rows.length !== classNames.length || rows[0].length !== classNames.length)
    throw new Error(
      `confusionMatrix: a ${rows.length}×${rows[0].length} matrix for ${classNames.length} class names; expected ${classNames.length}×${classNames.length}`,
    );
  const svg = heatmapSvg({
    values: rows,
    xLabels: classNames,
    yLabels: classNames,
    title: args.title,
    xLabel: "predicted",
    yLabel: "true",
    annotate: rows.length <= 12,
  });
  const width = args.width ?? 420;
  const height = args.height ?? 420;
  const draw = `lib.render.confusionMatrix(element, ${scriptJson({ values: rows, tickLabels: classNames })}, ${scriptJson({ width, height, shadeDiagonal: true, showTextOverlay: rows.length <= 12 })});`;
  const total = rows.flat().reduce((a, b) => a + b, 0);
  const right = rows.reduce((sum, row, k) => sum + row[k], 0);
  const text = `${args.title ? args.title + " — " : ""}confusion matrix over ${classNames.length} classes: ${right}/${total} on the diagonal (accuracy ${total ? (right / total).toFixed(4) : "n/a"})`;
  return tfvisOutput(draw, svg, text);
}

/** Counts [C][C] of (true, predicted) class index pairs. */
export function confusionCounts(labels: ArrayLike<number>, predictions: ArrayLike<number>, classCount: number): number[][] {
  if (labels.length !== predictions.length)
    throw new Error(`confusionCounts: ${labels.length} labels but ${predictions.length} predictions`);
  const counts = Array.from({ length: classCount }, () => new Array<number>(classCount).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const [t, p] = [labels[i], predictions[i]];
    if (!(Number.isInteger(t) && t >= 0 && t < classCount && Number.isInteger(p) && p >= 0 && p < classCount))
      throw new Error(`confusionCounts: pair ${i} is (${t}, ${p}); classes are 0…${classCount - 1}`);
    counts[t][p]++;
  }
  return counts;
}

/**
 * Sensor time series (accelerometer, gyroscope, …) as a chart: one line per
 * channel against time in seconds, interactive with a static SVG (see plot.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { Rich } from "./rich";
import { linePlot, matrixRows } from "./plot";

/** Options for {@link sensorChart}. */
export interface SensorChartArgs {
  /** Samples per second. Required. */
  sampleRate: number;
  /** A name per channel (column). Default "channel 0", "channel 1", … */
  channels?: readonly string[];
  /** Only these columns. Default all. */
  select?: readonly number[];
  title?: string;
  /** Unit for the y axis, e.g. "m/s²". */
  unit?: string;
  width?: number;
  height?: number;
}

/** Shows a [T, C] window (tensor or rows) as one line per channel over time. */
export async function sensorChart(window: tf.Tensor | number[][], args: SensorChartArgs): Promise<Rich> {
  if (!(args && Number.isFinite(args.sampleRate) && args.sampleRate > 0))
    throw new Error(`sensorChart: sampleRate must be a positive number, got ${args?.sampleRate}`);
  const rows = await matrixRows(window, "sensorChart"); // [T][C]
  const channelCount = rows[0].length;
  const names = args.channels ?? Array.from({ length: channelCount }, (_, c) => `channel ${c}`);
  if (names.length !== channelCount) throw new Error(`sensorChart: ${names.length} channel names for ${channelCount} channels`);
  const select = args.select ?? names.map((_, c) => c);
  for (const c of select)
    if (!(Number.isInteger(c) && c >= 0 && c < channelCount))
      throw new Error(`sensorChart: select has channel ${c}; the window has channels 0…${channelCount - 1}`);
  const x = rows.map((_, t) => t / args.sampleRate);
  return linePlot(
    select.map((c) => ({ name: names[c], x, y: rows.map((row) => row[c]) })),
    {
      title: args.title ?? `${rows.length} samples at ${args.sampleRate} Hz`,
      xLabel: "seconds",
      yLabel: args.unit,
      width: args.width ?? 560,
      height: args.height,
    },
  );
}

/**
 * Scores for the answers of the VideoLLaMA lab's other modalities, read from
 * generated text: which sound event a clip holds (color and shape), which
 * activity an IMU window shows and at what cadence, which solid and color a
 * point cloud is. Class names are read with `parseClass` (the earliest class
 * word in the answer) and scored with `classificationMetrics`.
 */
import { COLOR_NAMES, SHAPE_NAMES } from "../data/vocabulary";
import { ACTIVITIES } from "../data/sensors";
import { SOLIDS } from "../data/point_cloud";
import { classificationMetrics, parseClass, type ClassificationMetrics } from "./classification";

/** A sound-event answer and its clip's true object. */
export interface AudioEventItem {
  readonly answer: string;
  readonly color: string;
  readonly shape: string;
}

/** Accuracy of naming both the color (pitch) and the shape (timbre) of the sounding object, and each alone. Chance: 1/30, 1/6, 1/5. */
export function audioEventAccuracy(items: readonly AudioEventItem[]): {
  accuracy: number;
  color: ClassificationMetrics;
  shape: ClassificationMetrics;
  count: number;
} {
  if (items.length === 0) throw new Error("audioEventAccuracy: no items");
  const colors = items.map((i) => parseClass(i.answer, COLOR_NAMES));
  const shapes = items.map((i) => parseClass(i.answer, SHAPE_NAMES));
  const correct = items.filter((i, k) => colors[k] === i.color && shapes[k] === i.shape).length;
  return {
    accuracy: correct / items.length,
    color: classificationMetrics(
      colors,
      items.map((i) => i.color),
      COLOR_NAMES,
    ),
    shape: classificationMetrics(
      shapes,
      items.map((i) => i.shape),
      SHAPE_NAMES,
    ),
    count: items.length,
  };
}

/**
 * The cadence an answer states, in strokes per second: the first number, divided
 * by 60 when "a minute" / "per minute" follows it (the cycling captions say
 * "pedalling about 72 times a minute"); undefined when the answer has no number.
 */
export function parseCadence(answer: string): number | undefined {
  const match = /(\d+(?:\.\d+)?)([^\d]*)/.exec(String(answer).toLowerCase());
  if (!match) return undefined;
  const value = Number(match[1]);
  return /^\s*(times\s+)?(a|per)\s+minute/.test(match[2]) ? value / 60 : value;
}

/** An activity answer and its window's truth. */
export interface SensorItem {
  readonly answer: string;
  readonly activity: string;
  /** Steps or pedal strokes per second. */
  readonly cadence: number;
}

/**
 * Activity classification (accuracy, macro-F1, confusion) and the cadence
 * error: mean absolute difference in strokes per second, over the windows
 * whose caption states a cadence (all but sitting) and whose answer gives a
 * number; `missing` counts those whose answer gives none.
 */
export function sensorActivityMetrics(items: readonly SensorItem[]): {
  activity: ClassificationMetrics;
  cadence: { meanAbsoluteError: number | undefined; count: number; missing: number };
} {
  if (items.length === 0) throw new Error("sensorActivityMetrics: no items");
  const activity = classificationMetrics(
    items.map((i) => parseClass(i.answer, ACTIVITIES)),
    items.map((i) => i.activity),
    ACTIVITIES,
  );
  let error = 0;
  let count = 0;
  let missing = 0;
  for (const item of items) {
    if (item.activity === "sitting") continue;
    const stated = parseCadence(item.answer);
    if (stated === undefined) missing++;
    else {
      error += Math.abs(stated - item.cadence);
      count++;
    }
  }
  return { activity, cadence: { meanAbsoluteError: count ? error / count : undefined, count, missing } };
}

/** A point-cloud answer and its cloud's truth. */
export interface PointCloudItem {
  readonly answer: string;
  readonly solid: string;
  readonly color: string;
}

/** Solid and color classification of point-cloud answers, and the accuracy of both right. Chance: 1/5, 1/6, 1/30. */
export function pointCloudMetrics(items: readonly PointCloudItem[]): {
  solid: ClassificationMetrics;
  color: ClassificationMetrics;
  both: number;
} {
  if (items.length === 0) throw new Error("pointCloudMetrics: no items");
  const solids = items.map((i) => parseClass(i.answer, SOLIDS));
  const colors = items.map((i) => parseClass(i.answer, COLOR_NAMES));
  return {
    solid: classificationMetrics(
      solids,
      items.map((i) => i.solid),
      SOLIDS,
    ),
    color: classificationMetrics(
      colors,
      items.map((i) => i.color),
      COLOR_NAMES,
    ),
    both: items.filter((i, k) => solids[k] === i.solid && colors[k] === i.color).length / items.length,
  };
}

/**
 * Video question answering by question type, for the VideoLLaMA lab: each
 * question of the world's clips is put in one type by its wording (direction,
 * speed, bounce, appear/disappear, order, count, audio-visual) and scored with
 * VQA soft accuracy (`vqaAccuracy`, ten reference answers), so a table shows
 * where temporal modelling helps (direction, order) and where one frame
 * suffices (count at the end is visible in the last frame).
 *
 * Reference: CLEVRER (Yi et al., 2020) reports accuracy per question type the
 * same way; the VQAv2 evaluation script (`vqaEval.py`) per answer type.
 */
import { vqaAccuracy } from "../data/vqa";

export const VIDEO_QUESTION_TYPES = [
  "direction",
  "speed",
  "bounce",
  "appear/disappear",
  "order",
  "count",
  "audio-visual",
  "other",
] as const;
export type VideoQuestionType = (typeof VIDEO_QUESTION_TYPES)[number];

/** Question wordings, tried in this order (the first match decides: "which way … at first" is direction, "does … bounce before …" is order). */
const PATTERNS: readonly (readonly [VideoQuestionType, RegExp])[] = [
  ["audio-visual", /\b(sound|hear|hum|ring)s?\b/],
  ["direction", /\bwhich way\b|\bwhat direction\b|\bmove (left|right|up|down)\b/],
  ["speed", /\bfast or slow\b|\bhow fast\b|\bspeed\b|\bquickly\b|\bslowly\b/],
  ["order", /\b(before|after|order|first|earlier|later)\b/],
  ["bounce", /\bbounce/],
  ["appear/disappear", /\b(appear|disappear)s?\b/],
  ["count", /\bhow many\b/],
];

/** A question's type by its wording; `"other"` when none fits (it still gets its own row). */
export function videoQuestionType(question: string): VideoQuestionType {
  const text = String(question).toLowerCase();
  for (const [type, pattern] of PATTERNS) if (pattern.test(text)) return type;
  return "other";
}

/** One scored answer. */
export interface VideoQaItem {
  readonly question: string;
  readonly prediction: string;
  /** The ten reference answers. */
  readonly answers: readonly string[];
}

export interface TypeAccuracy {
  /** Mean VQA soft accuracy. */
  readonly accuracy: number;
  readonly count: number;
}

/** Mean VQA accuracy overall and per question type (only the types present, in {@link VIDEO_QUESTION_TYPES} order). */
export function videoQaAccuracyByType(items: readonly VideoQaItem[]): {
  overall: TypeAccuracy;
  perType: Partial<Record<VideoQuestionType, TypeAccuracy>>;
} {
  if (items.length === 0) throw new Error("videoQaAccuracyByType: no items");
  const sums = new Map<VideoQuestionType, { total: number; count: number }>();
  let total = 0;
  items.forEach((item, k) => {
    if (typeof item.prediction !== "string")
      throw new Error(`videoQaAccuracyByType: item ${k} has prediction ${JSON.stringify(item.prediction)}; expected a string`);
    const score = vqaAccuracy(item.prediction, item.answers);
    const type = videoQuestionType(item.question);
    const entry = sums.get(type) ?? { total: 0, count: 0 };
    entry.total += score;
    entry.count++;
    sums.set(type, entry);
    total += score;
  });
  const perType: Partial<Record<VideoQuestionType, TypeAccuracy>> = {};
  for (const type of VIDEO_QUESTION_TYPES) {
    const entry = sums.get(type);
    if (entry) perType[type] = { accuracy: entry.total / entry.count, count: entry.count };
  }
  return { overall: { accuracy: total / items.length, count: items.length }, perType };
}

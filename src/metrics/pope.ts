/**
 * Object hallucination probed in the manner of POPE: balanced yes/no
 * questions "is there a <color> <shape> in the image?" built from the exact
 * annotations, the "yes" ones about objects in the image and as many "no" ones
 * about objects that are not, drawn three ways:
 *
 * - random: any absent color–shape pair;
 * - popular: the absent pairs most frequent over the whole set;
 * - adversarial: absent pairs that share an attribute with a present object,
 *   the annotators' confusable swap first (a red star → an orange star, a
 *   square → a diamond). POPE takes the objects that co-occur most with the
 *   present ones; the world places objects independently, so co-occurrence
 *   says nothing here, and the nearest miss is a changed attribute.
 *
 * Scored as POPE does: an answer containing the word "no" or "not" is "no",
 * any other "yes"; accuracy, precision, recall and F1 with "yes" as the
 * positive class, and the yes-ratio (near 0.5 for an unbiased model).
 *
 * Paper: Li et al., "Evaluating Object Hallucination in Large Vision-Language
 * Models" (POPE, EMNLP 2023). Reference: RUCAIBox/POPE (`evaluate.py`,
 * `utils.py` `create_question`).
 */
import { Random } from "../util/random";
import { withArticle } from "../data/captions";
import {
  COLOR_NAMES,
  CONFUSABLE_COLORS,
  CONFUSABLE_SHAPES,
  SHAPE_NAMES,
  type ColorName,
  type ShapeName,
} from "../data/vocabulary";
import { precisionRecallF1 } from "./classification";

export const POPE_NEGATIVES = ["random", "popular", "adversarial"] as const;
export type PopeNegatives = (typeof POPE_NEGATIVES)[number];

/** An annotated object (the fields used). */
export interface PopeObject {
  readonly color: string;
  readonly shape: string;
}

/** An annotated image. */
export interface PopeImage {
  readonly id: string;
  readonly objects: readonly PopeObject[];
}

export interface PopeQuestion {
  readonly imageId: string;
  readonly question: string;
  readonly answer: "yes" | "no";
  readonly color: ColorName;
  readonly shape: ShapeName;
  readonly negatives: PopeNegatives;
}

export interface PopeArgs {
  readonly negatives: PopeNegatives;
  /** "yes" questions per image at most (each matched by a "no" one). Default 3 (POPE's). */
  readonly perImage?: number;
  /** Seed of the draws. Default 0. */
  readonly seed?: number;
}

/** POPE's question: "is there a red star in the image?". */
export function popeQuestion(color: string, shape: string): string {
  return `is there ${withArticle(`${color} ${shape}`)} in the image?`;
}

const key = (color: string, shape: string) => `${color} ${shape}`;
/** Every colour-shape pair of the vocabulary, colours first (the order POPE's "popular" ties are broken in). */
export const ALL_PAIRS = COLOR_NAMES.flatMap((color) => SHAPE_NAMES.map((shape) => ({ color, shape })));

/** Balanced yes/no questions for each image (k present objects, k absent ones). */
export function buildPopeQuestions(images: readonly PopeImage[], args: PopeArgs): PopeQuestion[] {
  if (!POPE_NEGATIVES.includes(args.negatives))
    throw new Error(
      `buildPopeQuestions: negatives must be one of ${POPE_NEGATIVES.join(", ")}, got ${JSON.stringify(args.negatives)}`,
    );
  const perImage = args.perImage ?? 3;
  if (!Number.isInteger(perImage) || perImage <= 0)
    throw new Error(`buildPopeQuestions: perImage must be a positive integer, got ${perImage}`);
  const random = new Random(args.seed ?? 0);
  for (const image of images) {
    for (const o of image.objects) {
      if (!COLOR_NAMES.includes(o.color as ColorName) || !SHAPE_NAMES.includes(o.shape as ShapeName))
        throw new Error(
          `buildPopeQuestions: image ${JSON.stringify(image.id)} has an object ${JSON.stringify(o)}; expected a color of ${COLOR_NAMES.join(", ")} and a shape of ${SHAPE_NAMES.join(", ")}`,
        );
    }
  }
  // Images containing each pair, for "popular" (ties: vocabulary order).
  const frequency = new Map<string, number>();
  for (const image of images)
    for (const k of new Set(image.objects.map((o) => key(o.color, o.shape)))) frequency.set(k, (frequency.get(k) ?? 0) + 1);
  const byPopularity = ALL_PAIRS.map((p, order) => ({ ...p, order, count: frequency.get(key(p.color, p.shape)) ?? 0 })).sort(
    (a, b) => b.count - a.count || a.order - b.order,
  );
  const out: PopeQuestion[] = [];
  for (const image of images) {
    const present = new Set(image.objects.map((o) => key(o.color, o.shape)));
    const presentPairs = ALL_PAIRS.filter((p) => present.has(key(p.color, p.shape)));
    const positives = random.shuffle(presentPairs).slice(0, perImage);
    const absent = (p: { color: string; shape: string }) => !present.has(key(p.color, p.shape));
    let ranked: { color: ColorName; shape: ShapeName }[];
    if (args.negatives === "random") ranked = random.shuffle(ALL_PAIRS.filter(absent));
    else if (args.negatives === "popular") ranked = byPopularity.filter(absent);
    else {
      const swaps = random.shuffle(
        presentPairs.flatMap((p) => [
          { color: CONFUSABLE_COLORS[p.color], shape: p.shape },
          { color: p.color, shape: CONFUSABLE_SHAPES[p.shape] },
        ]),
      );
      const sharing = random.shuffle(
        ALL_PAIRS.filter((p) => presentPairs.some((q) => q.color === p.color || q.shape === p.shape)),
      );
      ranked = [...swaps, ...sharing, ...random.shuffle(ALL_PAIRS)].filter(absent);
    }
    const negatives = [...new Map(ranked.map((p) => [key(p.color, p.shape), p])).values()].slice(0, positives.length);
    if (negatives.length < positives.length)
      throw new Error(
        `buildPopeQuestions: image ${JSON.stringify(image.id)} leaves only ${negatives.length} absent pairs for ${positives.length} present ones`,
      );
    for (const [answer, pairs] of [
      ["yes", positives],
      ["no", negatives],
    ] as const) {
      for (const p of pairs)
        out.push({
          imageId: image.id,
          question: popeQuestion(p.color, p.shape),
          answer,
          color: p.color,
          shape: p.shape,
          negatives: args.negatives,
        });
    }
  }
  return out;
}

/** POPE's answer rule: the word "no" or "not" → "no", anything else → "yes". */
export function parseYesNo(answer: string): "yes" | "no" {
  const words = String(answer)
    .toLowerCase()
    .replace(/[.,!?;:]/g, " ")
    .split(/\s+/);
  return words.includes("no") || words.includes("not") ? "no" : "yes";
}

export interface PopeMetrics {
  readonly accuracy: number;
  /** Of the "yes" answers, the fraction right. */
  readonly precision: number;
  /** Of the objects present, the fraction answered "yes". */
  readonly recall: number;
  readonly f1: number;
  /** Fraction of "yes" answers. */
  readonly yesRatio: number;
  readonly count: number;
}

/** POPE's metrics of answers (free text) against the questions' true answers. */
export function popeMetrics(answers: readonly string[], truths: readonly ("yes" | "no")[]): PopeMetrics {
  if (answers.length !== truths.length) throw new Error(`popeMetrics: ${answers.length} answers but ${truths.length} questions`);
  if (answers.length === 0) throw new Error("popeMetrics: no answers");
  let [tp, fp, tn, fn] = [0, 0, 0, 0];
  answers.forEach((answer, k) => {
    if (truths[k] !== "yes" && truths[k] !== "no")
      throw new Error(`popeMetrics: truth ${k} is ${JSON.stringify(truths[k])}; expected "yes" or "no"`);
    const said = parseYesNo(answer);
    if (said === "yes") {
      if (truths[k] === "yes") tp++;
      else fp++;
    } else if (truths[k] === "no") tn++;
    else fn++;
  });
  const n = answers.length;
  return { accuracy: (tp + tn) / n, ...precisionRecallF1(tp, fp, fn), yesRatio: (tp + fp) / n, count: n };
}

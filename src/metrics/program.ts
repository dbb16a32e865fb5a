/**
 * Code generation scored by execution: each generated drawing program is run
 * (`scoreProgram` renders it and the reference) and its pixels compared with
 * the image's; plus the exact-program rate (the same text, line for line).
 *
 * - runs: the fraction that parse and draw;
 * - pixelAgreement: the mean fraction of pixels that agree (0 when it fails);
 * - samePixels: the fraction whose render agrees on at least
 *   `pixelThreshold` of the pixels. Default 0.99, measured on a two-object
 *   program: a small diamond moved by 1 px agrees on 0.987 of the pixels, made
 *   a square 0.983, made red instead of orange 0.973, dropped 0.973; so 0.99
 *   asks for the same objects at the same pixels (the backgrounds are pale
 *   enough to agree with each other within the tolerance);
 * - objectMatch: the same objects within 2 px, any order (`scoreProgram`);
 * - exactProgram: the program text equals the reference (lines trimmed).
 *
 * Paper: Chen et al., "Evaluating Large Language Models Trained on Code"
 * (HumanEval, 2021): functional correctness by execution, here with pictures
 * for tests.
 */
import { scoreProgram, type ProgramScore } from "../data/drawing_language";

export interface ProgramMetrics {
  readonly runs: number;
  readonly pixelAgreement: number;
  readonly samePixels: number;
  readonly objectMatch: number;
  readonly exactProgram: number;
  readonly count: number;
}

export interface ProgramMetricsArgs {
  /** Pixel agreement at which a render counts as the same picture. Default 0.99. */
  readonly pixelThreshold?: number;
  /** Canvas size. Default 64. */
  readonly canvas?: number;
}

/** A program's lines, trimmed, blank lines dropped. */
export function normalizeProgram(program: string): string {
  return String(program)
    .split("\n")
    .map((line) => line.trim().replace(/\s+/g, " "))
    .filter((line) => line.length > 0)
    .join("\n");
}

/** Scores each generated program against its reference; @returns the metrics and each item's `scoreProgram` result. */
export async function programMetrics(
  predictions: readonly string[],
  references: readonly string[],
  args: ProgramMetricsArgs = {},
): Promise<{ metrics: ProgramMetrics; scores: ProgramScore[] }> {
  if (predictions.length !== references.length)
    throw new Error(`programMetrics: ${predictions.length} programs but ${references.length} references`);
  if (predictions.length === 0) throw new Error("programMetrics: no programs");
  const threshold = args.pixelThreshold ?? 0.99;
  if (!(threshold > 0 && threshold <= 1)) throw new Error(`programMetrics: pixelThreshold must be in (0, 1], got ${threshold}`);
  const scores: ProgramScore[] = [];
  for (let k = 0; k < predictions.length; k++) scores.push(await scoreProgram(predictions[k], references[k], args.canvas ?? 64));
  const n = predictions.length;
  const fraction = (test: (score: ProgramScore, k: number) => boolean) => scores.filter(test).length / n;
  return {
    metrics: {
      runs: fraction((s) => s.runs),
      pixelAgreement: scores.reduce((sum, s) => sum + s.pixelAgreement, 0) / n,
      samePixels: fraction((s) => s.runs && s.pixelAgreement >= threshold),
      objectMatch: fraction((s) => s.exactMatch),
      exactProgram: fraction((_, k) => normalizeProgram(predictions[k]) === normalizeProgram(references[k])),
      count: n,
    },
    scores,
  };
}

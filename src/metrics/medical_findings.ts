/**
 * Medical findings scored field by field against the annotated lesions:
 * the generated findings sentence is parsed back into lesions (quadrant,
 * size, appearance) and compared with the annotation.
 *
 * - count: the stated number of lesions equals the true one (accuracy) and
 *   the mean absolute error;
 * - location: a predicted lesion in a quadrant that holds a lesion is a true
 *   positive (the world puts at most one lesion per quadrant);
 * - size, appearance: a predicted (quadrant, size) or (quadrant, appearance)
 *   that matches the lesion there;
 * - lesion: all three fields right.
 *
 * Precision, recall and F1 are micro-averaged over the test set (counts
 * summed, then divided), as in CheXpert-style finding labellers; a sentence
 * that cannot be parsed predicts no lesion and no count.
 *
 * The findings language is the world's (`describeFindings` in data/medical.ts):
 * "two lesions: a large bright lesion in the lower left and a small dark
 * lesion in the upper right." or "no lesions are seen. the organ looks normal."
 */
import { precisionRecallF1, type PrecisionRecallF1 } from "./classification";

/** A lesion's scored fields. */
export interface FindingLesion {
  readonly location: string;
  readonly size: string;
  readonly appearance: string;
}

/** What a findings sentence says. */
export interface ParsedFindings {
  /** The stated number of lesions (the count word, else the lesions listed), undefined when it says neither. */
  readonly count: number | undefined;
  readonly lesions: readonly FindingLesion[];
}

const COUNT_WORDS: Record<string, number> = { no: 0, zero: 0, one: 1, two: 2, three: 3, four: 4 };
const LESION = /\b(small|large)\s+(bright|dark)\s+lesion\s+in\s+the\s+(upper|lower)\s+(left|right)\b/g;

/** Parses a findings sentence (see the header). */
export function parseFindings(text: string): ParsedFindings {
  const lower = String(text).toLowerCase();
  const lesions: FindingLesion[] = [];
  for (const match of lower.matchAll(LESION))
    lesions.push({ size: match[1], appearance: match[2], location: `${match[3]} ${match[4]}` });
  const stated = /^\s*(no|zero|one|two|three|four|\d+)\s+lesions?\b/.exec(lower);
  const count = stated ? (COUNT_WORDS[stated[1]] ?? Number(stated[1])) : lesions.length ? lesions.length : undefined;
  return { count, lesions };
}

export interface MedicalFindingsMetrics {
  /** Fraction of reports stating the right number of lesions. */
  readonly countAccuracy: number;
  /** Mean |stated − true| over the reports that state a count. */
  readonly countMeanAbsoluteError: number;
  /** Fraction of reports that state a count or a lesion. */
  readonly parsed: number;
  readonly location: PrecisionRecallF1;
  readonly size: PrecisionRecallF1;
  readonly appearance: PrecisionRecallF1;
  readonly lesion: PrecisionRecallF1;
  readonly count: number;
}

/** Scores generated findings against each report's annotated lesions. */
export function medicalFindingsMetrics(
  predictions: readonly string[],
  truths: readonly (readonly FindingLesion[])[],
): MedicalFindingsMetrics {
  if (predictions.length !== truths.length)
    throw new Error(`medicalFindingsMetrics: ${predictions.length} reports but ${truths.length} annotations`);
  if (predictions.length === 0) throw new Error("medicalFindingsMetrics: no reports");
  const fields = ["location", "size", "appearance", "lesion"] as const;
  const counts = Object.fromEntries(fields.map((f) => [f, { tp: 0, fp: 0, support: 0 }])) as Record<
    (typeof fields)[number],
    { tp: number; fp: number; support: number }
  >;
  let [countRight, absoluteError, stated, parsed] = [0, 0, 0, 0];
  predictions.forEach((prediction, k) => {
    const truth = truths[k];
    const found = parseFindings(prediction);
    if (found.count !== undefined) {
      stated++;
      absoluteError += Math.abs(found.count - truth.length);
      if (found.count === truth.length) countRight++;
    }
    if (found.count !== undefined || found.lesions.length) parsed++;
    const seen = new Set<string>();
    for (const lesion of found.lesions) {
      if (seen.has(lesion.location)) continue; // a quadrant named twice counts once
      seen.add(lesion.location);
      const there = truth.find((t) => t.location === lesion.location);
      const right = {
        location: !!there,
        size: there?.size === lesion.size,
        appearance: there?.appearance === lesion.appearance,
        lesion: there?.size === lesion.size && there?.appearance === lesion.appearance,
      };
      for (const f of fields) {
        if (right[f]) counts[f].tp++;
        else counts[f].fp++;
      }
    }
    for (const f of fields) counts[f].support += truth.length;
  });
  const score = (f: (typeof fields)[number]) => ({
    ...precisionRecallF1(counts[f].tp, counts[f].fp, counts[f].support - counts[f].tp),
    support: counts[f].support,
  });
  return {
    countAccuracy: countRight / predictions.length,
    countMeanAbsoluteError: stated ? absoluteError / stated : NaN,
    parsed: parsed / predictions.length,
    location: score("location"),
    size: score("size"),
    appearance: score("appearance"),
    lesion: score("lesion"),
    count: predictions.length,
  };
}

/**
 * Classification metrics for generated answers: accuracy, per-class
 * precision, recall and F1, macro-F1 (the unweighted mean over classes, as
 * scikit-learn's `f1_score(average="macro")`), and the confusion matrix. An
 * answer that names no class counts as wrong (it is a false negative of its
 * true class and a prediction of no class).
 *
 * For the sentiment set, {@link sentimentMetrics} also scores the items where
 * the face and the text disagree: there neither modality alone gives the label.
 *
 * Reference: scikit-learn `metrics/_classification.py`
 * (`precision_recall_fscore_support`; a class with no predictions has precision 0).
 */

/** Precision, recall and F1 of one class; 0 where the denominator is 0 (scikit-learn's `zero_division=0`). */
export interface PrecisionRecallF1 {
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** Items whose true class this is. */
  readonly support: number;
}

export interface ClassificationMetrics {
  readonly accuracy: number;
  readonly macroF1: number;
  readonly perClass: Record<string, PrecisionRecallF1>;
  /** confusion[true][predicted], with predicted "(none)" for answers naming no class. */
  readonly confusion: Record<string, Record<string, number>>;
  readonly count: number;
}

/** The class name an answer gives: the earliest class word in it (whole words, case-insensitive), or undefined. */
export function parseClass(answer: string, classes: readonly string[]): string | undefined {
  const text = String(answer).toLowerCase();
  let best: { name: string; at: number } | undefined;
  for (const name of classes) {
    const match = new RegExp(`\\b${name.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\b`).exec(text);
    if (match && (!best || match.index < best.at)) best = { name, at: match.index };
  }
  return best?.name;
}

/** P/R/F1 from counts. */
export function precisionRecallF1(
  truePositives: number,
  falsePositives: number,
  falseNegatives: number,
): Omit<PrecisionRecallF1, "support"> {
  const precision = truePositives + falsePositives ? truePositives / (truePositives + falsePositives) : 0;
  const recall = truePositives + falseNegatives ? truePositives / (truePositives + falseNegatives) : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/**
 * Scores predicted class names (undefined: no class) against true ones.
 * @param classes every class (macro-F1 averages over all of them, present or not in this sample)
 */
export function classificationMetrics(
  predictions: readonly (string | undefined)[],
  labels: readonly string[],
  classes: readonly string[],
): ClassificationMetrics {
  if (predictions.length !== labels.length)
    throw new Error(`classificationMetrics: ${predictions.length} predictions but ${labels.length} labels`);
  if (labels.length === 0) throw new Error("classificationMetrics: no items");
  if (new Set(classes).size !== classes.length || classes.length === 0)
    throw new Error(`classificationMetrics: classes must be distinct and non-empty, got ${JSON.stringify(classes)}`);
  labels.forEach((label, k) => {
    if (!classes.includes(label))
      throw new Error(`classificationMetrics: label ${k} is ${JSON.stringify(label)}; expected one of ${classes.join(", ")}`);
  });
  predictions.forEach((p, k) => {
    if (p !== undefined && !classes.includes(p))
      throw new Error(
        `classificationMetrics: prediction ${k} is ${JSON.stringify(p)}; expected one of ${classes.join(", ")} or undefined`,
      );
  });
  const none = "(none)";
  const confusion: Record<string, Record<string, number>> = Object.fromEntries(
    classes.map((c) => [c, Object.fromEntries([...classes, none].map((p) => [p, 0]))]),
  );
  labels.forEach((label, k) => confusion[label][predictions[k] ?? none]++);
  const perClass: Record<string, PrecisionRecallF1> = {};
  for (const c of classes) {
    const tp = confusion[c][c];
    const fp = classes.reduce((sum, other) => sum + (other === c ? 0 : confusion[other][c]), 0);
    const support = Object.values(confusion[c]).reduce((a, b) => a + b, 0);
    perClass[c] = { ...precisionRecallF1(tp, fp, support - tp), support };
  }
  const correct = labels.reduce((sum, label, k) => sum + (predictions[k] === label ? 1 : 0), 0);
  return {
    accuracy: correct / labels.length,
    macroF1: classes.reduce((sum, c) => sum + perClass[c].f1, 0) / classes.length,
    perClass,
    confusion,
    count: labels.length,
  };
}

/** A sentiment item: the model's answer and the record's annotations. */
export interface SentimentItem {
  readonly answer: string;
  readonly label: string;
  readonly face: string;
  readonly textSentiment: string;
}

export const SENTIMENT_CLASSES = ["positive", "negative", "neutral"] as const;

/** Sentiment accuracy and macro-F1 on all items and on those where face and text disagree. */
export function sentimentMetrics(items: readonly SentimentItem[]): {
  all: ClassificationMetrics;
  disagreeing: ClassificationMetrics | undefined;
} {
  const score = (subset: readonly SentimentItem[]) =>
    classificationMetrics(
      subset.map((i) => parseClass(i.answer, SENTIMENT_CLASSES)),
      subset.map((i) => i.label),
      SENTIMENT_CLASSES,
    );
  const disagreeing = items.filter((i) => i.face !== i.textSentiment);
  return { all: score(items), disagreeing: disagreeing.length ? score(disagreeing) : undefined };
}

/**
 * The single-modality rules a skeptic asks about, scored like the model:
 * text only (answer the text's sentiment) and face only (answer the face's).
 * Each is the best a model reading one side can do on items where that side
 * decides the label; on the disagreeing items the combined label follows
 * neither side alone half the time or more.
 */
export function sentimentRuleBaselines(items: readonly Omit<SentimentItem, "answer">[]): {
  textOnly: ReturnType<typeof sentimentMetrics>;
  faceOnly: ReturnType<typeof sentimentMetrics>;
} {
  return {
    textOnly: sentimentMetrics(items.map((i) => ({ ...i, answer: i.textSentiment }))),
    faceOnly: sentimentMetrics(items.map((i) => ({ ...i, answer: i.face }))),
  };
}

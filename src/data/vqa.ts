/**
 * Visual question answering about scenes, in the style of VQAv2
 * (Goyal et al., 2017, "Making the V in VQA Matter"): each question comes with
 * ten human-like reference answers, mostly agreeing, sometimes not, and is
 * scored with VQA's soft accuracy, min(#matching references / 3, 1) averaged
 * over the ten leave-one-out subsets (the official evaluation script's rule).
 *
 * Question types: color, shape, count, existence, spatial relation (yes/no or
 * open). Answers are single words or numbers as digits.
 */
import { Random } from "../util/random";
import type { Scene, SceneObject } from "./scene";
import { objectName, relation, withArticle } from "./captions";
import { COLOR_NAMES, CONFUSABLE_COLORS, CONFUSABLE_SHAPES, SHAPE_NAMES, plural, type ColorName, type ShapeName } from "./vocabulary";

export type QuestionType = "color" | "shape" | "count" | "exist" | "relation";

/** Every question type, in the order tables and `askQuestions` list them. */
export const QUESTION_TYPES: readonly QuestionType[] = ["color", "shape", "count", "exist", "relation"];

export interface VqaPair {
  readonly question: string;
  readonly type: QuestionType;
  /** The true answer. */
  readonly answer: string;
  /** Ten annotators' answers (VQAv2's `answers`); most equal `answer`. */
  readonly answers: readonly string[];
}

const NUMBER_WORDS: Record<string, string> = { none: "0", zero: "0", one: "1", two: "2", three: "3", four: "4", five: "5", six: "6", seven: "7", eight: "8", nine: "9", ten: "10" };

/** VQA's answer normalisation: lower case, no punctuation or articles, number words as digits. */
export function normalizeAnswer(answer: string): string {
  return answer
    .toLowerCase()
    .replace(/[.,!?;:"']/g, "")
    .split(/\s+/)
    .filter((w) => w && !["a", "an", "the"].includes(w))
    .map((w) => NUMBER_WORDS[w] ?? w)
    .join(" ");
}

/** VQAv2 soft accuracy of one prediction against ten reference answers, in [0, 1]. */
export function vqaAccuracy(prediction: string, answers: readonly string[]): number {
  if (answers.length === 0) throw new Error("vqaAccuracy: no reference answers");
  const predicted = normalizeAnswer(prediction);
  const refs = answers.map(normalizeAnswer);
  let total = 0;
  for (let left = 0; left < refs.length; left++) {
    let matches = 0;
    for (let k = 0; k < refs.length; k++) if (k !== left && refs[k] === predicted) matches++;
    total += Math.min(1, matches / 3);
  }
  return total / refs.length;
}

/** Per-question scores averaged overall and per question type: `{prefix}vqa_accuracy`, `{prefix}vqa_{type}_accuracy` (types present only). */
function scoresByType(prefix: string, scores: readonly number[], questions: readonly { type: QuestionType }[]): Record<string, number> {
  const mean = (values: readonly number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  const out: Record<string, number> = {};
  if (scores.length === 0) return out;
  out[`${prefix}vqa_accuracy`] = mean(scores);
  for (const type of QUESTION_TYPES) {
    const own = scores.filter((_, k) => questions[k].type === type);
    if (own.length) out[`${prefix}vqa_${type}_accuracy`] = mean(own);
  }
  return out;
}

/** VQA soft accuracy of `answers` (one per question) overall and per question type. */
export function vqaScores(
  prefix: string,
  answers: readonly string[],
  questions: readonly Pick<VqaPair, "type" | "answers">[],
): Record<string, number> {
  if (answers.length !== questions.length) throw new Error(`vqaScores: ${answers.length} answers for ${questions.length} questions`);
  return scoresByType(
    prefix,
    questions.map((q, k) => vqaAccuracy(answers[k], q.answers)),
    questions,
  );
}

/** Chance: the expected soft accuracy of a uniform guess among the answers the annotators gave each question type. */
export function chanceVqaScores(questions: readonly Pick<VqaPair, "type" | "answers">[]): Record<string, number> {
  const answerSets = new Map(QUESTION_TYPES.map((t) => [t, [...new Set(questions.filter((q) => q.type === t).flatMap((q) => q.answers))]]));
  const expected = questions.map((q) => {
    const guesses = answerSets.get(q.type)!;
    return guesses.reduce((sum, guess) => sum + vqaAccuracy(guess, q.answers), 0) / guesses.length;
  });
  return scoresByType("", expected, questions);
}

/**
 * Ten annotators' answers: each gives `truth`, except with probability
 * `disagreement` a plausible other answer from `alternative`.
 */
export function annotate(random: Random, truth: string, alternative: () => string, disagreement = 0.1): string[] {
  return Array.from({ length: 10 }, () => (random.next() < disagreement ? alternative() : truth));
}

function countOf(scene: Scene, test: (o: SceneObject) => boolean): number {
  return scene.objects.filter(test).length;
}

function unique<T>(items: readonly T[], key: (t: T) => string): T[] {
  return items.filter((item) => items.filter((other) => key(other) === key(item)).length === 1);
}

/** One question of the given type about a scene, or undefined when the type does not fit it. */
export function askQuestion(scene: Scene, type: QuestionType, random: Random): VqaPair | undefined {
  const objects = scene.objects;
  const flip = () => (random.next() < 0.5 ? "yes" : "no");
  switch (type) {
    case "color": {
      const candidates = unique(objects, (o) => o.shape);
      if (!candidates.length) return undefined;
      const o = candidates[random.int(0, candidates.length)];
      const truth = o.color;
      return { type, question: random.next() < 0.5 ? `what color is the ${o.shape}?` : `which color does the ${o.shape} have?`, answer: truth, answers: annotate(random, truth, () => CONFUSABLE_COLORS[truth]) };
    }
    case "shape": {
      const candidates = unique(objects, (o) => o.color);
      if (!candidates.length) return undefined;
      const o = candidates[random.int(0, candidates.length)];
      const truth = o.shape;
      return { type, question: `what shape is the ${o.color} object?`, answer: truth, answers: annotate(random, truth, () => CONFUSABLE_SHAPES[truth as ShapeName]) };
    }
    case "count": {
      const byShape = random.next() < 0.5;
      let question: string;
      let n: number;
      if (byShape) {
        const shape = SHAPE_NAMES[random.int(0, SHAPE_NAMES.length)];
        n = countOf(scene, (o) => o.shape === shape);
        question = `how many ${plural(shape)} are there?`;
      } else if (random.next() < 0.5) {
        const color = COLOR_NAMES[random.int(0, COLOR_NAMES.length)];
        n = countOf(scene, (o) => o.color === color);
        question = `how many ${color} objects are there?`;
      } else {
        n = objects.length;
        question = "how many objects are there?";
      }
      const truth = String(n);
      return { type, question, answer: truth, answers: annotate(random, truth, () => String(Math.max(0, n + (random.next() < 0.5 ? -1 : 1)))) };
    }
    case "exist": {
      // Half the time ask about an object that is there, half about one that is not.
      const present = flip() === "yes";
      let color: ColorName;
      let shape: ShapeName;
      if (present) {
        const o = objects[random.int(0, objects.length)];
        color = o.color;
        shape = o.shape;
      } else {
        do {
          color = COLOR_NAMES[random.int(0, COLOR_NAMES.length)];
          shape = SHAPE_NAMES[random.int(0, SHAPE_NAMES.length)];
        } while (objects.some((o) => o.color === color && o.shape === shape));
      }
      const truth = present ? "yes" : "no";
      return { type, question: `is there ${withArticle(`${color} ${shape}`)}?`, answer: truth, answers: annotate(random, truth, () => (truth === "yes" ? "no" : "yes"), 0.05) };
    }
    case "relation": {
      const named = unique(objects, (o) => objectName(o));
      if (named.length < 2) return undefined;
      const i = random.int(0, named.length);
      let j = random.int(0, named.length - 1);
      if (j >= i) j++;
      const [a, b] = [named[i], named[j]];
      const actual = relation(a, b);
      if (random.next() < 0.5) {
        const word = actual.replace("to the ", "").replace(" of", ""); // left / right / above / below
        return { type, question: `where is the ${objectName(a)} relative to the ${objectName(b)}?`, answer: word, answers: annotate(random, word, () => ({ left: "above", right: "below", above: "left", below: "right" })[word] ?? word, 0.15) };
      }
      const asked = random.next() < 0.5 ? actual : (["to the left of", "to the right of", "above", "below"] as const)[random.int(0, 4)];
      const truth = asked === actual ? "yes" : "no";
      return { type, question: `is the ${objectName(a)} ${asked} the ${objectName(b)}?`, answer: truth, answers: annotate(random, truth, () => (truth === "yes" ? "no" : "yes"), 0.1) };
    }
    default:
      throw new Error(`askQuestion: unknown question type ${JSON.stringify(type)}`);
  }
}

/** `count` questions of mixed types about a scene (types that do not fit are skipped). */
export function askQuestions(scene: Scene, random: Random, count = 3): VqaPair[] {
  const out: VqaPair[] = [];
  for (let tries = 0; out.length < count && tries < 20; tries++) {
    const pair = askQuestion(scene, QUESTION_TYPES[random.int(0, QUESTION_TYPES.length)], random);
    if (pair && !out.some((p) => p.question === pair.question)) out.push(pair);
  }
  return out;
}

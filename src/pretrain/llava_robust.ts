/**
 * `npm run pretrain -- llava-robust` and `-- llava-robust-blind`: lab 02's LLaVA tuned against object hallucination.
 * The general LLaVA (../llava) says "yes" to about two thirds of POPE's balanced questions ("is there a red star in the
 * image?"): it names objects that are not there. It answers its own training scenes no better than the test scenes, so
 * it underfits existence (docs/lab02-plan.md, "Code and POPE are training signal"): a few existence questions among a
 * scene conversation's rounds are too little signal. LRV-Instruction's remedy is robust instruction tuning: many
 * negative instructions, questions about objects that are absent, answered "no", beside the positive ones. This run
 * tunes llava's projector and LLM in full (the tower frozen, as in stage 2) on conversations of existence questions
 * about scenes drawn fresh, with llava's own stage-2 mixture replayed so that VQA and the domains are not forgotten.
 * Each present pair is matched by one absent pair, so that half the answers are "yes" as in POPE, and the absent pairs
 * are drawn to be hard: most of llava's hallucinations are **binding** errors, a colour of one object said to be on the
 * shape of another (`bench/llava_pope_errors.js`), so one absent pair in three is such a pair. Each question is asked
 * alone, as POPE asks it, and a scene's questions share one pass over its image (`packQuestions`: shared-prefix
 * packing), so that no answer can be read off the answers before it. It is a run of its own on
 * the committed llava, not a stage of llava's plan, so that the models built on llava (the domain adapters, lora-sweep,
 * the storyteller, llava-code) keep their base.
 *
 * Its blind baseline, `llava-robust-blind`, is the blind twin (../llava-blind) tuned the same way on the same
 * conversations with the image removed: what the questions' wording and the world's object frequencies give.
 * `mllm-labs eval` measures both, with ../llava before tuning, on VQA and POPE (the card's `eval_options`).
 *
 * Papers: Liu et al., "Mitigating Hallucination in Large Multi-Modal Models via Robust Instruction Tuning"
 * (LRV-Instruction, ICLR 2024); Li et al., "Evaluating Object Hallucination in Large Vision-Language Models" (POPE, EMNLP
 * 2023). Reference: FuxiaoLiu/LRV-Instruction, RUCAIBox/POPE.
 */
import { conversationFromPairs } from "../data/llava_instructions";
import { sampleScene, sceneSvg, svgToRgb, type SceneObject } from "../data/scene";
import { SCENE_COUNT_WEIGHTS } from "../data/world";
import { ALL_PAIRS, popeQuestion } from "../metrics/pope";
import { Random } from "../util/random";
import {
  EXISTENCE_STAGE_SEED_OFFSET,
  LLAVA_NEIGHBOURS,
  LLAVA_PLAN,
  llavaTrainingData,
  type LlavaPlan,
  type LlavaTestSet,
} from "./llava";
import { llavaDomainMarkdown } from "./llava_domain";
import { runLlavaFullTune, type FullTuneExample, type LlavaFullTuneCard } from "./llava_full_tune";
import type { LlavaLossWeighting } from "./llava_training";
import { checkObjectMapObjective, type ObjectMapObjective } from "./object_map";
import type { PretrainArgs } from "./vision";

/** How llava-robust (and its blind twin) is tuned. */
export interface LlavaRobustPlan {
  /** Optimiser steps. Default 1,500. */
  readonly steps: number;
  /** Conversations per step. Default 16. */
  readonly batchSize: number;
  /** Peak learning rate (warm-up over min(50, steps / 10) steps, cosine to 0.1 of it). Default 5e-4. */
  readonly learningRate: number;
  /** Scenes drawn fresh (seed + 71, llava's existence stage's: the world's generator), each one conversation of existence questions. Default 20,000. */
  readonly existenceScenes: number;
  /** Present pairs asked per scene at most, each matched by one absent pair. Default 3 (POPE's). */
  readonly presentPerScene: number;
  /**
   * How the absent pair matched with the k-th present pair is drawn: `negatives[k % negatives.length]`
   * ({@link RobustNegative}). Default `["binding", "adversarial", "random"]`.
   */
  readonly negatives: readonly RobustNegative[];
  /**
   * An object-map objective beside the language loss (`object_map.ts`): each image token asked, through a linear
   * read-out dropped afterwards, which colour–shape pairs have their centre in its cell (the existence scenes and the
   * replayed scenes; the domain images carry no annotation). A binding pair is a conjunction, and this puts it in the
   * token a question's attention can find. The blind twin has no image tokens and trains as without it. Default none.
   * At weight 2 the projector learnt the map and POPE F1 fell to 0.807 / 0.822 / 0.796: more "no" to binding pairs, less
   * recall in crowded scenes (docs/lab02-plan.md, "Three tunes against binding").
   */
  readonly objectMap?: ObjectMapObjective;
  /**
   * Existence questions per conversation, drawn anew from the scene's rounds at each draw, as POPE asks them when 1.
   * Absent (and without `packQuestions`): every round in one conversation, in a new order each time. In such a
   * conversation the earlier answers give the later ones away (half the rounds are "yes"; a binding pair is asked beside
   * the objects it borrows from), and llava-robust tuned that way answered from them: "no" to 0.24 of binding pairs asked alone and to
   * 0.97 after two true "yes" turns about their objects, "yes" to 0.76 of present pairs alone and to 0.06 after two
   * such turns (`node bench/llava_existence_history.js`). Tuned on one question per conversation (with `lossWeighting`
   * "conversation") it leans on them far less (0.39 → 0.51; 0.64 → 0.49) but reads the image no better: POPE F1
   * 0.782 / 0.787 / 0.769 (docs/lab02-plan.md, "Three tunes against binding").
   */
  readonly questionsPerConversation?: number;
  /**
   * Every round of a scene asked alone, as POPE asks, and the scene's questions packed after the image in one row
   * (`packBranches`, shared-prefix packing: each question attends to the image and to itself only): POPE's format with
   * all of the scene's questions per image, at the cost of one conversation. Excludes `questionsPerConversation`.
   * Default false; the committed plan sets it. Against every round in one conversation, POPE F1 0.857 / 0.859 / 0.833
   * from 0.845 / 0.849 / 0.824 (docs/lab02-plan.md, "Packed questions").
   */
  readonly packQuestions?: boolean;
  /**
   * How the loss averages the supervised tokens ({@link LlavaLossWeighting}). Absent: per token (`token`, the committed
   * plan). `conversation` weighs each conversation the same, so that one-word answers asked alone are not outweighed by
   * the replayed descriptions' many tokens.
   */
  readonly lossWeighting?: LlavaLossWeighting;
  /**
   * Each step's rows in two parts of similar length, each padded to its own longest (`splitByLength`): the same loss
   * and gradient as the padded batch up to the order of floating-point sums, in less time, since the replayed scene
   * conversations (about 210 tokens) would pad the packed existence rows (about 150) and the domains' (107–135).
   * The sighted run refuses it with `objectMap` (`runLlavaFullTune`). Default false: the committed checkpoints were trained in one part.
   */
  readonly splitByLength?: boolean;
  /** The plan whose stage-2 mixture is replayed beside them: llava's own (the card's). Smoke tests pass a smaller one. */
  readonly replay: LlavaPlan;
  /** What `mllm-labs eval` of the folder measures (the card's `eval_options`): VQA and POPE, all of them. */
  readonly evaluation: { readonly sets: readonly LlavaTestSet[]; readonly limit?: number };
}

/** The committed plan (`npm run pretrain -- llava-robust`; `-- llava-robust-blind` follows it without the image). */
export const LLAVA_ROBUST_PLAN: LlavaRobustPlan = {
  steps: 1500,
  batchSize: 16,
  learningRate: 5e-4,
  existenceScenes: 20000,
  presentPerScene: 3,
  negatives: ["binding", "adversarial", "random"],
  packQuestions: true,
  replay: LLAVA_PLAN,
  evaluation: { sets: ["vqa", "pope"] },
};

/** Added to the run's seed for the batch order and the rounds' order: apart from llava's draws (3, 61–79) and llava-code's (83, 84). */
export const ROBUST_STAGE_SEED_OFFSET = 91;

/** The folders beside llava-robust: its base, its blind twin and the twin's base. */
export const LLAVA_ROBUST_NEIGHBOURS = {
  base: LLAVA_NEIGHBOURS.llava,
  blind: "../llava-robust-blind",
  blindBase: LLAVA_NEIGHBOURS.blind,
  robust: "../llava-robust",
} as const;

/**
 * How an absent pair is drawn for a scene: `random` (any absent colour and shape), `adversarial` (an absent pair that
 * shares its colour or its shape with an object of the scene: POPE's adversarial kind) or `binding` (the colour of one
 * object of the scene with the shape of another: both are in the image, never together; a one-object scene has none
 * and falls back to `adversarial`). `bench/llava_pope_errors.js` found the binding pairs to be the hardest: llava says
 * "no" to 0.10–0.28 of them (to 0.61–0.81 of pairs sharing the shape alone), and a first tune on the existence stage's
 * questions to 0.38–0.53 (0.99–1.00). Tuned with them, llava-robust says "no" to 0.27–0.42: they did not teach binding
 * (docs/lab02-plan.md, "`llava-robust`").
 */
export type RobustNegative = "random" | "adversarial" | "binding";
const ROBUST_NEGATIVES: readonly RobustNegative[] = ["random", "adversarial", "binding"];

/** Checks a plan before any scene is drawn; each error quotes the bad value. */
export function checkRobustPlan(plan: LlavaRobustPlan): void {
  for (const field of ["steps", "batchSize", "existenceScenes", "presentPerScene"] as const)
    if (!(Number.isInteger(plan[field]) && plan[field] > 0))
      throw new Error(`llava-robust: ${field} must be a positive integer, got ${JSON.stringify(plan[field])}`);
  if (!(plan.learningRate > 0 && Number.isFinite(plan.learningRate)))
    throw new Error(`llava-robust: learningRate must be a positive number, got ${String(plan.learningRate)}`);
  if (!(Array.isArray(plan.negatives) && plan.negatives.length > 0 && plan.negatives.every((n) => ROBUST_NEGATIVES.includes(n))))
    throw new Error(
      `llava-robust: negatives must be a non-empty list of ${ROBUST_NEGATIVES.join(", ")}, got ${JSON.stringify(plan.negatives)}`,
    );
  const questions = plan.questionsPerConversation;
  if (questions !== undefined && !(Number.isInteger(questions) && questions > 0))
    throw new Error(`llava-robust: questionsPerConversation must be a positive integer, got ${JSON.stringify(questions)}`);
  if (plan.packQuestions !== undefined && typeof plan.packQuestions !== "boolean")
    throw new Error(`llava-robust: packQuestions must be true or false, got ${JSON.stringify(plan.packQuestions)}`);
  if (plan.packQuestions && questions !== undefined)
    throw new Error(
      `llava-robust: packQuestions asks every question alone; it excludes questionsPerConversation (got ${JSON.stringify(questions)})`,
    );
  if (plan.lossWeighting !== undefined && plan.lossWeighting !== "token" && plan.lossWeighting !== "conversation")
    throw new Error(`llava-robust: lossWeighting must be "token" or "conversation", got ${JSON.stringify(plan.lossWeighting)}`);
  if (plan.objectMap !== undefined) checkObjectMapObjective(plan.objectMap);
  if (plan.splitByLength !== undefined && typeof plan.splitByLength !== "boolean")
    throw new Error(`llava-robust: splitByLength must be true or false, got ${JSON.stringify(plan.splitByLength)}`);
}

/** Added to the run's seed for the pairs asked about each scene. */
export const ROBUST_PAIRS_SEED_OFFSET = 92;
/** Added to the run's seed for the object-map read-out. */
const ROBUST_OBJECT_MAP_SEED_OFFSET = 93;

const pairKey = (color: string, shape: string) => `${color} ${shape}`;

/** One round of an existence conversation: the pair asked, its question, its true answer, how an absent pair was drawn. */
export interface ExistenceRound {
  readonly color: string;
  readonly shape: string;
  readonly instruction: string;
  readonly response: "yes" | "no";
  /** The kind actually drawn (after any fall-back); absent for a present pair. */
  readonly negative?: RobustNegative;
}

/**
 * One scene's existence rounds: up to `plan.presentPerScene` present pairs ("yes"), each matched by one absent pair
 * ("no") drawn as `plan.negatives` says in turn, so that the rounds are half "yes", as POPE's questions are.
 */
export function robustExistencePairs(
  objects: readonly Pick<SceneObject, "color" | "shape">[],
  plan: Pick<LlavaRobustPlan, "presentPerScene" | "negatives">,
  random: Random,
): ExistenceRound[] {
  const present = new Set(objects.map((o) => pairKey(o.color, o.shape)));
  const presentPairs = ALL_PAIRS.filter((p) => present.has(pairKey(p.color, p.shape)));
  const positives = random.shuffle(presentPairs).slice(0, plan.presentPerScene);
  const absent = ALL_PAIRS.filter((p) => !present.has(pairKey(p.color, p.shape)));
  const sharing = (p: { color: string; shape: string }) => objects.some((o) => o.color === p.color || o.shape === p.shape);
  const binding = (p: { color: string; shape: string }) =>
    objects.some((o) => o.color === p.color) && objects.some((o) => o.shape === p.shape);
  const pools: Record<RobustNegative, { color: string; shape: string }[]> = {
    random: random.shuffle(absent),
    adversarial: random.shuffle(absent.filter(sharing)),
    binding: random.shuffle(absent.filter(binding)),
  };
  const used = new Set<string>();
  const rounds: ExistenceRound[] = positives.map((p) => ({
    color: p.color,
    shape: p.shape,
    instruction: popeQuestion(p.color, p.shape),
    response: "yes",
  }));
  positives.forEach((_, k) => {
    const wanted = plan.negatives[k % plan.negatives.length];
    // A kind with nothing left falls back to the next wider one: binding → adversarial → random.
    const order: RobustNegative[] =
      wanted === "binding"
        ? ["binding", "adversarial", "random"]
        : wanted === "adversarial"
          ? ["adversarial", "random"]
          : ["random"];
    for (const kind of order) {
      const pair = pools[kind].find((p) => !used.has(pairKey(p.color, p.shape)));
      if (!pair) continue;
      used.add(pairKey(pair.color, pair.shape));
      rounds.push({ ...pair, instruction: popeQuestion(pair.color, pair.shape), response: "no", negative: kind });
      return;
    }
  });
  return rounds;
}

/** The existence conversations: `plan.existenceScenes` scenes drawn fresh as the world's, rendered when `renderImages`. */
export async function robustExistenceExamples(
  plan: LlavaRobustPlan,
  seed: number,
  renderImages: boolean,
): Promise<FullTuneExample[]> {
  const sceneRandom = new Random(seed + EXISTENCE_STAGE_SEED_OFFSET); // llava's existence stage's scenes
  const pairRandom = new Random(seed + ROBUST_PAIRS_SEED_OFFSET);
  const examples: FullTuneExample[] = [];
  for (let k = 0; k < plan.existenceScenes; k++) {
    const scene = sampleScene(sceneRandom, { countWeights: SCENE_COUNT_WEIGHTS });
    const pairs = robustExistencePairs(scene.objects, plan, pairRandom);
    const key = `fresh/existence/${k}`;
    examples.push({
      image: { key, rgb: renderImages ? (await svgToRgb(sceneSvg(scene))).data : undefined },
      objects: scene.objects,
      // the rounds in a new order each time; with questionsPerConversation, the first that many of them
      conversation: (r: Random) =>
        conversationFromPairs(r.shuffle(pairs).slice(0, plan.questionsPerConversation ?? pairs.length)),
      ...(plan.packQuestions ? { branches: (r: Random) => r.shuffle(pairs).map((pair) => conversationFromPairs([pair])) } : {}),
    });
  }
  return examples;
}

/** What the card records beyond the common fields. */
export interface LlavaRobustCard extends LlavaFullTuneCard {
  readonly plan: LlavaRobustPlan;
  /** What `mllm-labs eval` measures. */
  readonly eval_options: LlavaRobustPlan["evaluation"];
}

const BASELINE_NOTES: Record<string, string> = {
  before_tuning: "the model tuned, as it was before (../llava: lab 02's mixture; for the blind twin ../llava-blind)",
  blind:
    "../llava-robust-blind: ../llava-blind tuned the same way on the same conversations with the image removed, answering with no image",
  chance: "answers drawn uniformly among the set's candidate answers (POPE: yes or no)",
  majority: "the most frequent training answer of each question type (POPE: always yes)",
};

const METRIC_NOTES: Record<string, string> = {
  pope_f1: "POPE's F1 of 'yes' (random, popular, adversarial negatives): issue 16's target, at least 0.85 on all three",
  pope_accuracy: "answers right among POPE's balanced yes/no questions",
  pope_yes_ratio: "share of POPE's questions answered yes (0.5 is unbiased)",
  vqa: "VQA soft accuracy per question type (colour and shape: issue 16's target, at least 0.3 above the blind twin)",
};

/**
 * `npm run pretrain -- llava-robust` (`blind` false) or `-- llava-robust-blind` (`blind` true): tunes the base's
 * projector and LLM in full on existence conversations with llava's mixture replayed ({@link runLlavaFullTune}), writes
 * the folder, then measures it as `mllm-labs eval` does and writes the card with what it measured.
 */
export async function pretrainLlavaRobust(
  args: PretrainArgs & { blind?: boolean },
  planOverride?: Partial<LlavaRobustPlan>,
): Promise<{ card: LlavaRobustCard }> {
  const seed = args.seed ?? 0;
  const blind = args.blind ?? false;
  const name = blind ? "llava-robust-blind" : "llava-robust";
  let plan: LlavaRobustPlan = { ...LLAVA_ROBUST_PLAN, ...planOverride };
  if (args.steps !== undefined) plan = { ...plan, steps: args.steps };
  if (args.batchSize !== undefined) plan = { ...plan, batchSize: args.batchSize };
  checkRobustPlan(plan);
  const baseRelative = blind ? LLAVA_ROBUST_NEIGHBOURS.blindBase : LLAVA_ROBUST_NEIGHBOURS.base;
  let counts: Record<string, number> = {};
  return runLlavaFullTune<LlavaRobustCard>(args, {
    name,
    blind,
    baseRelative,
    neighbours: { sighted: LLAVA_ROBUST_NEIGHBOURS.robust, blind: LLAVA_ROBUST_NEIGHBOURS.blind },
    examples: async (renderImages) => {
      // llava's own mixture (the same draws as llava's run of this seed), replayed beside the existence conversations.
      const mixture = await llavaTrainingData(args.world, plan.replay, seed, renderImages);
      const existence = await robustExistenceExamples(plan, seed, renderImages);
      counts = { existence: existence.length, ...mixture.counts };
      return [...existence, ...mixture.stage2];
    },
    steps: plan.steps,
    batchSize: plan.batchSize,
    learningRate: plan.learningRate,
    stageSeed: seed + ROBUST_STAGE_SEED_OFFSET,
    lossWeighting: plan.lossWeighting,
    ...(plan.splitByLength ? { splitByLength: true } : {}),
    ...(plan.objectMap ? { objectMap: { objective: plan.objectMap, seed: seed + ROBUST_OBJECT_MAP_SEED_OFFSET } } : {}),
    blindConfigNote:
      "../llava-blind tuned on llava-robust's conversations with the image removed: the blind baseline of ../llava-robust. mllm-labs eval measures it on VQA and POPE with no image.",
    baselineNotes: BASELINE_NOTES,
    card: ({ examples, common }) => ({
      ...common,
      title: blind
        ? "mllm-labs llava-robust blind twin: llava-blind tuned on the existence questions without their images"
        : "mllm-labs llava-robust: lab 02's LLaVA tuned on negative instructions against object hallucination",
      description: blind
        ? `The blind baseline of ../llava-robust: ../llava-blind tuned the same way (${plan.steps} steps of ${plan.batchSize}, peak learning rate ${plan.learningRate}, the whole LLM) on the same conversations with every <image> removed. It can learn how often each object is there, not whether it is in this image.`
        : `Lab 02's LLaVA (${baseRelative}) with its projector and LLM tuned in full (the tower frozen, as in stage 2) against object hallucination, after LRV-Instruction's robust instruction tuning: ${plan.existenceScenes} scenes drawn fresh, each with POPE-style existence questions (up to ${plan.presentPerScene} present objects, each matched by one absent one, drawn in turn as ${plan.negatives.join(", ")}: a binding pair is the colour of one object with the shape of another; half the answers "yes"), ${plan.packQuestions ? "each question asked alone, a scene's questions packed after its image in one row (shared-prefix packing: each attends to the image and to itself only)" : plan.questionsPerConversation === undefined ? "all of a scene's questions in one conversation, in a new order each time" : `${plan.questionsPerConversation === 1 ? "one question" : `${plan.questionsPerConversation} questions`} per conversation drawn anew from the scene's at each draw`}, with llava's own stage-2 mixture replayed beside them${plan.objectMap ? `, and an object-map objective (weight ${plan.objectMap.weight}) asking each image token, through a linear read-out dropped afterwards, which colour–shape pairs have their centre in its cell` : ""}; ${plan.steps} steps of ${plan.batchSize}, peak learning rate ${plan.learningRate} (warm-up, cosine)${plan.lossWeighting === "conversation" ? ", the loss averaged per conversation" : ""}. The folder holds the whole model in transformers' layout.`,
      data: `${counts.existence} existence conversations of fresh scenes (seed ${seed + EXISTENCE_STAGE_SEED_OFFSET}) + llava's stage-2 mixture replayed (${Object.entries(
        counts,
      )
        .filter(([key]) => key !== "existence")
        .map(([key, count]) => `${key} ${count}`)
        .join(
          ", ",
        )}; ${examples} conversations in all)${blind ? ", images removed" : ""}; eval: ${plan.evaluation.sets.join(" and ")}${plan.evaluation.limit ? `, the first ${plan.evaluation.limit} of each` : ""}`,
      metric_notes: METRIC_NOTES,
      plan,
      eval_options: plan.evaluation,
    }),
    markdown: llavaDomainMarkdown,
  });
}

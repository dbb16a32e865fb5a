/**
 * `npm run pretrain -- llava` and `npm run pretrain -- llava-blind`: LLaVA's
 * two stages between the project's frozen image tower (data/checkpoints/vision)
 * and its language backbone (data/checkpoints/language), trained on the world.
 *
 * - Stage 1 (feature alignment): the projector alone learns, on image–caption
 *   pairs of the scenes in LLaVA's `plain` format.
 * - Stage 2 (visual instruction tuning): the projector and the whole LLM learn
 *   on one mixture, as LLaVA-1.5's `llava_v1_5_mix665k`: the scenes'
 *   conversations (a brief description, the VQA questions and two POPE-style
 *   existence questions, rounds in a random order) and the medical, code and
 *   sentiment conversations. One multi-domain model rather than one per domain
 *   (docs/lab02-plan.md gives the reasons).
 * - `llava-blind` is the baseline a skeptic asks for: the same language
 *   backbone tuned on the same stage-2 conversations, steps, learning rate and
 *   seed with the image removed. It is saved as a Llama (`model_type` llama)
 *   whose config.json names its sibling (`mllm_labs.blind_twin_of`).
 *
 * Training draws fresh examples from the world's generators (scenes, scans,
 * programs, faces), seeded apart from the stored splits; the POPE-style
 * existence turns are built on training scenes only. The tower is frozen, so
 * each image's tower features are computed once ({@link VisionFeatureCache}).
 *
 * The checkpoint holds everything (tower, projector, LLM) in transformers'
 * LLaVA layout: stage 2 trains the LLM, so only the 0.43M-parameter tower
 * would be shared with ../vision, and a self-contained folder loads with
 * `loadLlava` and any LLaVA loader.
 *
 * Papers: Liu et al., "Visual Instruction Tuning" (2023); Liu et al.,
 * "Improved Baselines with Visual Instruction Tuning" (LLaVA-1.5, 2023); Li et
 * al., "Evaluating Object Hallucination in Large Vision-Language Models"
 * (POPE, 2023). Reference: haotian-liu/LLaVA `scripts/v1_5/pretrain.sh`,
 * `finetune.sh`, `llava/train/train.py`, `llava/eval/`.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import type { LlavaForConditionalGeneration, LlavaProjectorType } from "../models/llava";
import { llavaConfigToHF } from "../models/llava_spec";
import { llamaConfigToHF } from "../models/llama_spec";
import { loadLlava as loadLlavaModel } from "../io/pretrained";
import { readHFConfig } from "../io/hf_config";
import { loadTokenizer, type ChatMessage, type TextTokenizer } from "../tokenizer/tokenizer";
import { tokenizeConversation, tokenizePlain, withoutImages, type ConversationTurn } from "../data/conversation";
import {
  BRIEF_DESCRIPTION_PROMPTS,
  CODE_INSTRUCTIONS,
  conversationFromPairs,
  sceneCaption,
  sentimentInstruction,
  storedConversation,
} from "../data/llava_instructions";
import { openSplit, recordBatches, toChannelsFirst } from "../data/loaders";
import { decodeRgb } from "../preprocess/clip_image";
import { sampleScene, sceneSvg, svgToRgb, type SceneObject } from "../data/scene";
import { captionScene } from "../data/captions";
import { askQuestions, chanceVqaScores, vqaScores, QUESTION_TYPES, type QuestionType } from "../data/vqa";
import { sampleScan, scanInstructions, MEDICAL_FINDINGS_INSTRUCTION, type Lesion } from "../data/medical";
import { sceneToProgram } from "../data/drawing_language";
import { sampleSentiment, SENTIMENTS } from "../data/sentiment";
import { SCENE_COUNT_WEIGHTS } from "../data/world";
import { buildPopeQuestions, popeMetrics, POPE_NEGATIVES, type PopeQuestion } from "../metrics/pope";
import { medicalFindingsMetrics } from "../metrics/medical_findings";
import { programMetrics } from "../metrics/program";
import { sentimentMetrics, type SentimentItem } from "../metrics/classification";
import { chatBatch } from "../pipelines/llava_chat";
import { Random } from "../util/random";
import { llavaFromBackbones } from "./llava_setup";
import { checkPresencePlan, presenceScenes, trainProjectorPresence, type LlavaPresencePlan } from "./llava_presence";
import {
  ObjectMapHead,
  checkObjectMapObjective,
  objectMapTargets,
  tokenGridSide,
  type MappedObject,
  type ObjectMapObjective,
} from "./object_map";
import {
  VisionFeatureCache,
  LlavaTrainer,
  llavaBatch,
  disposeBatch,
  type LlavaStage,
  type LlavaLossWeighting,
  type LlavaStepBatch,
} from "./llava_training";
import { baselineTableMarkdown, learningRateAt, machineRecord, mean, writeCheckpoint, type CheckpointCard } from "./common";
import type { PretrainArgs } from "./vision";

/** Folders relative to the llava checkpoint: the backbones it starts from and its blind twin (recorded in the cards). */
export const LLAVA_NEIGHBOURS = {
  vision: "../vision",
  language: "../language",
  blind: "../llava-blind",
  llava: "../llava",
} as const;

/** How a run trains. */
export interface LlavaPlan {
  /** Optimiser steps of each stage (stage 1 0: the projector starts untrained in stage 2, the `no-stage1` ablation). */
  readonly steps: { readonly stage1: number; readonly stage2: number };
  /** Peak learning rates (linear warm-up, cosine to 0.1 of the peak). */
  readonly learningRates: { readonly stage1: number; readonly stage2: number };
  readonly batchSize: number;
  /** Scenes drawn fresh from the world's generator, added to the 3,000 stored training scenes. */
  readonly freshScenes: number;
  /** Medical, code and sentiment examples drawn fresh per set, added to the 300 stored ones. */
  readonly freshPerDomain: number;
  /** Tower hidden state the features come from (−2 LLaVA's penultimate, −1 the last). */
  readonly visionFeatureLayer: number;
  readonly projectorType: LlavaProjectorType;
  /**
   * Patch neighbourhood each image token's projector reads (`LlavaConfig.projectorWindow`; 1 = its own patch, LLaVA's
   * design). Optional so that plans written before it mean 1.
   */
  readonly projectorWindow?: number;
  /**
   * How stage 2's loss averages the answers' tokens (`LlavaLossWeighting`: `conversation` gives a one-word answer
   * the weight of a paragraph). Optional so that plans written before it mean `token`.
   */
  readonly lossWeighting?: LlavaLossWeighting;
  /**
   * POPE-style existence questions per training scene: this many present objects at most, each matched by an absent
   * one (`buildPopeQuestions`' `perImage`). Optional so that plans written before it mean 1.
   */
  readonly existencePerScene?: number;
  /**
   * Order of a scene conversation's rounds ({@link LlavaRoundOrder}). Optional so that plans written before it mean
   * `shuffled`.
   */
  readonly roundOrder?: LlavaRoundOrder;
  /**
   * An object-presence stage for the projector before stage 1 (`trainProjectorPresence`: the world's exact annotations,
   * a multiple-instance head dropped afterwards). Absent: none, as in every plan written before it. The blind twin has no
   * image and no projector to train: it skips the stage.
   */
  readonly presence?: LlavaPresencePlan;
  /**
   * The object-map objective beside the language loss in both stages (`object_map.ts`: each image token asked which
   * colour–shape pairs are centred in its cell; the domain images of stage 2 carry no annotation and add nothing; the
   * read-out is dropped after training). Absent: none, as in every plan written before it. The blind twin skips it.
   */
  readonly objectMap?: ObjectMapObjective;
  /**
   * An existence stage after stage 2 ({@link LlavaExistenceStage}). Absent: none, as in every plan written before it.
   * The blind twin takes it too, without the image, so that its baseline had the same training.
   */
  readonly existenceStage?: LlavaExistenceStage;
  /** Stage-2 data: every set (`mixture`) or the code set alone (the `code-only` specialist of the ablations). */
  readonly stage2Data: "mixture" | "code-only";
  /**
   * Batches of stage 2 and of the existence stage grouped by length (transformers' `group_by_length`, LLaVA-1.5's
   * `group_by_modality_length` in spirit: `lengthGroupedOrder`), so that a batch pads little. In random batches of the
   * mixture a third of the tokens are padding: its scene conversations are twice as long as the domains'. Optional so
   * that plans written before it mean false.
   */
  readonly groupByLength?: boolean;
  /** Stored training records used per set (the first N; smoke tests). Default all. */
  readonly storedRecords?: number;
}

/**
 * A stage after stage 2 that trains what stage 2 trains (projector + LLM) on conversations of POPE-style existence
 * questions only, about scenes drawn fresh (up to `presentPerScene` present pairs each, every one matched by an absent
 * pair of each negative kind: random, popular, adversarial; the rounds shuffled), mixed with stage 2's own mixture,
 * replayed so that the rest is not forgotten. Why: the card's llava answers POPE on its training scenes as on its test
 * scenes (it underfits existence), and 1,000 steps of this on the committed checkpoint gave POPE F1 0.82–0.85 with VQA
 * kept (docs/lab02-plan.md, "Code and POPE are training signal"; `bench/llava_existence_stage.js`).
 */
export interface LlavaExistenceStage {
  /** Optimiser steps (batches of the plan's batch size). */
  readonly steps: number;
  /** Fresh scenes (seed + 71, the world's generator), each one existence conversation. */
  readonly scenes: number;
  /** Peak learning rate (linear warm-up, cosine to 0.1 of the peak). */
  readonly learningRate: number;
  /** Present pairs asked per scene at most, each matched by one absent pair per negative kind. Default 3. */
  readonly presentPerScene?: number;
}

/** {@link LlavaExistenceStage.presentPerScene} when absent (POPE's three per image). */
const EXISTENCE_STAGE_PRESENT_PER_SCENE = 3;

/** Throws, quoting the value, unless the existence stage is usable. */
export function checkExistenceStage(stage: LlavaExistenceStage): void {
  for (const field of ["steps", "scenes"] as const)
    if (!(Number.isInteger(stage[field]) && stage[field] > 0))
      throw new Error(`llava plan: existenceStage.${field} must be a positive integer, got ${JSON.stringify(stage[field])}`);
  if (!(stage.learningRate > 0 && Number.isFinite(stage.learningRate)))
    throw new Error(`llava plan: existenceStage.learningRate must be a positive number, got ${String(stage.learningRate)}`);
  const perScene = stage.presentPerScene ?? EXISTENCE_STAGE_PRESENT_PER_SCENE;
  if (!(Number.isInteger(perScene) && perScene > 0))
    throw new Error(`llava plan: existenceStage.presentPerScene must be a positive integer, got ${JSON.stringify(perScene)}`);
}

/** Seed offset of the existence stage's fresh scenes (apart from stage 2's +3, the presence stage's +61, +62, the map's +63). */
export const EXISTENCE_STAGE_SEED_OFFSET = 71;
/** Seed offset of the phrasing drawn to measure each conversation's length ({@link LlavaPlan.groupByLength}). */
const GROUP_BY_LENGTH_SEED_OFFSET = 79;

/**
 * Order of a scene conversation's rounds: `shuffled`, all at random (a later round can read its answer from an earlier
 * one's text: the description names the objects, a question names what it asks about), or `perception-first`: the
 * existence questions first, then the VQA questions, the description last (each group shuffled), so that no existence
 * answer and no VQA answer can be read from the description, and no existence answer from a question.
 */
export type LlavaRoundOrder = "shuffled" | "perception-first";
const LLAVA_ROUND_ORDERS: readonly LlavaRoundOrder[] = ["shuffled", "perception-first"];

/** What a plan's optional fields mean when absent (plans written before the field existed). */
export const LLAVA_PLAN_FIELD_DEFAULTS = {
  projectorWindow: 1,
  lossWeighting: "token",
  existencePerScene: 1,
  roundOrder: "shuffled",
  groupByLength: false,
} as const satisfies Partial<LlavaPlan>;

/**
 * The card's run: fits the 2-core machine's 30 minutes (docs/lab02-plan.md, "Adopted (2026-12-03)"; the plan before it,
 * 150 + 800 steps on layer −2 with one existence pair per scene, is the `previous-plan` row of the ablation table).
 */
export const LLAVA_PLAN: LlavaPlan = {
  steps: { stage1: 300, stage2: 1000 },
  learningRates: { stage1: 2e-3, stage2: 1e-3 },
  batchSize: 16,
  freshScenes: 3000,
  freshPerDomain: 1200,
  visionFeatureLayer: -1,
  projectorType: "mlp2x_gelu",
  projectorWindow: 3,
  stage2Data: "mixture",
  existencePerScene: 3,
};

/**
 * What each ablation changes (`npm run pretrain -- llava --ablation NAME`), on the card's own plan, so that the committed
 * `llava` is the row every ablation is compared with (`default` reruns it).
 */
export const LLAVA_ABLATIONS: Record<string, Partial<LlavaPlan>> = {
  default: {},
  "layer-2": { visionFeatureLayer: -2 },
  "existence-1": { existencePerScene: 1 },
  // The plan before 2026-12-03 (LLaVA-1.5's layer −2, one existence pair per scene, 150 + 800 steps): the reference row
  // of the ablations below, which were run on it. Two of them, `layer-1` and `existence-3`, are that plan's changes the
  // card's plan adopted: on it they change nothing; their rows stay for the earlier plan's table.
  "previous-plan": { visionFeatureLayer: -2, existencePerScene: 1, steps: { stage1: 150, stage2: 800 } },
  "layer-1": { visionFeatureLayer: -1 },
  linear: { projectorType: "linear" },
  "no-stage1": { steps: { stage1: 0, stage2: LLAVA_PLAN.steps.stage2 } },
  "code-only": { stage2Data: "code-only" },
  "window-1": { projectorWindow: 1 },
  "conversation-loss": { lossWeighting: "conversation" },
  "perception-first": { roundOrder: "perception-first" },
  "existence-3": { existencePerScene: 3 },
  presence: { presence: { steps: 3000, scenes: 16000, learningRate: 2e-3, batchSize: 64 } },
  // bench/llava_existence_stage.js's 1,000 steps on 10,000 fresh scenes, here in the plan's own run (over the 30-minute
  // budget as it stands: a plan adopting it must pay with fewer stage-2 steps).
  "existence-stage": { existenceStage: { steps: 1000, scenes: 10000, learningRate: 5e-4 } },
  // Batches grouped by length: what it saves of stage 2's time and whether it changes what is learnt; with the existence
  // stage, whether the two fit the 30 minutes together.
  "group-by-length": { groupByLength: true },
  "existence-stage-grouped": { groupByLength: true, existenceStage: { steps: 1000, scenes: 10000, learningRate: 5e-4 } },
};

/** Options of {@link pretrainLlava} beyond the common ones. */
export interface LlavaPretrainArgs extends PretrainArgs {
  /** Train the blind twin (no image, Llama only). Default false. */
  readonly blind?: boolean;
  /** One of {@link LLAVA_ABLATIONS}: the card's plan with one thing changed; no weights are written, only the card. */
  readonly ablation?: string;
  /** Evaluate on the first N test records of each set only (smoke tests). Default all. */
  readonly evalLimit?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Training data

/** An image of the training or test data: a PNG path, or pixels drawn fresh (RGB, 64×64, row-major). */
export interface ImageSource {
  readonly key: string;
  readonly rgb?: Uint8Array;
}

/** A scene as stage 1 and stage 2 use it. */
interface TrainingScene {
  readonly image: ImageSource;
  readonly id: string;
  /** With their centres (the object-map objective's targets). */
  readonly objects: readonly MappedObject[];
  readonly captions: readonly string[];
  readonly vqa: readonly { readonly question: string; readonly answer: string }[];
  /** POPE-style existence questions about it (present objects, each matched by an absent one). */
  readonly existence: readonly { readonly question: string; readonly answer: string }[];
}

/** A stage-2 example: its image and its conversation (phrasing drawn anew each time with `random`). */
interface Stage2Example {
  readonly image: ImageSource;
  readonly kind: "scene" | "medical" | "code" | "sentiment" | "existence";
  /** A scene's objects (the object-map objective's targets); the domain sets have none. */
  readonly objects?: readonly MappedObject[];
  conversation(random: Random): ConversationTurn[];
}

/** Everything a run trains on. */
interface LlavaTrainingData {
  readonly scenes: readonly TrainingScene[];
  readonly stage2: readonly Stage2Example[];
  readonly counts: Record<string, number>;
  /** The existence stage's conversations (empty without one in the plan). */
  readonly existence: readonly Stage2Example[];
}

const CANVAS = 64;

async function rgbOfSvg(svg: string): Promise<Uint8Array> {
  return (await svgToRgb(svg)).data;
}

/** A grayscale scan as RGB (the stored PNGs decode the same way: sRGB with equal channels). */
export function rgbOfGray(pixels: Uint8Array): Uint8Array {
  const out = new Uint8Array(pixels.length * 3);
  pixels.forEach((value, k) => out.fill(value, 3 * k, 3 * k + 3));
  return out;
}

/**
 * The training scenes (stored train split + fresh ones) and the stage-2
 * mixture (exported for bench/llava_token_share.js). `renderImages` false skips drawing the fresh images (the blind
 * twin), with the same draws otherwise.
 */
export async function llavaTrainingData(
  world: string,
  plan: LlavaPlan,
  seed: number,
  renderImages: boolean,
): Promise<LlavaTrainingData> {
  const perImage = plan.existencePerScene ?? LLAVA_PLAN_FIELD_DEFAULTS.existencePerScene;
  if (!(Number.isInteger(perImage) && perImage > 0))
    throw new Error(`llava plan: existencePerScene must be a positive integer, got ${JSON.stringify(perImage)}`);
  const order = plan.roundOrder ?? LLAVA_PLAN_FIELD_DEFAULTS.roundOrder;
  if (!LLAVA_ROUND_ORDERS.includes(order))
    throw new Error(`llava plan: roundOrder must be one of ${LLAVA_ROUND_ORDERS.join(", ")}, got ${JSON.stringify(order)}`);
  const random = new Random(seed + 3); // apart from the stored splits' seeds and from the eval's
  const [sceneRandom, medicalRandom, codeRandom, sentimentRandom] = [0, 1, 2, 3].map(() => new Random(random.nextSeed()));
  const records = <R>(all: readonly R[]) => (plan.storedRecords === undefined ? all : all.slice(0, plan.storedRecords));
  const stored = openSplit(world, "scenes", "train");
  const scenes: Omit<TrainingScene, "existence">[] = records(stored.records).map((r) => ({
    image: { key: path.join(stored.dir, r.image) },
    id: r.id,
    objects: r.objects,
    captions: r.captions,
    vqa: r.vqa,
  }));
  for (let k = 0; k < plan.freshScenes; k++) {
    const scene = sampleScene(sceneRandom, { countWeights: SCENE_COUNT_WEIGHTS });
    const captions = [0, 1, 2].map(() => captionScene(scene, sceneRandom));
    const vqa = askQuestions(scene, sceneRandom, 3);
    const key = `fresh/scenes/${k}`;
    scenes.push({
      image: { key, rgb: renderImages ? await rgbOfSvg(sceneSvg(scene)) : undefined },
      id: key,
      objects: scene.objects,
      captions,
      vqa,
    });
  }
  // POPE-style existence turns on the training scenes only: present objects (the plan's number at most), each matched
  // by an absent one, the negatives drawn the three ways in turn (random, popular, adversarial).
  const existenceOf = new Map<string, PopeQuestion[]>();
  POPE_NEGATIVES.forEach((negatives, kind) => {
    const own = scenes.filter((_, k) => k % POPE_NEGATIVES.length === kind);
    for (const q of buildPopeQuestions(own, { negatives, perImage, seed: seed + 5 + kind }))
      existenceOf.set(q.imageId, [...(existenceOf.get(q.imageId) ?? []), q]);
  });
  const trainingScenes: TrainingScene[] = scenes.map((s) => ({
    ...s,
    existence: (existenceOf.get(s.id) ?? []).map((q) => ({ question: q.question, answer: q.answer })),
  }));
  const stage2: Stage2Example[] = [];
  const counts: Record<string, number> = {};
  if (plan.stage2Data === "mixture") {
    for (const scene of trainingScenes)
      stage2.push({
        image: scene.image,
        kind: "scene",
        objects: scene.objects,
        conversation: (r) => sceneRounds(scene, r, order),
      });
    counts.scenes = trainingScenes.length;
  }
  // The domain sets: stored conversations as they are, fresh ones from the same generators as the world's.
  const domain = async (
    set: "medical" | "code" | "sentiment",
    fresh: (k: number) => Promise<{ rgb?: Uint8Array; pairs: { instruction: string; response: string }[] }>,
  ) => {
    const split = openSplit(world, set, "train");
    const own = records(split.records);
    for (const r of own) {
      const turns = storedConversation(set, r);
      stage2.push({ image: { key: path.join(split.dir, r.image) }, kind: set, conversation: () => turns });
    }
    for (let k = 0; k < plan.freshPerDomain; k++) {
      const { rgb, pairs } = await fresh(k);
      const turns = conversationFromPairs(pairs);
      stage2.push({ image: { key: `fresh/${set}/${k}`, rgb }, kind: set, conversation: () => turns });
    }
    counts[set] = own.length + plan.freshPerDomain;
  };
  if (plan.stage2Data === "mixture") {
    await domain("medical", async () => {
      const scan = sampleScan(medicalRandom, CANVAS);
      return { rgb: renderImages ? rgbOfGray(scan.pixels) : undefined, pairs: scanInstructions(scan, medicalRandom) };
    });
  }
  await domain("code", async () => {
    const scene = sampleScene(codeRandom, { maxObjects: 3 });
    const instruction = CODE_INSTRUCTIONS[codeRandom.int(0, CODE_INSTRUCTIONS.length)];
    return {
      rgb: renderImages ? await rgbOfSvg(sceneSvg(scene)) : undefined,
      pairs: [{ instruction, response: sceneToProgram(scene) }],
    };
  });
  if (plan.stage2Data === "mixture") {
    await domain("sentiment", async () => {
      const sample = sampleSentiment(sentimentRandom, CANVAS);
      return {
        rgb: renderImages ? await rgbOfSvg(sample.svg) : undefined,
        pairs: [{ instruction: sentimentInstruction(sample.text), response: sample.label }],
      };
    });
  }
  return { scenes: trainingScenes, stage2, counts, existence: await existenceStageExamples(plan, seed, renderImages) };
}

/** The existence stage's conversations ({@link LlavaExistenceStage}); none without the stage. */
async function existenceStageExamples(plan: LlavaPlan, seed: number, renderImages: boolean): Promise<Stage2Example[]> {
  const stage = plan.existenceStage;
  if (!stage) return [];
  checkExistenceStage(stage);
  const random = new Random(seed + EXISTENCE_STAGE_SEED_OFFSET);
  const scenes: { id: string; objects: readonly SceneObject[]; rgb?: Uint8Array }[] = [];
  for (let k = 0; k < stage.scenes; k++) {
    const scene = sampleScene(random, { countWeights: SCENE_COUNT_WEIGHTS });
    scenes.push({
      id: `fresh/existence/${k}`,
      objects: scene.objects,
      rgb: renderImages ? await rgbOfSvg(sceneSvg(scene)) : undefined,
    });
  }
  // One round per distinct question of the three negative kinds (a pair drawn twice is asked once).
  const rounds = new Map(scenes.map((s) => [s.id, new Map<string, string>()]));
  const perImage = stage.presentPerScene ?? EXISTENCE_STAGE_PRESENT_PER_SCENE;
  POPE_NEGATIVES.forEach((negatives, kind) => {
    for (const q of buildPopeQuestions(scenes, { negatives, perImage, seed: seed + EXISTENCE_STAGE_SEED_OFFSET + 1 + kind }))
      rounds.get(q.imageId)!.set(q.question, q.answer);
  });
  return scenes.map((s) => {
    const pairs = [...rounds.get(s.id)!].map(([instruction, response]) => ({ instruction, response }));
    return {
      image: { key: s.id, rgb: s.rgb },
      kind: "existence",
      objects: s.objects,
      conversation: (r: Random) => conversationFromPairs(r.shuffle(pairs)),
    };
  });
}

/** A scene's conversation: a brief description, its questions and its existence questions, in `order`. */
function sceneRounds(scene: TrainingScene, random: Random, order: LlavaRoundOrder): ConversationTurn[] {
  const description = {
    instruction: BRIEF_DESCRIPTION_PROMPTS[random.int(0, BRIEF_DESCRIPTION_PROMPTS.length)],
    response: sceneCaption({ id: scene.id, captions: scene.captions, vqa: scene.vqa }, random),
  };
  const questions = scene.vqa.map((q) => ({ instruction: q.question, response: q.answer }));
  const existence = scene.existence.map((q) => ({ instruction: q.question, response: q.answer }));
  if (order === "shuffled") return conversationFromPairs(random.shuffle([description, ...questions, ...existence]));
  return conversationFromPairs([...random.shuffle(existence), ...random.shuffle(questions), description]);
}

/** Tower features of images given as paths or fresh pixels: a cache whose loader decodes or copies them. */
export function featureCache(model: LlavaForConditionalGeneration, images: readonly ImageSource[]): VisionFeatureCache {
  const fresh = new Map(images.filter((i) => i.rgb).map((i) => [i.key, i.rgb!]));
  const size = model.config.vision.imageSize;
  return new VisionFeatureCache(model, async (keys) => {
    const out = new Float32Array(keys.length * 3 * size * size);
    for (const [k, key] of keys.entries()) {
      const data = fresh.get(key) ?? (await decodeRgb(key)).data;
      if (data.length !== size * size * 3)
        throw new Error(`llava: image ${key} has ${data.length / 3} pixels; expected ${size}×${size}`);
      toChannelsFirst({ data, width: size }, 0, size, "clip", out, k * 3 * size * size);
      fresh.delete(key); // features are cached from now on
    }
    return tf.tensor4d(out, [keys.length, 3, size, size]);
  });
}

/** One progress line's worth of a stage. */
export interface StageRun {
  /**
   * The language-model loss, the mean of every `every` steps (without the object-map objective's share); for a stage on
   * the object map alone (the trainer's `languageLoss` false), the map's loss.
   */
  readonly curve: number[];
  readonly every: number;
  readonly seconds: number;
  /** The object-map loss (unweighted) at the same points as `curve`, when the trainer has that objective. */
  readonly objectMapCurve?: number[];
}

/**
 * Runs one stage: batches in a seeded order (reshuffled each epoch), the
 * scheduled learning rate, the mean loss reported 40 times.
 */
export async function runStage<E>(
  name: string,
  trainer: LlavaTrainer,
  examples: readonly E[],
  steps: number,
  args: {
    batchSize: number;
    learningRate: number;
    seed: number;
    log: (line: string) => void;
    /** Linear warm-up steps of the learning rate. Default min(50, steps / 10). */
    warmupSteps?: number;
    /** Each example's length in tokens: batches grouped by length (`recordBatches`' `lengths`). Default none. */
    lengths?: readonly number[];
  },
  batch: (examples: readonly E[], random: Random) => Promise<LlavaStepBatch>,
): Promise<StageRun> {
  const started = Date.now();
  const random = new Random(args.seed);
  const every = Math.max(1, Math.floor(steps / 40));
  const curve: number[] = [];
  const pending: number[] = [];
  const objectMapCurve: number[] = [];
  const objectMapPending: number[] = [];
  let order: E[][] = [];
  let epoch = 0;
  for (let index = 0; index < steps; index++) {
    if (order.length === 0)
      order = [
        ...recordBatches(examples, args.batchSize, { seed: args.seed, epoch: epoch++, dropLast: true, lengths: args.lengths }),
      ];
    if (order.length === 0)
      throw new Error(`llava ${name}: ${examples.length} examples make no batch of ${args.batchSize}; lower the batch size`);
    trainer.learningRate = learningRateAt(
      index,
      steps,
      args.learningRate,
      args.warmupSteps ?? Math.min(50, Math.floor(steps / 10)),
    );
    const data = await batch(order.shift()!, random);
    const loss = trainer.step(data);
    disposeBatch(data);
    const total = (await loss.data())[0];
    loss.dispose();
    const objectMapLoss = trainer.takeObjectMapLoss();
    if (objectMapLoss) {
      // The curve stays the language loss (comparable with runs without the objective): the total less the weighted map.
      // A stage on the map alone (`languageLoss` false) has no language loss: its curve is the map's (unweighted).
      const map = (await objectMapLoss.data())[0];
      objectMapLoss.dispose();
      if (trainer.languageLoss) {
        objectMapPending.push(map);
        pending.push(total - trainer.objectMap!.weight * map);
      } else pending.push(map);
    } else pending.push(total);
    if ((index + 1) % every === 0 || index + 1 === steps) {
      curve.push(Number(mean(pending.splice(0)).toFixed(5)));
      if (objectMapPending.length) objectMapCurve.push(Number(mean(objectMapPending.splice(0)).toFixed(5)));
      args.log(
        `${name} step ${index + 1}/${steps}: loss ${curve[curve.length - 1].toFixed(4)}${objectMapCurve.length ? ` (object map ${objectMapCurve[objectMapCurve.length - 1].toFixed(4)})` : ""} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }
  return {
    curve,
    every,
    seconds: (Date.now() - started) / 1000,
    ...(objectMapCurve.length ? { objectMapCurve } : {}),
  };
}

/** Side in pixels of the world's scenes (`sampleScene`'s default canvas), the frame of their objects' coordinates. */
export const SCENE_CANVAS = 64;
/** Seed of the object-map read-out (added to the run's seed; apart from the presence stage's 61 and 62). */
const OBJECT_MAP_SEED_OFFSET = 63;

/** The plan of a run: the card's, or an ablation's (the card's plan with its one change). */
export function llavaPlanFor(ablation?: string, steps?: number): LlavaPlan {
  let plan = LLAVA_PLAN;
  if (ablation !== undefined) {
    const change = LLAVA_ABLATIONS[ablation];
    if (!change)
      throw new Error(
        `pretrain llava: unknown ablation ${JSON.stringify(ablation)}; expected one of ${Object.keys(LLAVA_ABLATIONS).join(", ")}`,
      );
    plan = { ...LLAVA_PLAN, ...change };
  }
  if (steps !== undefined) {
    // --steps N sets stage 2's steps, stage 1 in proportion
    if (!(Number.isInteger(steps) && steps > 0))
      throw new Error(`pretrain llava: steps must be a positive integer, got ${steps}`);
    plan = { ...plan, steps: { stage1: Math.round((plan.steps.stage1 * steps) / plan.steps.stage2), stage2: steps } };
  }
  return plan;
}

/**
 * Trains `llava` (or, with `blind`, `llava-blind`; with `ablation`, one row
 * of the ablation table), evaluates it and writes its checkpoint and card.
 */
export async function pretrainLlava(
  args: LlavaPretrainArgs,
  planOverride?: LlavaPlan,
): Promise<{ model: LlavaForConditionalGeneration; card: CheckpointCard }> {
  const log = args.log ?? console.log;
  const seed = args.seed ?? 0;
  const blind = args.blind ?? false;
  if (blind && args.ablation !== undefined)
    throw new Error("pretrain llava-blind: ablations apply to llava, not to its blind twin");
  const plan = planOverride ?? llavaPlanFor(args.ablation, args.steps);
  if (plan.presence) checkPresencePlan(plan.presence); // before its scenes are drawn and rendered
  if (plan.objectMap) checkObjectMapObjective(plan.objectMap);
  if (plan.existenceStage) checkExistenceStage(plan.existenceStage);
  const batchSize = args.batchSize ?? plan.batchSize;
  const name = blind ? "llava-blind" : args.ablation ? `llava-ablation-${args.ablation}` : "llava";
  const visionDir = path.resolve(args.out, LLAVA_NEIGHBOURS.vision);
  const languageDir = path.resolve(args.out, LLAVA_NEIGHBOURS.language);
  for (const dir of [visionDir, languageDir])
    if (!fs.existsSync(path.join(dir, "config.json")))
      throw new Error(
        `pretrain ${name}: the backbone ${dir} is missing (make it with npm run pretrain -- ${path.basename(dir)}); the ${name} folder must sit beside it`,
      );
  const started = Date.now();
  const { model, tokenizer } = llavaFromBackbones({
    vision: visionDir,
    language: languageDir,
    visionFeatureLayer: plan.visionFeatureLayer,
    projectorType: plan.projectorType,
    projectorWindow: plan.projectorWindow ?? LLAVA_PLAN_FIELD_DEFAULTS.projectorWindow,
    seed,
  });
  const imageTokens = model.imageTokensPerImage;
  const data = await llavaTrainingData(args.world, plan, seed, !blind);
  log(
    `${name}: ${data.scenes.length} scenes, stage-2 mixture ${JSON.stringify(data.counts)} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
  const stage2Images = [...data.stage2, ...data.existence].map((e) => e.image);
  const cache = blind ? undefined : featureCache(model, [...data.scenes.map((s) => s.image), ...stage2Images]);
  if (cache) {
    await cache.precompute([...new Set([...data.scenes.map((s) => s.image.key), ...stage2Images.map((i) => i.key)])]);
    log(`${name}: tower features of ${cache.size} images (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  const stageArgs = (stage: LlavaStage) => ({
    batchSize,
    learningRate: stage === 1 ? plan.learningRates.stage1 : plan.learningRates.stage2,
    seed: seed + 10 + stage,
    log,
  });
  let presence: StageRun | undefined;
  if (!blind && plan.presence) {
    // Fresh scenes of their own (seed apart from stage 2's and the eval's draws), their features cached apart and freed;
    // their pixels are dropped once the features are cached.
    let scenes = await presenceScenes(plan.presence.scenes, seed + 61, rgbOfSvg);
    const presenceCache = featureCache(
      model,
      scenes.map((s) => ({ key: s.key, rgb: s.rgb })),
    );
    try {
      await presenceCache.precompute(scenes.map((s) => s.key));
      scenes = scenes.map((s) => ({ key: s.key, objects: s.objects }));
      log(`${name}: presence stage, tower features of ${scenes.length} scenes (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      presence = await trainProjectorPresence(model, scenes, presenceCache, plan.presence, { seed: seed + 62, log, name });
    } finally {
      presenceCache.clear();
    }
  }
  // The object-map read-out (one for both stages, dropped at the end) and each batch's targets on the token grid,
  // computed before the batch's other tensors (they check the annotations; nothing is left to free if they throw).
  const objective = blind ? undefined : plan.objectMap;
  const grid = objective ? tokenGridSide(imageTokens) : 0;
  const objectMap = objective && {
    ...objective,
    head: new ObjectMapHead(model.config.text.hiddenSize, seed + OBJECT_MAP_SEED_OFFSET),
  };
  const objectMaps = (images: readonly (readonly MappedObject[] | undefined)[]) =>
    objectMap ? { objectMaps: objectMapTargets(images, grid, SCENE_CANVAS) } : {};
  let stage1: StageRun = { curve: [], every: 1, seconds: 0 };
  let stage2: StageRun;
  let existenceStage: StageRun | undefined;
  try {
    if (!blind && plan.steps.stage1 > 0) {
      const trainer = new LlavaTrainer(model, { stage: 1, ...(objectMap ? { objectMap } : {}) });
      try {
        stage1 = await runStage(
          `${name} stage 1`,
          trainer,
          data.scenes,
          plan.steps.stage1,
          stageArgs(1),
          async (scenes, random) => {
            const maps = objectMaps(scenes.map((s) => s.objects));
            return {
              ...llavaBatch(
                scenes.map((s) =>
                  tokenizePlain(tokenizer, sceneCaption({ id: s.id, captions: s.captions, vqa: s.vqa }, random), { imageTokens }),
                ),
                tokenizer.padTokenId,
                await cache!.features(scenes.map((s) => s.image.key)),
              ),
              ...maps,
            };
          },
        );
      } finally {
        trainer.dispose();
      }
    }
    const stage2Batch = async (examples: readonly Stage2Example[], random: Random) => {
      const maps = objectMaps(examples.map((e) => e.objects));
      return {
        ...llavaBatch(
          examples.map((e) => tokenizeConversation(tokenizer, e.conversation(random), { imageTokens, blind })),
          tokenizer.padTokenId,
          cache ? await cache.features(examples.map((e) => e.image.key)) : undefined,
        ),
        ...maps,
      };
    };
    // Each conversation's length for grouping batches by it: one draw of its phrasing (seeded apart from the stages'), the
    // tokens the batch will hold (images expanded; none for the blind twin). A later draw differs by a few tokens.
    const lengthsOf = (examples: readonly Stage2Example[]) => {
      if (!(plan.groupByLength ?? LLAVA_PLAN_FIELD_DEFAULTS.groupByLength)) return undefined;
      const random = new Random(seed + GROUP_BY_LENGTH_SEED_OFFSET);
      return examples.map((e) => tokenizeConversation(tokenizer, e.conversation(random), { imageTokens, blind }).inputIds.length);
    };
    const stage2Trainer = () =>
      new LlavaTrainer(model, {
        stage: 2,
        lossWeighting: plan.lossWeighting ?? LLAVA_PLAN_FIELD_DEFAULTS.lossWeighting,
        ...(objectMap ? { objectMap } : {}),
      });
    const trainer = stage2Trainer();
    try {
      stage2 = await runStage(
        `${name} stage 2`,
        trainer,
        data.stage2,
        plan.steps.stage2,
        { ...stageArgs(2), lengths: lengthsOf(data.stage2) },
        stage2Batch,
      );
    } finally {
      trainer.dispose();
    }
    if (plan.existenceStage) {
      // A fresh optimiser (its own warm-up and cosine), the existence conversations with stage 2's mixture replayed.
      const existenceTrainer = stage2Trainer();
      const examples = [...data.existence, ...data.stage2];
      try {
        existenceStage = await runStage(
          `${name} existence stage`,
          existenceTrainer,
          examples,
          plan.existenceStage.steps,
          {
            ...stageArgs(2),
            learningRate: plan.existenceStage.learningRate,
            seed: seed + EXISTENCE_STAGE_SEED_OFFSET + 4,
            lengths: lengthsOf(examples),
          },
          stage2Batch,
        );
      } finally {
        existenceTrainer.dispose();
      }
    }
  } finally {
    objectMap?.head.dispose();
  }
  cache?.clear();
  const trainSeconds = (Date.now() - started) / 1000;
  log(`${name}: trained in ${trainSeconds.toFixed(0)} s; evaluating`);
  const evaluated = Date.now();
  let blindTwin: LoadedLlava | undefined;
  const blindDir = path.resolve(args.out, LLAVA_NEIGHBOURS.blind);
  if (!blind && !args.ablation && fs.existsSync(path.join(blindDir, "config.json"))) blindTwin = loadLlava(blindDir);
  let evaluation: LlavaEvaluation;
  let quick: LlavaEvaluation | undefined;
  try {
    evaluation = await evaluateLlava(model, tokenizer, args.world, { blind, blindModel: blindTwin, log, limit: args.evalLimit });
    // The first QUICK_EVAL_LIMIT records of each set as well: what the checkpoint test reproduces within its time budget.
    if (args.evalLimit === undefined && !args.ablation)
      quick = await evaluateLlava(model, tokenizer, args.world, { blind, blindModel: blindTwin, limit: QUICK_EVAL_LIMIT });
  } finally {
    blindTwin?.model.dispose();
  }
  const evalSeconds = (Date.now() - evaluated) / 1000;
  const card = llavaCard({
    name,
    plan,
    batchSize,
    seed,
    blind,
    ablation: args.ablation,
    model,
    data,
    presence,
    stage1,
    stage2,
    existenceStage,
    trainSeconds,
    evalSeconds,
    evaluation,
    hasBlindTwin: !!blindTwin,
    quick,
  });
  if (!args.dryRun) {
    if (args.ablation) {
      // Ablations keep no weights: their card.json alone, for the ablation table of llava's card.
      fs.mkdirSync(args.out, { recursive: true });
      fs.writeFileSync(path.join(args.out, "card.json"), JSON.stringify(card, null, 2) + "\n");
      const llavaDir = path.resolve(args.out, LLAVA_NEIGHBOURS.llava);
      if (fs.existsSync(path.join(llavaDir, "card.json"))) {
        const rows = recordLlavaAblations(llavaDir, log);
        log(`${name}: llava's card and README now report ${rows.length} ablation(s)`);
      }
    } else {
      const tokenizerDir = languageDir;
      if (blind) {
        const config = {
          ...llamaConfigToHF(model.languageModel.config),
          mllm_labs: {
            blind_twin_of: LLAVA_NEIGHBOURS.llava,
            vision_checkpoint: LLAVA_NEIGHBOURS.vision,
            note: "The language backbone tuned on llava's stage-2 conversations with the image removed: the blind baseline of ../llava. mllm-labs eval measures it on llava's metrics with no image (loadLlava wraps it in a LLaVA whose tower, from ../vision, is never used).",
          },
        };
        await writeCheckpoint(args.out, model.languageModel, config, card, tokenizerDir);
      } else {
        await writeCheckpoint(args.out, model, llavaConfigToHF(model.config), card, tokenizerDir);
      }
      fs.appendFileSync(path.join(args.out, "README.md"), llavaCardTables(card));
      // The ablation cards already beside it (each row says where its plan departs from this card's). The checkpoint is
      // complete by now: a bad ablation card must not fail the run that wrote it.
      if (!blind)
        try {
          recordLlavaAblations(args.out, log);
        } catch (error) {
          log(`${name}: written; its ablation table was not gathered: ${(error as Error).message}`);
        }
    }
  }
  return { model, card };
}

// ---------------------------------------------------------------------------------------------------------------
// The ablation table

/** The metrics each ablation row reports (issue 16's targets, and the domains). */
export const LLAVA_ABLATION_METRICS = [
  "vqa_color_accuracy",
  "vqa_shape_accuracy",
  "pope_adversarial_f1",
  "code_same_pixels",
  "medical_location_f1",
  "sentiment_fresh_accuracy",
  "sentiment_fresh_disagree_accuracy",
] as const;

/** One row of llava's ablation table. */
export interface LlavaAblationRow {
  /** The ablation's name (the reference row, the committed llava itself: `llava (the card)`). */
  readonly name: string;
  /** Where its plan departs from the card's ({@link LLAVA_ABLATIONS}' one change, or more for a run on an earlier plan). */
  readonly change: Partial<LlavaPlan>;
  readonly command: string;
  readonly train_seconds: number;
  readonly metrics: Record<string, number>;
}

const ABLATIONS_START = "<!-- ablations: written by recordLlavaAblations, do not edit -->";
const ABLATIONS_END = "<!-- end of ablations -->";

/** JSON with every object's keys sorted, so that `{ stage2, stage1 }` and `{ stage1, stage2 }` compare equal. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => a.localeCompare(b)))
      : inner,
  );
}

/**
 * Where `plan` departs from `reference`: the fields whose values differ, with `plan`'s values (a plan written before an
 * optional field existed means its default: projector window 1, token loss weighting).
 */
export function llavaPlanDifference(plan: Partial<LlavaPlan>, reference: Partial<LlavaPlan>): Partial<LlavaPlan> {
  const [ours, theirs]: Record<string, unknown>[] = [
    { ...LLAVA_PLAN_FIELD_DEFAULTS, ...plan },
    { ...LLAVA_PLAN_FIELD_DEFAULTS, ...reference },
  ];
  const keys = [...new Set([...Object.keys(ours), ...Object.keys(theirs)])];
  return Object.fromEntries(
    keys.filter((key) => canonicalJson(ours[key]) !== canonicalJson(theirs[key])).map((key) => [key, ours[key]]),
  ) as Partial<LlavaPlan>;
}

/**
 * Gathers the ablation cards beside `llavaDir` (`../llava-ablation-NAME/card.json`, written by
 * `npm run pretrain -- llava --ablation NAME`) into llava's card.json (`ablations`) and README ("Ablations"), with the
 * committed llava as the first row: every ablation runs the card's plan with one change, so that row is its reference.
 * Each row's `change` is where its plan departs from the card's: an ablation run before the card's plan changed shows
 * that change too (and sorts after the rows of the card's plan), and `log` says so. Called at the end of each ablation
 * run. @returns the ablation rows (the committed llava's excluded)
 */
export function recordLlavaAblations(llavaDir: string, log: (line: string) => void = console.log): LlavaAblationRow[] {
  const cardFile = path.join(llavaDir, "card.json");
  if (!fs.existsSync(cardFile)) throw new Error(`recordLlavaAblations: ${cardFile} is missing (train llava first)`);
  const card = JSON.parse(fs.readFileSync(cardFile, "utf8")) as CheckpointCard & Record<string, unknown>;
  const parent = path.dirname(path.resolve(llavaDir));
  const pick = (metrics: Record<string, number>) => Object.fromEntries(LLAVA_ABLATION_METRICS.map((key) => [key, metrics[key]]));
  const rows: LlavaAblationRow[] = [];
  const earlierRows: LlavaAblationRow[] = [];
  for (const name of Object.keys(LLAVA_ABLATIONS)) {
    const file = path.join(parent, `llava-ablation-${name}`, "card.json");
    if (!fs.existsSync(file)) continue;
    const ablation = JSON.parse(fs.readFileSync(file, "utf8")) as CheckpointCard & Record<string, unknown>;
    if (ablation.name !== `llava-ablation-${name}`)
      throw new Error(
        `recordLlavaAblations: ${file} is the card of ${JSON.stringify(ablation.name)}, expected llava-ablation-${name}`,
      );
    if (ablation.plan === undefined) throw new Error(`recordLlavaAblations: ${file} records no plan`);
    const cardPlan = card.plan as LlavaPlan;
    const change = llavaPlanDifference(ablation.plan as LlavaPlan, cardPlan);
    const expected = llavaPlanDifference({ ...cardPlan, ...LLAVA_ABLATIONS[name] }, cardPlan);
    const earlier = canonicalJson(change) !== canonicalJson(expected);
    if (earlier)
      log(
        `recordLlavaAblations: ${file} ran another plan than llava's with its one change (${JSON.stringify(change)} against llava's): an earlier plan's row, or a run with --steps; rerun it to compare with llava${name === "default" ? " (this default row is the earlier plan's reference: rerun the others first)" : ""}`,
      );
    (earlier ? earlierRows : rows).push({
      name,
      change,
      command: String(ablation.command),
      train_seconds: ablation.train_seconds,
      metrics: pick(ablation.metrics),
    });
  }
  const reference: LlavaAblationRow = {
    name: "llava (the card)",
    change: {},
    command: String(card.command),
    train_seconds: card.train_seconds,
    metrics: pick(card.metrics),
  };
  const blind = (card.baselines as Record<string, Record<string, number>> | undefined)?.blind;
  rows.push(...earlierRows);
  card.ablations = {
    note: "Each row is a plan that departs from the card's where its change says (an ablation of LLAVA_ABLATIONS: one change; a run on an earlier plan shows that plan's differences too, to be compared with the earlier plan's default row), same data and seed, evaluated on the full test sets like the card; no weights are kept.",
    rows: [reference, ...rows],
    ...(blind ? { blind: pick(blind) } : {}),
  };
  fs.writeFileSync(cardFile, JSON.stringify(card, null, 2) + "\n");
  const readmeFile = path.join(llavaDir, "README.md");
  const readme = fs.existsSync(readmeFile) ? fs.readFileSync(readmeFile, "utf8") : "";
  const cell = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? "—" : value.toFixed(3));
  const section = [
    ABLATIONS_START,
    "## Ablations",
    "",
    "Each row is the card's plan with the change shown (same data, seed and evaluation); `npm run pretrain -- llava --ablation NAME` made it and keeps no weights. A row run on an earlier plan shows where that plan departs from the card's as well: compare it with the earlier plan's `default` row, not with the card.",
    "",
    `| run | change | ${LLAVA_ABLATION_METRICS.join(" | ")} | train seconds |`,
    `|---|---|${LLAVA_ABLATION_METRICS.map(() => "---|").join("")}---|`,
    ...[reference, ...rows].map(
      (row) =>
        `| ${row.name} | ${Object.keys(row.change).length ? JSON.stringify(row.change).replace(/\|/g, "\\|") : "—"} | ${LLAVA_ABLATION_METRICS.map((key) => cell(row.metrics[key])).join(" | ")} | ${Math.round(row.train_seconds)} |`,
    ),
    ...(blind ? [`| blind twin | no image | ${LLAVA_ABLATION_METRICS.map((key) => cell(blind[key])).join(" | ")} | |`] : []),
    ABLATIONS_END,
    "",
  ].join("\n");
  const start = readme.indexOf(ABLATIONS_START);
  const end = readme.indexOf(ABLATIONS_END);
  const updated =
    start >= 0 && end > start
      ? readme.slice(0, start) + section + readme.slice(end + ABLATIONS_END.length + 1)
      : readme + (readme.endsWith("\n") ? "\n" : "\n\n") + section;
  fs.writeFileSync(readmeFile, updated);
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

/** A LLaVA model with its tokenizer. */
export interface LoadedLlava {
  readonly model: LlavaForConditionalGeneration;
  readonly tokenizer: TextTokenizer;
}

/**
 * Loads `data/checkpoints/llava` (a transformers-layout LLaVA with its
 * tokenizer) or its blind twin `data/checkpoints/llava-blind` (a Llama; it is
 * wrapped in a LLaVA with the tower of the folder its config.json names, so
 * that `chat` and {@link evaluateLlava} take it with no image).
 */
export function loadLlava(directory: string): LoadedLlava {
  const config = readHFConfig(directory);
  const type = config.json.model_type;
  if (type === "llava") return { model: loadLlavaModel(directory), tokenizer: loadTokenizer(directory) };
  const labs = config.json.mllm_labs;
  if (type === "llama" && labs?.blind_twin_of && labs?.vision_checkpoint)
    return llavaFromBackbones({ vision: path.resolve(directory, labs.vision_checkpoint), language: directory });
  throw new Error(
    `loadLlava: ${config.where} has model_type ${JSON.stringify(type)}; expected "llava", or "llama" with mllm_labs.blind_twin_of and vision_checkpoint (a blind twin such as data/checkpoints/llava-blind)`,
  );
}

/** The blind twin a llava checkpoint names in its card.json (`baseline_checkpoints.blind`), when that folder exists. */
export function blindTwinOf(directory: string): string | undefined {
  const cardFile = path.join(directory, "card.json");
  if (!fs.existsSync(cardFile)) return undefined;
  const card = JSON.parse(fs.readFileSync(cardFile, "utf8"));
  const relative = card?.baseline_checkpoints?.blind;
  if (typeof relative !== "string") return undefined;
  const twin = path.resolve(directory, relative);
  return fs.existsSync(path.join(twin, "config.json")) ? twin : undefined;
}

/** What a llava folder's card may say about its own eval (llava-code's `eval_options` and `base_checkpoint`). */
interface LlavaEvalCard {
  readonly eval_options?: Pick<EvaluateLlavaOptions, "sets" | "limit" | "freshMedicalScans">;
  readonly base_checkpoint?: string;
}

/**
 * `mllm-labs eval` of a LLaVA folder or of a blind twin (model_type llama with `mllm_labs.blind_twin_of`): the test sets
 * its card's `eval_options` name (default all), the blind twin its card names (`baseline_checkpoints.blind`) as
 * `baselines.blind`, and, when the card names the model it was tuned from (`base_checkpoint`), that model measured the
 * same way as `baselines.before_tuning`. A blind folder is measured with no image, its base too.
 */
export async function evaluateLlavaCheckpoint(
  directory: string,
  world: string,
  options: { readonly log?: (line: string) => void } = {},
): Promise<LlavaEvaluation> {
  const cardFile = path.join(directory, "card.json");
  const card: LlavaEvalCard | undefined = fs.existsSync(cardFile) ? JSON.parse(fs.readFileSync(cardFile, "utf8")) : undefined;
  const blind = readHFConfig(directory).json.model_type !== "llava";
  const evalOptions = { ...(card?.eval_options ?? {}), blind, log: options.log };
  const withModel = async <T>(dir: string, measure: (llava: LoadedLlava) => Promise<T>): Promise<T> => {
    const llava = loadLlava(dir);
    try {
      return await measure(llava);
    } finally {
      llava.model.dispose();
    }
  };
  const twinDir = blind ? undefined : blindTwinOf(directory);
  const evaluation = await withModel(directory, (llava) =>
    twinDir
      ? withModel(twinDir, (twin) => evaluateLlava(llava.model, llava.tokenizer, world, { ...evalOptions, blindModel: twin }))
      : evaluateLlava(llava.model, llava.tokenizer, world, evalOptions),
  );
  if (card?.base_checkpoint === undefined) return evaluation;
  const baseDir = path.resolve(directory, card.base_checkpoint);
  if (!fs.existsSync(path.join(baseDir, "config.json")))
    throw new Error(
      `eval: ${cardFile} names base_checkpoint ${JSON.stringify(card.base_checkpoint)}, but ${baseDir} holds no checkpoint`,
    );
  const before = await withModel(baseDir, (llava) => evaluateLlava(llava.model, llava.tokenizer, world, evalOptions));
  return { metrics: evaluation.metrics, baselines: { before_tuning: before.metrics, ...(evaluation.baselines ?? {}) } };
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

/** Options of {@link evaluateLlava}. */
export interface EvaluateLlavaOptions {
  /** Evaluate only the first `limit` test records of each set (a quick subset). Default all. */
  readonly limit?: number;
  /** The model answers with no image (how the blind twin is measured). Default false. */
  readonly blind?: boolean;
  /** The blind twin ({@link loadLlava} of `llava-blind`): measured the same way, with no image, as `baselines.blind`. */
  readonly blindModel?: LoadedLlava;
  /** Progress lines. Default none. */
  readonly log?: (line: string) => void;
  /** Which test sets to ask (a domain tuning measures its own set and what it may forget). Default all of {@link LLAVA_TEST_SETS}. */
  readonly sets?: readonly LlavaTestSet[];
  /** Medical scans drawn fresh (seed {@link FRESH_MEDICAL_SEED}) added to the medical test split's 50. Default 0. */
  readonly freshMedicalScans?: number;
}

/** The test sets of {@link evaluateLlava}: scenes (VQA), POPE, medical, code, sentiment (stored and fresh items). */
export const LLAVA_TEST_SETS = ["vqa", "pope", "medical", "code", "sentiment"] as const;
export type LlavaTestSet = (typeof LLAVA_TEST_SETS)[number];

/** The model's metrics and the baselines' (blind twin, chance, majority answers, single-side sentiment rules, empty program). */
export interface LlavaEvaluation {
  readonly metrics: Record<string, number>;
  readonly baselines?: Record<string, Record<string, number>>;
}

/** Test records per set of the card's quick eval (`quick_eval`, reproduced by test/llava_checkpoint.test.ts). */
export const QUICK_EVAL_LIMIT = 20;

/** Fresh sentiment items the eval adds (the stored test split has only 17 where face and text disagree). */
export const FRESH_SENTIMENT_ITEMS = 600;
/** Seed of those items: apart from the world's splits and from training's draws. */
export const FRESH_SENTIMENT_SEED = 2026;
/** Seed of the fresh medical scans an eval may add: apart from the world's splits, training's draws and the sentiment items. */
export const FRESH_MEDICAL_SEED = 2027;

/** What one question of the eval needs: its image, the user's message, how long an answer may be. */
interface Probe {
  readonly image: ImageSource;
  readonly message: string;
  readonly maxNewTokens: number;
}

/** The test sets, loaded once per eval (the first `limit` records of each). */
interface LlavaTestSets {
  readonly scenes: {
    image: ImageSource;
    objects: Pick<SceneObject, "color" | "shape">[];
    id: string;
    vqa: { type: QuestionType; question: string; answers: string[] }[];
  }[];
  readonly pope: Record<(typeof POPE_NEGATIVES)[number], PopeQuestion[]>;
  readonly medical: { image: ImageSource; instruction: string; lesions: Lesion[] }[];
  readonly code: { image: ImageSource; instruction: string; program: string }[];
  readonly sentiment: { image: ImageSource; instruction: string; item: Omit<SentimentItem, "answer"> }[];
  readonly freshSentiment: { image: ImageSource; instruction: string; item: Omit<SentimentItem, "answer"> }[];
}

async function llavaTestSets(
  world: string,
  limit: number | undefined,
  renderImages: boolean,
  only: readonly LlavaTestSet[] = LLAVA_TEST_SETS,
  freshMedicalScans = 0,
): Promise<LlavaTestSets> {
  const take = <R>(records: readonly R[]) => (limit === undefined ? records : records.slice(0, limit));
  const wanted = new Set(only);
  // Only the sets asked for are opened, so a world made with some sets (`npm run data -- --sets sentiment`) serves them.
  const open = (set: string, needed: boolean) => {
    if (!needed) return { dir: "", records: [] };
    const split = openSplit(world, set, "test");
    return { dir: split.dir, records: take(split.records) };
  };
  const image = (dir: string, file: string): ImageSource => ({ key: path.join(dir, file) });
  const scenes = open("scenes", wanted.has("vqa") || wanted.has("pope"));
  const sceneList = scenes.records.map((r) => ({ image: image(scenes.dir, r.image), objects: r.objects, id: r.id, vqa: r.vqa }));
  const pope = Object.fromEntries(
    POPE_NEGATIVES.map((negatives) => [negatives, buildPopeQuestions(sceneList, { negatives, perImage: 3, seed: 0 })]),
  ) as LlavaTestSets["pope"];
  const firstInstruction = (set: string, r: { id?: string; conversations?: unknown }) =>
    withoutImages(storedConversation(set, r)[0].value);
  const medical = open("medical", wanted.has("medical"));
  const code = open("code", wanted.has("code"));
  const sentiment = open("sentiment", wanted.has("sentiment"));
  const random = new Random(FRESH_SENTIMENT_SEED);
  const freshSentiment: LlavaTestSets["freshSentiment"] = [];
  for (let k = 0; wanted.has("sentiment") && k < Math.min(FRESH_SENTIMENT_ITEMS, limit ?? Infinity); k++) {
    const sample = sampleSentiment(random, CANVAS);
    freshSentiment.push({
      image: { key: `fresh/sentiment-eval/${k}`, rgb: renderImages ? await rgbOfSvg(sample.svg) : undefined },
      instruction: sentimentInstruction(sample.text),
      item: { label: sample.label, face: sample.face, textSentiment: sample.textSentiment },
    });
  }
  const freshMedical: LlavaTestSets["medical"] = [];
  const medicalRandom = new Random(FRESH_MEDICAL_SEED);
  for (let k = 0; wanted.has("medical") && k < freshMedicalScans; k++) {
    const scan = sampleScan(medicalRandom, CANVAS);
    freshMedical.push({
      image: { key: `fresh/medical-eval/${k}`, rgb: renderImages ? rgbOfGray(scan.pixels) : undefined },
      instruction: MEDICAL_FINDINGS_INSTRUCTION,
      lesions: [...scan.lesions],
    });
  }
  const ifWanted = <T>(set: LlavaTestSet, list: readonly T[]): T[] => (wanted.has(set) ? [...list] : []);
  return {
    // POPE asks about the scenes too: they stay when it is wanted, without their VQA questions unless those are.
    scenes: wanted.has("vqa") ? sceneList : wanted.has("pope") ? sceneList.map((s) => ({ ...s, vqa: [] })) : [],
    pope: Object.fromEntries(
      Object.entries(pope).map(([n, questions]) => [n, ifWanted("pope", questions)]),
    ) as LlavaTestSets["pope"],
    medical: ifWanted("medical", [
      ...medical.records.map((r) => ({
        image: image(medical.dir, r.image),
        instruction: MEDICAL_FINDINGS_INSTRUCTION,
        lesions: r.lesions,
      })),
      ...freshMedical,
    ]),
    code: ifWanted("code", code.records).map((r) => ({
      image: image(code.dir, r.image),
      instruction: firstInstruction("code", r),
      program: r.program,
    })),
    sentiment: ifWanted("sentiment", sentiment.records).map((r) => ({
      image: image(sentiment.dir, r.image),
      instruction: firstInstruction("sentiment", r),
      item: { label: r.label, face: r.face, textSentiment: r.text_sentiment },
    })),
    freshSentiment,
  };
}

/** Answers every probe greedily (batches of 64 with the same answer length), with the image's features or blind. */
async function answerProbes(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  probes: readonly Probe[],
  cache: VisionFeatureCache | undefined,
): Promise<string[]> {
  const answers = new Array<string>(probes.length);
  const byLength = new Map<number, number[]>();
  probes.forEach((p, k) => byLength.set(p.maxNewTokens, [...(byLength.get(p.maxNewTokens) ?? []), k]));
  for (const [maxNewTokens, indices] of byLength) {
    for (let start = 0; start < indices.length; start += 64) {
      const chunk = indices.slice(start, start + 64);
      const messages: ChatMessage[][] = chunk.map((k) => [{ role: "user", content: probes[k].message }]);
      const features = cache ? await cache.features(chunk.map((k) => probes[k].image.key)) : undefined;
      try {
        const replies = await chatBatch(model, tokenizer, messages, features ? { visionFeatures: features } : {}, {
          maxNewTokens,
        });
        replies.forEach((reply, i) => (answers[chunk[i]] = reply.text.trim()));
      } finally {
        features?.dispose();
      }
    }
  }
  return answers;
}

const ANSWER_TOKENS = { short: 6, findings: 48, program: 64 } as const;

/** Every metric of the eval from the answers of one model (or one baseline rule) to the test sets. */
async function llavaMetrics(
  sets: LlavaTestSets,
  answers: {
    vqa: readonly string[];
    pope: Record<string, readonly string[]>;
    medical?: readonly string[];
    code?: readonly string[];
    sentiment?: readonly string[];
    freshSentiment?: readonly string[];
  },
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const questions = sets.scenes.flatMap((s) => s.vqa);
  if (answers.vqa.length) Object.assign(out, vqaScores("", answers.vqa, questions));
  for (const negatives of POPE_NEGATIVES) {
    const given = answers.pope[negatives];
    if (!given?.length) continue;
    const m = popeMetrics(
      given,
      sets.pope[negatives].map((q) => q.answer),
    );
    Object.assign(out, {
      [`pope_${negatives}_accuracy`]: m.accuracy,
      [`pope_${negatives}_precision`]: m.precision,
      [`pope_${negatives}_recall`]: m.recall,
      [`pope_${negatives}_f1`]: m.f1,
      [`pope_${negatives}_yes_ratio`]: m.yesRatio,
    });
  }
  if (answers.medical && sets.medical.length) {
    const m = medicalFindingsMetrics(
      answers.medical,
      sets.medical.map((r) => r.lesions),
    );
    out.medical_count_accuracy = m.countAccuracy;
    out.medical_parsed = m.parsed;
    for (const field of ["location", "size", "appearance", "lesion"] as const)
      for (const score of ["precision", "recall", "f1"] as const) out[`medical_${field}_${score}`] = m[field][score];
  }
  if (answers.code && sets.code.length) {
    const { metrics } = await programMetrics(
      answers.code,
      sets.code.map((r) => r.program),
    );
    Object.assign(out, {
      code_runs: metrics.runs,
      code_same_pixels: metrics.samePixels,
      code_object_match: metrics.objectMatch,
      code_exact_program: metrics.exactProgram,
      code_pixel_agreement: metrics.pixelAgreement,
    });
  }
  const sentiment = (prefix: string, items: LlavaTestSets["sentiment"], given?: readonly string[]) => {
    if (!given || !items.length) return;
    const m = sentimentMetrics(items.map((r, k) => ({ ...r.item, answer: given[k] })));
    out[`${prefix}_accuracy`] = m.all.accuracy;
    out[`${prefix}_macro_f1`] = m.all.macroF1;
    if (m.disagreeing) {
      out[`${prefix}_disagree_accuracy`] = m.disagreeing.accuracy;
      out[`${prefix}_disagree_macro_f1`] = m.disagreeing.macroF1;
      out[`${prefix}_disagree_count`] = m.disagreeing.count;
    }
  };
  sentiment("sentiment", sets.sentiment, answers.sentiment);
  sentiment("sentiment_fresh", sets.freshSentiment, answers.freshSentiment);
  return out;
}

/** Answers of a model to every test set. */
async function modelAnswers(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  sets: LlavaTestSets,
  blind: boolean,
): Promise<Parameters<typeof llavaMetrics>[1]> {
  const images = [
    ...sets.scenes.map((s) => s.image),
    ...sets.medical.map((r) => r.image),
    ...sets.code.map((r) => r.image),
    ...sets.sentiment.map((r) => r.image),
    ...sets.freshSentiment.map((r) => r.image),
  ];
  const cache = blind ? undefined : featureCache(model, images);
  const sceneOf = new Map(sets.scenes.map((s) => [s.id, s.image]));
  const probes: Probe[] = [];
  const add = (list: Probe[]) => {
    const start = probes.length;
    probes.push(...list);
    return [start, probes.length] as const;
  };
  const vqa = add(
    sets.scenes.flatMap((s) => s.vqa.map((q) => ({ image: s.image, message: q.question, maxNewTokens: ANSWER_TOKENS.short }))),
  );
  const pope = Object.fromEntries(
    POPE_NEGATIVES.map((n) => [
      n,
      add(sets.pope[n].map((q) => ({ image: sceneOf.get(q.imageId)!, message: q.question, maxNewTokens: ANSWER_TOKENS.short }))),
    ]),
  );
  const medical = add(
    sets.medical.map((r) => ({ image: r.image, message: r.instruction, maxNewTokens: ANSWER_TOKENS.findings })),
  );
  const code = add(sets.code.map((r) => ({ image: r.image, message: r.instruction, maxNewTokens: ANSWER_TOKENS.program })));
  const sentiment = add(
    sets.sentiment.map((r) => ({ image: r.image, message: r.instruction, maxNewTokens: ANSWER_TOKENS.short })),
  );
  const freshSentiment = add(
    sets.freshSentiment.map((r) => ({ image: r.image, message: r.instruction, maxNewTokens: ANSWER_TOKENS.short })),
  );
  try {
    const all = await answerProbes(model, tokenizer, probes, cache);
    const range = ([a, b]: readonly [number, number]) => all.slice(a, b);
    return {
      vqa: range(vqa),
      pope: Object.fromEntries(Object.entries(pope).map(([n, r]) => [n, range(r)])),
      medical: range(medical),
      code: range(code),
      sentiment: range(sentiment),
      freshSentiment: range(freshSentiment),
    };
  } finally {
    cache?.clear();
  }
}

/**
 * Every metric of issue 16 on the world's test sets: VQA soft accuracy per
 * question type; POPE accuracy, precision, recall, F1 and yes-ratio for
 * random, popular and adversarial negatives; medical findings per field;
 * code runs, same pixels, exact program; sentiment accuracy and macro-F1,
 * overall and where face and text disagree (stored test split and 600 fresh
 * items). Baselines beside them: the blind twin (when given), chance
 * (uniform answers), the train split's majority answers, the single-side
 * sentiment rules and the empty program (the right background only).
 */
export async function evaluateLlava(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  world: string,
  options: EvaluateLlavaOptions = {},
): Promise<LlavaEvaluation> {
  const { limit } = options;
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
    throw new Error(`evaluateLlava: limit must be a positive integer (test records per set), got ${limit}`);
  const log = options.log ?? (() => {});
  const started = Date.now();
  const only = options.sets ?? LLAVA_TEST_SETS;
  for (const set of only)
    if (!(LLAVA_TEST_SETS as readonly string[]).includes(set))
      throw new Error(`evaluateLlava: unknown test set ${JSON.stringify(set)}; expected some of ${LLAVA_TEST_SETS.join(", ")}`);
  const freshMedicalScans = options.freshMedicalScans ?? 0;
  if (!(Number.isInteger(freshMedicalScans) && freshMedicalScans >= 0))
    throw new Error(`evaluateLlava: freshMedicalScans must be an integer ≥ 0, got ${freshMedicalScans}`);
  const sets = await llavaTestSets(world, limit, !options.blind, only, freshMedicalScans);
  const metrics = await llavaMetrics(sets, await modelAnswers(model, tokenizer, sets, options.blind ?? false));
  log(`llava eval: ${Object.keys(metrics).length} metrics in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const baselines: Record<string, Record<string, number>> = {};
  if (options.blindModel) {
    baselines.blind = await llavaMetrics(
      sets,
      await modelAnswers(options.blindModel.model, options.blindModel.tokenizer, sets, true),
    );
    log(`llava eval: blind twin in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  // A rule that says nothing about the sets asked (the sentiment rules when only medical is) is left out.
  for (const [name, values] of Object.entries(await ruleBaselines(world, sets)))
    if (Object.keys(values).length) baselines[name] = values;
  return { metrics, baselines };
}

/** Chance (uniform answers), majority answers (the train split's), single-side sentiment rules, the empty program. */
async function ruleBaselines(world: string, sets: LlavaTestSets): Promise<Record<string, Record<string, number>>> {
  const questions = sets.scenes.flatMap((s) => s.vqa);
  // Chance: the expected score of a uniform guess among the answers the split's annotators gave each question type.
  const chance: Record<string, number> = chanceVqaScores(questions);
  // Always "yes" on POPE (the balanced sets make it accuracy 0.5, F1 0.667, yes-ratio 1).
  const alwaysYes = Object.fromEntries(POPE_NEGATIVES.map((n) => [n, sets.pope[n].map(() => "yes")]));
  // Majority: the train split's most frequent answer per question type, the most frequent findings and sentiment label.
  // A set's train split is read only when its test set is asked (a world may hold some sets only).
  const trainRecords = <R>(set: string, asked: boolean): R[] => (asked ? (openSplit(world, set, "train").records as R[]) : []);
  const train = trainRecords<{ vqa: { type: QuestionType; answer: string }[] }>("scenes", questions.length > 0);
  const majorityOf = (values: readonly string[]) => {
    const counts = new Map<string, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? "";
  };
  const majorityAnswer = new Map(
    QUESTION_TYPES.map((t) => [t, majorityOf(train.flatMap((r) => r.vqa.filter((q) => q.type === t).map((q) => q.answer)))]),
  );
  const medicalTrain = trainRecords<{ findings: string }>("medical", sets.medical.length > 0);
  const sentimentTrain = trainRecords<{ label: string }>("sentiment", sets.sentiment.length + sets.freshSentiment.length > 0);
  const majorityFindings = majorityOf(medicalTrain.map((r) => r.findings.split(":")[0].split(".")[0]));
  const majorityLabel = majorityOf(sentimentTrain.map((r) => r.label));
  const majority = await llavaMetrics(sets, {
    vqa: questions.map((q) => majorityAnswer.get(q.type)!),
    pope: alwaysYes,
    medical: sets.medical.map(() =>
      majorityFindings === "no lesions are seen" ? "no lesions are seen. the organ looks normal." : majorityFindings,
    ),
    sentiment: sets.sentiment.map(() => majorityLabel),
    freshSentiment: sets.freshSentiment.map(() => majorityLabel),
  });
  const uniformSentiment = (items: LlavaTestSets["sentiment"]) => items.map((_, k) => SENTIMENTS[k % SENTIMENTS.length]);
  Object.assign(
    chance,
    await llavaMetrics(sets, {
      vqa: [],
      pope: alwaysYes,
      sentiment: uniformSentiment(sets.sentiment),
      freshSentiment: uniformSentiment(sets.freshSentiment),
    }),
  );
  // The single-side rules of sentimentRuleBaselines, scored through llavaMetrics so that the names match the model's.
  const rules = (side: "textSentiment" | "face") =>
    llavaMetrics(sets, {
      vqa: [],
      pope: {},
      sentiment: sets.sentiment.map((r) => r.item[side]),
      freshSentiment: sets.freshSentiment.map((r) => r.item[side]),
    });
  const emptyProgram = await llavaMetrics(sets, { vqa: [], pope: {}, code: sets.code.map((r) => r.program.split("\n")[0]) });
  return {
    chance,
    majority,
    text_only: await rules("textSentiment"),
    face_only: await rules("face"),
    empty_program: emptyProgram,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Card

export const LLAVA_METRIC_NOTES: Record<string, string> = {
  vqa_accuracy:
    "VQA soft accuracy over the scenes test split's questions, asked one per conversation with the image (greedy, ≤ 6 tokens)",
  vqa_color_accuracy: "same, color questions",
  vqa_shape_accuracy: "same, shape questions",
  pope_random_f1:
    "POPE: 'is there a <color> <shape> in the image?', up to 3 present objects per test scene and as many absent ones (random pairs); F1 with yes as positive",
  pope_popular_f1: "same, absent pairs the most frequent over the test scenes",
  pope_adversarial_f1: "same, absent pairs one attribute away from a present object (the confusable color or shape first)",
  medical_lesion_f1:
    "findings of the medical test scans ('describe the findings in this scan.') parsed into lesions; a lesion right in quadrant, size and appearance (micro P/R/F1)",
  medical_count_accuracy: "findings stating the right number of lesions",
  code_same_pixels:
    "generated drawing programs of the code test images that run and render ≥ 0.99 of the pixels as the reference (scoreProgram)",
  code_exact_program: "generated program equals the reference line for line",
  sentiment_accuracy: "sentiment test split (60 items), label parsed from the answer",
  sentiment_disagree_accuracy: "the stored test items where face and text disagree (17 items: standard error ≈ 0.12)",
  sentiment_fresh_disagree_accuracy: `${FRESH_SENTIMENT_ITEMS} sentiment items drawn fresh (seed ${FRESH_SENTIMENT_SEED}), those where face and text disagree`,
};

interface CardInputs {
  readonly name: string;
  readonly plan: LlavaPlan;
  readonly batchSize: number;
  readonly seed: number;
  readonly blind: boolean;
  readonly ablation?: string;
  readonly model: LlavaForConditionalGeneration;
  readonly data: LlavaTrainingData;
  readonly presence?: StageRun;
  readonly stage1: StageRun;
  readonly stage2: StageRun;
  readonly existenceStage?: StageRun;
  readonly trainSeconds: number;
  readonly evalSeconds: number;
  readonly evaluation: LlavaEvaluation;
  readonly quick?: LlavaEvaluation;
  readonly hasBlindTwin: boolean;
}

/** The card's words for the plan's existence questions (`existencePerScene`). */
function existenceText(plan: LlavaPlan): string {
  const perScene = plan.existencePerScene ?? LLAVA_PLAN_FIELD_DEFAULTS.existencePerScene;
  const negatives = "the negatives drawn randomly, by popularity or adversarially in turn";
  return perScene === 1
    ? `two POPE-style existence questions ('is there a <color> <shape> in the image?': one present object, one absent, ${negatives})`
    : `up to ${2 * perScene} POPE-style existence questions ('is there a <color> <shape> in the image?': up to ${perScene} present objects, each matched by an absent one, ${negatives})`;
}

function llavaCard(c: CardInputs): CheckpointCard & Record<string, unknown> {
  const mixture = Object.entries(c.data.counts)
    .map(([set, n]) => `${set} ${n}`)
    .join(", ");
  const command = c.blind
    ? "npm run pretrain -- llava-blind"
    : c.ablation
      ? `npm run pretrain -- llava --ablation ${c.ablation} --out <dir>`
      : "npm run pretrain -- llava";
  const description = c.blind
    ? `The blind baseline of ../llava: the language backbone (../language) tuned on llava's stage-2 conversations (the same mixture, ${c.plan.steps.stage2} steps of ${c.batchSize}, learning rate ${c.plan.learningRates.stage2}, seed ${c.seed})${c.existenceStage && c.plan.existenceStage ? ` and its existence stage (${c.plan.existenceStage.steps} steps, the same conversations)` : ""} with every <image> removed; no stage 1 (nothing to align). Its metrics are llava's, measured with no image.`
    : `LLaVA-1.5's recipe between the frozen image tower (../vision, layer ${c.plan.visionFeatureLayer}, ${c.model.imageTokensPerImage} patch tokens per image) and the language backbone (../language), joined by a ${c.plan.projectorType} projector${(c.plan.projectorWindow ?? 1) > 1 ? ` reading each patch's ${c.plan.projectorWindow}×${c.plan.projectorWindow} neighbourhood` : ""}: stage 1 feature alignment (projector only, plain format, scene captions, ${c.plan.steps.stage1} steps), stage 2 visual instruction tuning (projector + LLM, chat template, answer-only loss${c.plan.lossWeighting === "conversation" ? " averaged per conversation" : ""}, ${c.plan.steps.stage2} steps) on one multi-domain mixture (${mixture}). ` +
      `Scene conversations hold a brief description, the scene's VQA questions and ${existenceText(c.plan)} built on training scenes only, ${(c.plan.roundOrder ?? "shuffled") === "shuffled" ? "rounds shuffled" : "the existence questions first, then the VQA questions, the description last (each group shuffled)"}. ` +
      (c.plan.presence
        ? `Before stage 1, an object-presence stage trained the projector alone (${c.plan.presence.steps} steps of ${c.plan.presence.batchSize} on ${c.plan.presence.scenes} fresh scenes drawn with seed ${c.seed + 61}, learning rate ${c.plan.presence.learningRate}: a multiple-instance head on which colour–shape pairs a scene holds, dropped afterwards). `
        : "") +
      (c.existenceStage && c.plan.existenceStage
        ? `After stage 2, an existence stage (${c.plan.existenceStage.steps} steps, learning rate ${c.plan.existenceStage.learningRate}, projector + LLM): ${c.plan.existenceStage.scenes} fresh scenes drawn with seed ${c.seed + EXISTENCE_STAGE_SEED_OFFSET}, each a conversation of existence questions only (up to ${c.plan.existenceStage.presentPerScene ?? EXISTENCE_STAGE_PRESENT_PER_SCENE} present pairs, each matched by an absent one of each negative kind), mixed with stage 2's mixture replayed. `
        : "") +
      (c.plan.objectMap && (c.stage1.objectMapCurve || c.stage2.objectMapCurve)
        ? `In ${[c.stage1.objectMapCurve ? "stage 1" : "", c.stage2.objectMapCurve ? "stage 2" : ""].filter(Boolean).join(" and ")} an object-map objective (weight ${c.plan.objectMap.weight}) asked each image token, through a linear read-out dropped afterwards, which colour–shape pairs have their centre in its cell (scene images only; the domain images carry no annotation). `
        : "") +
      (c.plan.groupByLength
        ? "Stage 2's batches (and the existence stage's) were grouped by length (transformers' group_by_length: megabatches of 50 batches of the shuffled order, each sorted longest first). "
        : "") +
      "The folder holds the whole model (tower, projector, LLM) in transformers' layout.";
  const metricNotes = { ...LLAVA_METRIC_NOTES };
  return {
    name: c.name,
    title: c.blind
      ? "mllm-labs LLaVA blind twin: the language backbone instruction-tuned without images"
      : "mllm-labs LLaVA: the tiny CLIP tower and the tiny Llama joined by a projector, instruction-tuned on the world",
    description,
    model_type: c.blind ? "llama" : "llava",
    parameters: c.blind ? c.model.languageModel.parameterCount() : c.model.parameterCount(),
    steps:
      (c.presence ? (c.plan.presence?.steps ?? 0) : 0) +
      (c.stage1.curve.length ? c.plan.steps.stage1 + c.plan.steps.stage2 : c.plan.steps.stage2) +
      (c.existenceStage ? (c.plan.existenceStage?.steps ?? 0) : 0),
    batch_size: c.batchSize,
    train_seconds: Math.round(c.trainSeconds),
    ...machineRecord(),
    seed: c.seed,
    data: `stage 1: ${c.data.scenes.length} scenes (the 3000 stored training scenes + ${c.plan.freshScenes} drawn fresh with seed ${c.seed + 3}); stage 2: ${mixture} (stored train splits + ${c.plan.freshPerDomain} fresh per domain set, same seed)${c.presence && c.plan.presence ? `; presence stage: ${c.plan.presence.scenes} fresh scenes drawn with seed ${c.seed + 61}` : ""}${c.existenceStage && c.plan.existenceStage ? `; existence stage: ${c.plan.existenceStage.scenes} fresh scenes drawn with seed ${c.seed + EXISTENCE_STAGE_SEED_OFFSET} + the stage-2 mixture` : ""}; tower features computed once`,
    loss_curve: [...c.stage1.curve, ...c.stage2.curve, ...(c.existenceStage?.curve ?? [])],
    loss_every: c.stage2.every,
    metrics: c.evaluation.metrics,
    metric_notes: metricNotes,
    command,
    stage_losses: {
      ...(c.presence ? { presence: c.presence.curve } : {}),
      stage1: c.stage1.curve,
      stage2: c.stage2.curve,
      ...(c.existenceStage ? { existence: c.existenceStage.curve } : {}),
      ...(c.stage1.objectMapCurve ? { stage1_object_map: c.stage1.objectMapCurve } : {}),
      ...(c.stage2.objectMapCurve ? { stage2_object_map: c.stage2.objectMapCurve } : {}),
    },
    stage_seconds: {
      ...(c.presence ? { presence: Math.round(c.presence.seconds) } : {}),
      stage1: Math.round(c.stage1.seconds),
      stage2: Math.round(c.stage2.seconds),
      ...(c.existenceStage ? { existence: Math.round(c.existenceStage.seconds) } : {}),
      eval: Math.round(c.evalSeconds),
    },
    plan: c.plan,
    baselines: c.evaluation.baselines,
    ...(c.blind ? {} : { baseline_checkpoints: { blind: LLAVA_NEIGHBOURS.blind } }),
    ...(c.blind || c.ablation ? {} : { blind_twin_measured: c.hasBlindTwin }),
    ...(c.ablation ? { ablation: c.ablation } : {}),
    ...(c.quick ? { quick_eval: { limit: QUICK_EVAL_LIMIT, ...c.quick } } : {}),
  };
}

/** The README's tables: every metric beside its baselines, the stages' times. */
function llavaCardTables(card: CheckpointCard & Record<string, unknown>): string {
  const baselines = (card.baselines ?? {}) as Record<string, Record<string, number>>;
  const seconds = card.stage_seconds as Record<string, number>;
  const plan = card.plan as LlavaPlan;
  return [
    "",
    "## Baselines",
    "",
    "blind: the blind twin (../llava-blind, same conversations without the image) answering with no image. chance: a uniform guess among each question type's answers; POPE always 'yes'; a uniform sentiment label. majority: the train split's most frequent answer per question type, findings count and sentiment label (POPE: always 'yes'). text_only / face_only: answer the text's / the face's sentiment. empty_program: only the reference's background line.",
    "",
    ...baselineTableMarkdown(card.metrics, baselines),
    "",
    "## Stages",
    "",
    "| stage | steps | peak learning rate | seconds |",
    "|---|---|---|---|",
    `| stage 1 (projector) | ${plan.steps.stage1} | ${plan.learningRates.stage1} | ${seconds.stage1} |`,
    `| stage 2 (projector + LLM) | ${plan.steps.stage2} | ${plan.learningRates.stage2} | ${seconds.stage2} |`,
    ...(plan.existenceStage && seconds.existence !== undefined
      ? [
          `| existence stage (projector + LLM) | ${plan.existenceStage.steps} | ${plan.existenceStage.learningRate} | ${seconds.existence} |`,
        ]
      : []),
    `| evaluation | | | ${seconds.eval} |`,
    "",
    `Training time ${card.train_seconds} s (tower features, fresh images and ${plan.existenceStage && seconds.existence !== undefined ? "every stage" : "both stages"}) on ${card.device}, threads ${card.threads}.`,
    "",
  ].join("\n");
}

/**
 * An object-presence stage for LLaVA's projector, run before stage 1 when a plan asks for it (docs/lab02-plan.md,
 * "POPE: the round order and the existence questions"): the projector learns which colour–shape pairs each image
 * token's window shows, from the world's exact annotations, before any caption or conversation.
 *
 * Why: a probe of the frozen tower shaped like the projector (each patch's 3 × 3 window → a hidden layer → one logit per
 * pair, the maximum over windows) answers the eval's POPE questions at F1 0.97 from the very features the projector reads
 * (`bench/llava_existence_probe.js`), while LLaVA's two stages leave POPE at the always-"yes" rule's F1: the answer is in
 * the features, and the caption and conversation losses teach the projector to surface it too weakly in 950 steps.
 * BLIP-2's stage 1 likewise teaches its bridge with direct objectives before the LLM sees it; here the objective is
 * multi-label presence, read by a multiple-instance head (the maximum over image tokens of a linear read-out of the
 * projector's output, so a pair is present when some token shows it), and the head is dropped when the stage ends:
 * the checkpoint is LLaVA's as before.
 *
 * Papers: Li et al., "BLIP-2" (ICML 2023), stage 1 before the LLM; Ilse et al., "Attention-based Deep Multiple Instance
 * Learning" (ICML 2018), max pooling over instances. Reference: salesforce/LAVIS (`blip2_qformer.py`, stage 1's losses).
 */
import * as tf from "@tensorflow/tfjs";
import type { LlavaForConditionalGeneration } from "../models/llava";
import { COLOR_NAMES, SHAPE_NAMES } from "../data/vocabulary";
import { sampleScene, sceneSvg, type SceneObject } from "../data/scene";
import { SCENE_COUNT_WEIGHTS } from "../data/world";
import { AdamW } from "../train/adamw";
import { Random } from "../util/random";
import { learningRateAt, mean } from "./common";
import { freezeForStage, type VisionFeatureCache } from "./llava_training";

/** A presence stage's schedule (`LlavaPlan.presence`; absent: no presence stage). */
export interface LlavaPresencePlan {
  /** Optimiser steps (the projector and the head). */
  readonly steps: number;
  /** Scenes drawn fresh from the world's generator for this stage alone (their tower features are cached once). */
  readonly scenes: number;
  /** Peak learning rate (linear warm-up over a tenth of the steps, cosine to 0.1 of the peak). */
  readonly learningRate: number;
  /** Scenes per step. */
  readonly batchSize: number;
}

/** Throws, naming the field and quoting its value, unless `plan` is a usable presence stage. */
export function checkPresencePlan(plan: LlavaPresencePlan): void {
  for (const field of ["steps", "scenes", "batchSize"] as const)
    if (!(Number.isInteger(plan[field]) && plan[field] > 0))
      throw new Error(`presence stage: ${field} must be a positive integer, got ${JSON.stringify(plan[field])}`);
  if (!(plan.learningRate > 0 && Number.isFinite(plan.learningRate)))
    throw new Error(`presence stage: learningRate must be a positive number, got ${JSON.stringify(plan.learningRate)}`);
}

/** The colour–shape pairs the head reads, colour-major ("red circle", "red square", …): 30. */
export const PRESENCE_PAIRS: readonly string[] = COLOR_NAMES.flatMap((color) => SHAPE_NAMES.map((shape) => `${color} ${shape}`));
const PAIR_INDEX = new Map(PRESENCE_PAIRS.map((pair, k) => [pair, k]));

/** An object's index in {@link PRESENCE_PAIRS}; an unknown colour or shape is an error naming it (`where` says who asked). */
export function presencePairIndex(object: Pick<SceneObject, "color" | "shape">, where = "presenceTargets"): number {
  const k = PAIR_INDEX.get(`${object.color} ${object.shape}`);
  if (k === undefined) throw new Error(`${where}: unknown object ${JSON.stringify(`${object.color} ${object.shape}`)}`);
  return k;
}

/** A scene's presence targets: 1 for each pair it holds, 0 for the others → [pairs]. */
export function presenceTargets(objects: readonly Pick<SceneObject, "color" | "shape">[]): number[] {
  const row = new Array<number>(PRESENCE_PAIRS.length).fill(0);
  for (const o of objects) row[presencePairIndex(o)] = 1;
  return row;
}

/** An image of the stage: its feature-cache key, its pixels when fresh, and its objects. */
export interface PresenceScene {
  readonly key: string;
  readonly rgb?: Uint8Array;
  readonly objects: readonly SceneObject[];
}

/**
 * `count` fresh scenes drawn as stage 2's are (`SCENE_COUNT_WEIGHTS`), from `seed` (keep it apart from every other draw),
 * rendered by `render` (undefined: not rendered, for a blind run).
 */
export async function presenceScenes(
  count: number,
  seed: number,
  render: ((svg: string) => Promise<Uint8Array>) | undefined,
): Promise<PresenceScene[]> {
  if (!(Number.isInteger(count) && count > 0)) throw new Error(`presenceScenes: count must be a positive integer, got ${count}`);
  const random = new Random(seed);
  const scenes: PresenceScene[] = [];
  for (let k = 0; k < count; k++) {
    const scene = sampleScene(random, { countWeights: SCENE_COUNT_WEIGHTS });
    scenes.push({ key: `fresh/presence/${k}`, rgb: render ? await render(sceneSvg(scene)) : undefined, objects: scene.objects });
  }
  return scenes;
}

/**
 * The head's logits: the projector's image tokens read out linearly per token, the maximum over tokens per pair.
 * visionFeatures: [B, N, Dvision·layers] → tokens [B, Nimg, Dtext] → [B, Nimg, pairs] → max over Nimg → [B, pairs]
 */
export function presenceLogits(
  model: LlavaForConditionalGeneration,
  visionFeatures: tf.Tensor,
  head: { weight: tf.Tensor; bias: tf.Tensor },
): tf.Tensor2D {
  return tf.tidy(() => {
    const tokens = model.projectFeatures(visionFeatures); // [B, Nimg, Dtext]
    const [B, Nimg, D] = tokens.shape;
    const perToken = tf.matMul(tokens.reshape([B * Nimg, D]), head.weight).add(head.bias); // every token a row
    return perToken.reshape([B, Nimg, PRESENCE_PAIRS.length]).max(1) as tf.Tensor2D;
  });
}

/** What the stage did: its loss reported 40 times, every how many steps, and its seconds. */
export interface PresenceRun {
  readonly curve: number[];
  readonly every: number;
  readonly seconds: number;
}

/**
 * Trains the projector (the tower and the LLM frozen) with the presence head on `scenes`' cached tower features; the
 * head is disposed at the end. Same-seed runs are identical.
 */
export async function trainProjectorPresence(
  model: LlavaForConditionalGeneration,
  scenes: readonly PresenceScene[],
  cache: VisionFeatureCache,
  plan: LlavaPresencePlan,
  args: { seed: number; log: (line: string) => void; name: string },
): Promise<PresenceRun> {
  checkPresencePlan(plan);
  if (scenes.length < plan.batchSize)
    throw new Error(`presence stage: ${scenes.length} scenes make no batch of ${plan.batchSize}`);
  const started = Date.now();
  const random = new Random(args.seed);
  const projector = freezeForStage(model, 1); // the projector learns, as in stage 1
  const width = model.config.text.hiddenSize;
  // The bias starts at −4, below the log-odds of one pair's presence (about 1 in 12: −2.4) because the head takes the
  // maximum over the image tokens, which would otherwise start at "every pair present".
  const headSeed = random.nextSeed();
  const head = tf.tidy(() => ({
    // tidy frees the initial values; the variables are kept
    weight: tf.variable(tf.randomNormal([width, PRESENCE_PAIRS.length], 0, 1 / Math.sqrt(width), "float32", headSeed)),
    bias: tf.variable(tf.fill([PRESENCE_PAIRS.length], -4)),
  }));
  const variables = [...projector, head.weight, head.bias];
  const optimizer = new AdamW({ learningRate: plan.learningRate, weightDecay: 0 });
  const every = Math.max(1, Math.floor(plan.steps / 40));
  const curve: number[] = [];
  const pending: number[] = [];
  try {
    for (let step = 0; step < plan.steps; step++) {
      optimizer.learningRate = learningRateAt(step, plan.steps, plan.learningRate, Math.floor(plan.steps / 10));
      const batch = Array.from({ length: plan.batchSize }, () => scenes[random.int(0, scenes.length)]);
      const features = await cache.features(batch.map((s) => s.key)); // [B, N, Dvision·layers]
      const targets = tf.tensor2d(batch.map((s) => presenceTargets(s.objects))); // [B, pairs]
      let loss: tf.Scalar;
      try {
        loss = optimizer.minimize(
          () => tf.tidy(() => tf.losses.sigmoidCrossEntropy(targets, presenceLogits(model, features, head)) as tf.Scalar),
          variables,
        );
      } finally {
        tf.dispose([features, targets]);
      }
      pending.push((await loss.data())[0]);
      loss.dispose();
      if ((step + 1) % every === 0 || step + 1 === plan.steps) {
        curve.push(Number(mean(pending.splice(0)).toFixed(5)));
        args.log(
          `${args.name} presence step ${step + 1}/${plan.steps}: loss ${curve[curve.length - 1].toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
        );
      }
    }
  } finally {
    optimizer.dispose();
    tf.dispose([head.weight, head.bias]);
  }
  return { curve, every, seconds: (Date.now() - started) / 1000 };
}

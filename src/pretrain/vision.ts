/**
 * The vision backbone: a tiny CLIP (ViT image tower + text tower) trained
 * contrastively on the world's scenes and captions (Radford et al., 2021,
 * "Learning Transferable Visual Models From Natural Language Supervision";
 * reference: open_clip's `ClipLoss`). The labs freeze its image tower.
 *
 * Captions repeat ("a red circle" describes many images), so the targets are
 * multi-positive: an image's target spreads evenly over every caption in the
 * batch identical to its own, and the same for texts.
 *
 * Color alone tells most random batches apart, and a model trained on random
 * batches learns color and ignores shape. So in the first half of training
 * every batch, and after it three quarters of every batch, are hard negatives: groups of one-object scenes of the same color, each
 * captioned "a <color> <shape>", which only the shape can tell apart. Those groups come from a pool of one-object scenes rendered fresh by
 * the world's generator ({@link hardNegativePool}): the train split's ≈ 200
 * per color were learned by heart (shape 0.95 on train, 0.85 on test).
 *
 * Evaluation (`evaluateVision`): zero-shot color, shape and color+shape
 * accuracy on the test split's one-object scenes, by the nearest of the 30
 * prompts "a <color> <shape>"; image→text Recall@1/5 over the test split's
 * distinct first captions.
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { CLIPModel, type CLIPConfig } from "../models/clip";
import { AdamW } from "../train/adamw";
import { Random } from "../util/random";
import { openSplit, imageTensor, recordBatches, toChannelsFirst } from "../data/loaders";
import { sampleScene, sceneSvg, svgToRgb } from "../data/scene";
import { objectName, withArticle } from "../data/captions";
import { COLOR_NAMES, SHAPE_NAMES } from "../data/vocabulary";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer";
import { runTraining, softCrossEntropy, machineRecord, writeCheckpoint, type CheckpointCard } from "./common";
import { clipConfigToHF } from "../models/clip_spec";

/** The backbone's shape (≈ 0.9M parameters with the world tokenizer). */
export function visionBackboneConfig(vocabSize: number, eosTokenId: number, seed = 0): CLIPConfig {
  return {
    vision: {
      hiddenSize: 128,
      intermediateSize: 256,
      numLayers: 3,
      numHeads: 4,
      imageSize: 64,
      patchSize: 8,
      hiddenAct: "quick_gelu",
    },
    text: {
      vocabSize,
      hiddenSize: 128,
      intermediateSize: 256,
      numLayers: 2,
      numHeads: 4,
      maxPositionEmbeddings: 40,
      hiddenAct: "quick_gelu",
      eosTokenId,
    },
    projectionDim: 128,
    seed,
  };
}

/**
 * Hard negatives drawn fresh from the world's scene generator (not the stored
 * splits): `perColor` one-object scenes of every color, as CLIP-normalised
 * pixels [N, 3, 64, 64] with their captions "a <color> <shape>", grouped by color.
 * The stored train split has only ≈ 200 one-object scenes per color, and a model
 * that sees those alone learns their shapes (0.95 on train) better than shape
 * (0.85 on test).
 */
export async function hardNegativePool(
  perColor: number,
  seed: number,
): Promise<{ pixels: tf.Tensor4D; captions: string[]; byColor: Map<string, number[]> }> {
  const random = new Random(seed);
  const size = 64;
  const scenes = [];
  const byColor = new Map<string, number[]>(COLOR_NAMES.map((c) => [c, []]));
  while (scenes.length < perColor * COLOR_NAMES.length) {
    const scene = sampleScene(random, { canvas: size, minObjects: 1, maxObjects: 1 });
    const rows = byColor.get(scene.objects[0].color)!;
    if (rows.length >= perColor) continue;
    rows.push(scenes.length);
    scenes.push(scene);
  }
  const values = new Float32Array(scenes.length * 3 * size * size);
  for (let k = 0; k < scenes.length; k += 64) {
    const images = await Promise.all(scenes.slice(k, k + 64).map((scene) => svgToRgb(sceneSvg(scene))));
    images.forEach((image, i) => toChannelsFirst(image, 0, size, "clip", values, (k + i) * 3 * size * size));
  }
  const captions = scenes.map((scene) => withArticle(objectName(scene.objects[0])));
  return { pixels: tf.tensor4d(values, [scenes.length, 3, size, size]), captions, byColor };
}

export interface PretrainArgs {
  /** The world folder (data/world). */
  readonly world: string;
  /** Where the checkpoint goes. */
  readonly out: string;
  /** Optimiser steps. */
  readonly steps?: number;
  readonly batchSize?: number;
  readonly seed?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Don't write a checkpoint (tests). */
  readonly dryRun?: boolean;
}

/** Caption token ids: `<|bos|> caption <|eos|>`, padded to the longest in the batch. */
export function captionBatch(
  tokenizer: TextTokenizer,
  captions: readonly string[],
  maxLength = 40,
): { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } {
  const { inputIds, attentionMask } = tokenizer.encodeBatch(captions, { addBos: true, addEos: true });
  if (inputIds[0].length > maxLength)
    throw new Error(`caption of ${inputIds[0].length} tokens exceeds the text tower's ${maxLength} positions`);
  return { inputIds: tf.tensor2d(inputIds, undefined, "int32"), attentionMask: tf.tensor2d(attentionMask, undefined, "int32") };
}

/** Same-text matrix, each row summing to 1: the multi-positive targets. */
export function sameTextTargets(texts: readonly string[]): tf.Tensor2D {
  const n = texts.length;
  const values = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    let count = 0;
    for (let j = 0; j < n; j++) if (texts[i] === texts[j]) count++;
    for (let j = 0; j < n; j++) if (texts[i] === texts[j]) values[i * n + j] = 1 / count;
  }
  return tf.tensor2d(values, [n, n]);
}

export async function pretrainVision(args: PretrainArgs): Promise<{ model: CLIPModel; card: CheckpointCard }> {
  const log = args.log ?? console.log;
  const steps = args.steps ?? 3600;
  const batchSize = args.batchSize ?? 64;
  const seed = args.seed ?? 0;
  const tokenizerDir = path.join(args.world, "tokenizer");
  const tokenizer = loadTokenizer(tokenizerDir);
  const train = openSplit(args.world, "scenes", "train");
  const model = new CLIPModel(visionBackboneConfig(tokenizer.vocabSize, tokenizer.eosTokenId, seed));
  const pixelsAll = await imageTensor(
    train.records.map((r) => path.join(train.dir, r.image)),
    "clip",
  ); // [N, 3, 64, 64]
  const optimizer = new AdamW({ learningRate: 1e-3, weightDecay: 0.05 });
  const random = new Random(seed + 1);
  const randomPart = Math.floor(batchSize / 4);
  const groupSize = 8;
  const hard = await hardNegativePool(800, seed + 2);
  let epoch = 0;
  let order = [
    ...recordBatches(
      train.records.map((_, k) => k),
      randomPart,
      { seed, epoch, dropLast: true },
    ),
  ];
  const run = await runTraining(
    "vision",
    steps,
    optimizer,
    1e-3,
    (step) => {
      if (order.length === 0)
        order = [
          ...recordBatches(
            train.records.map((_, k) => k),
            randomPart,
            { seed, epoch: ++epoch, dropLast: true },
          ),
        ];
      const rows = step < steps / 2 ? [] : order.shift()!; // shape first: all hard negatives in the first half
      const captions = rows.map((k) => train.records[k].captions[random.int(0, train.records[k].captions.length)]);
      const hardRows: number[] = [];
      while (rows.length + hardRows.length < batchSize) {
        // A hard-negative group: one-object scenes of one color.
        const pool = hard.byColor.get(COLOR_NAMES[random.int(0, COLOR_NAMES.length)])!;
        for (let k = 0; k < groupSize && rows.length + hardRows.length < batchSize; k++) {
          const row = pool[random.int(0, pool.length)];
          hardRows.push(row);
          captions.push(hard.captions[row]);
        }
      }
      const text = captionBatch(tokenizer, captions);
      const targets = sameTextTargets(captions);
      const pixels = tf.tidy(() => {
        const hardPixels = tf.gather(hard.pixels, tf.tensor1d(hardRows, "int32"));
        return rows.length === 0 ? hardPixels : tf.concat([tf.gather(pixelsAll, tf.tensor1d(rows, "int32")), hardPixels]);
      });
      const loss = optimizer.minimize(() => {
        const out = model.forward({ pixelValues: pixels, inputIds: text.inputIds, attentionMask: text.attentionMask });
        return softCrossEntropy(out.logitsPerImage, targets)
          .add(softCrossEntropy(out.logitsPerText, targets))
          .div(2) as tf.Scalar;
      }, model.trainableParameters());
      // CLIP clips the learned temperature at 100.
      tf.tidy(() => model.logitScale.assign(tf.minimum(model.logitScale, Math.log(100))));
      tf.dispose([text.inputIds, text.attentionMask, targets, pixels]);
      return loss;
    },
    log,
  );
  tf.dispose([pixelsAll, hard.pixels]);
  optimizer.dispose();
  const metrics = await evaluateVision(model, tokenizer, args.world);
  const card: CheckpointCard = {
    name: "vision",
    title: "mllm-labs vision backbone: tiny CLIP on the scenes world",
    description:
      "A CLIP model (ViT-8/64 image tower, 3 layers, width 128; 2-layer text tower; 128-d joint space) trained contrastively on the scenes set's images and captions. The labs freeze its image tower as the vision encoder of BLIP-2, LLaVA and VideoLLaMA.",
    model_type: "clip",
    parameters: model.parameterCount(),
    steps,
    batch_size: batchSize,
    train_seconds: Math.round(run.seconds),
    ...machineRecord(),
    seed,
    data: `data/world/scenes train split (images + their three captions, one drawn per step); in the first half of the steps all of each batch, then three quarters, are groups of 8 same-color one-object scenes captioned 'a <color> <shape>' (hard negatives), drawn from 4800 scenes (800 per color) rendered at the start by the world's scene generator with seed ${seed + 2}, apart from the stored splits`,
    loss_curve: run.curve,
    loss_every: run.every,
    metrics,
    metric_notes: VISION_METRIC_NOTES,
    command: "npm run pretrain -- vision",
  };
  if (!args.dryRun) await writeCheckpoint(args.out, model, clipConfigToHF(model.config), card, tokenizerDir);
  return { model, card };
}

export const VISION_METRIC_NOTES: Record<string, string> = {
  zero_shot_color_accuracy: "test one-object scenes, nearest of the 30 prompts 'a <color> <shape>', color right; chance 1/6",
  zero_shot_shape_accuracy: "same prompts, shape right; chance 1/5",
  zero_shot_accuracy: "same prompts, both right; chance 1/30",
  image_to_text_recall_at_1: "test images against the split's distinct first captions; chance ≈ 1/distinct",
  image_to_text_recall_at_5: "same, caption among the 5 nearest",
};

/** Unit text embeddings of `texts` [N, P], in batches. */
function textEmbeddings(model: CLIPModel, tokenizer: TextTokenizer, texts: readonly string[]): tf.Tensor2D {
  const parts: tf.Tensor[] = [];
  for (let start = 0; start < texts.length; start += 128) {
    const batch = captionBatch(tokenizer, texts.slice(start, start + 128));
    parts.push(model.textFeatures(batch.inputIds, batch.attentionMask));
    tf.dispose([batch.inputIds, batch.attentionMask]);
  }
  const out = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

/** The card's vision metrics on the test split. */
export async function evaluateVision(model: CLIPModel, tokenizer: TextTokenizer, world: string): Promise<Record<string, number>> {
  const test = openSplit(world, "scenes", "test");
  const prompts: { color: string; shape: string; text: string }[] = [];
  for (const color of COLOR_NAMES)
    for (const shape of SHAPE_NAMES) prompts.push({ color, shape, text: withArticle(`${color} ${shape}`) }); // as captions say it: "an orange star"
  const captions = [...new Set(test.records.map((r) => r.captions[0] as string))];
  const promptEmbeds = textEmbeddings(
    model,
    tokenizer,
    prompts.map((p) => p.text),
  );
  const captionEmbeds = textEmbeddings(model, tokenizer, captions);
  let colorRight = 0,
    shapeRight = 0,
    bothRight = 0,
    singles = 0,
    recall1 = 0,
    recall5 = 0;
  for (const rows of recordBatches(test.records, 64)) {
    const pixels = await imageTensor(
      rows.map((r) => path.join(test.dir, r.image)),
      "clip",
    );
    const imageEmbeds = model.imageFeatures(pixels);
    const promptScores = tf.matMul(imageEmbeds, promptEmbeds, false, true);
    const captionScores = tf.matMul(imageEmbeds, captionEmbeds, false, true);
    const bestPrompt = promptScores.argMax(1);
    const best = (await bestPrompt.data()) as Int32Array;
    const scores = (await captionScores.data()) as Float32Array;
    tf.dispose([pixels, imageEmbeds, promptScores, captionScores, bestPrompt]);
    rows.forEach((r, i) => {
      if (r.objects.length === 1) {
        singles++;
        const p = prompts[best[i]];
        const colorOk = p.color === r.objects[0].color;
        const shapeOk = p.shape === r.objects[0].shape;
        colorRight += +colorOk;
        shapeRight += +shapeOk;
        bothRight += +(colorOk && shapeOk);
      }
      const own = captions.indexOf(r.captions[0]);
      const row = scores.subarray(i * captions.length, (i + 1) * captions.length);
      const rank = Array.from(row).filter((s) => s > row[own]).length; // captions scored above the right one
      recall1 += +(rank < 1);
      recall5 += +(rank < 5);
    });
  }
  tf.dispose([promptEmbeds, captionEmbeds]);
  const n = test.records.length;
  return {
    zero_shot_color_accuracy: colorRight / singles,
    zero_shot_shape_accuracy: shapeRight / singles,
    zero_shot_accuracy: bothRight / singles,
    zero_shot_images: singles,
    image_to_text_recall_at_1: recall1 / n,
    image_to_text_recall_at_5: recall5 / n,
    distinct_captions: captions.length,
  };
}

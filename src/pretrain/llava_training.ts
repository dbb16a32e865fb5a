/**
 * LLaVA's two training stages on `LlavaForConditionalGeneration`:
 *
 * - stage 1, feature alignment: only the projector learns (vision tower and
 *   LLM frozen), on image–caption pairs in the `plain` format;
 * - stage 2, visual instruction tuning: the projector and the whole LLM learn
 *   (vision tower frozen), on conversations with answer-only labels.
 *
 * The vision tower never learns, so each image's tower features are computed
 * once ({@link VisionFeatureCache}) and every later step only projects them.
 * The loss is next-token cross-entropy on the positions whose label is not
 * {@link IGNORE_INDEX} (labels aligned with the ids, shifted here as
 * transformers' `LlavaForConditionalGeneration` shifts them). AdamW from
 * `train/adamw.ts`; the caller sets the learning rate per step (schedules in
 * `pretrain/common.ts`) and chooses the data order with a seed.
 *
 * Paper: Liu et al., "Visual Instruction Tuning" (2023) §4.2; Liu et al.,
 * "Improved Baselines with Visual Instruction Tuning" (LLaVA-1.5, 2023).
 * Reference: haotian-liu/LLaVA `llava/train/train.py` (`tune_mm_mlp_adapter`,
 * `freeze_backbone`), `scripts/v1_5/pretrain.sh`, `finetune.sh`.
 */
import * as tf from "@tensorflow/tfjs";
import type { LlavaForConditionalGeneration } from "../models/llava";
import { AdamW } from "../train/adamw";
import { crossEntropy, weightedLogLikelihood } from "../train/loss";
import { IGNORE_INDEX, padConversations, type TokenizedConversation } from "../data/conversation";
import type { PackedBranches } from "../data/packed_branches";
import { checkObjectMapObjective, type ObjectMapHead, type ObjectMapObjective } from "./object_map";

/** 1: feature alignment (projector only); 2: instruction tuning (projector + LLM). */
export type LlavaStage = 1 | 2;

/**
 * Freezes what the stage keeps fixed (the vision tower always, the LLM in
 * stage 1) and unfreezes the rest. @returns the variables the stage trains
 */
export function freezeForStage(model: LlavaForConditionalGeneration, stage: LlavaStage): tf.Variable[] {
  if (stage !== 1 && stage !== 2) throw new Error(`LLaVA training: stage must be 1 or 2, got ${JSON.stringify(stage)}`);
  model.visionTower.setTrainable(false);
  model.projector.setTrainable(true);
  model.languageModel.setTrainable(stage === 2);
  return model.trainableParameters();
}

/**
 * The frozen tower's features per image, computed once and kept as plain
 * arrays (no tensors held): key → [Nimg, Dvision·layers].
 */
export class VisionFeatureCache {
  private readonly store = new Map<string, Float32Array>();
  private shape: [number, number] | undefined;

  /**
   * @param load pixels [n, C, S, S] of the images with these keys (e.g. `imageTensor` of their files); disposed here
   * @param batchSize images through the tower at once. Default 64.
   */
  constructor(
    private readonly model: LlavaForConditionalGeneration,
    private readonly load: (keys: readonly string[]) => Promise<tf.Tensor>,
    private readonly batchSize = 64,
  ) {
    if (!Number.isInteger(batchSize) || batchSize <= 0)
      throw new Error(`VisionFeatureCache: batchSize must be a positive integer, got ${batchSize}`);
  }

  /** Images cached. */
  get size(): number {
    return this.store.size;
  }

  /** Computes the features of the keys not cached yet. */
  async precompute(keys: readonly string[]): Promise<void> {
    const missing = [...new Set(keys)].filter((key) => !this.store.has(key));
    for (let start = 0; start < missing.length; start += this.batchSize) {
      const chunk = missing.slice(start, start + this.batchSize);
      const pixels = await this.load(chunk);
      if (pixels.rank !== 4 || pixels.shape[0] !== chunk.length) {
        const shape = pixels.shape;
        pixels.dispose();
        throw new Error(
          `VisionFeatureCache: load gave pixels [${shape}] for ${chunk.length} image(s); expected [${chunk.length}, C, S, S]`,
        );
      }
      const features = this.model.visionFeatures(pixels); // [n, Nimg, Dv·layers]
      pixels.dispose();
      const [, Nimg, Dv] = features.shape as [number, number, number];
      const values = (await features.data()) as Float32Array;
      features.dispose();
      this.shape = [Nimg, Dv];
      chunk.forEach((key, k) => this.store.set(key, values.slice(k * Nimg * Dv, (k + 1) * Nimg * Dv)));
    }
  }

  /** Features of the keys, in order (computed when missing). → [B, Nimg, Dvision·layers] */
  async features(keys: readonly string[]): Promise<tf.Tensor3D> {
    if (keys.length === 0) throw new Error("VisionFeatureCache: no keys");
    await this.precompute(keys);
    const [Nimg, Dv] = this.shape!;
    const out = new Float32Array(keys.length * Nimg * Dv);
    keys.forEach((key, k) => out.set(this.store.get(key)!, k * Nimg * Dv));
    return tf.tensor3d(out, [keys.length, Nimg, Dv]);
  }

  /** Forgets every cached feature. */
  clear(): void {
    this.store.clear();
  }
}

/** A training batch as tensors (dispose with {@link disposeBatch}). */
export interface LlavaTrainingBatch {
  /** [B, T] int32, right-padded. */
  readonly inputIds: tf.Tensor2D;
  /** [B, T] int32, {@link IGNORE_INDEX} where no loss applies. */
  readonly labels: tf.Tensor2D;
  /** [B, T] int32, 1 real, 0 padding. */
  readonly attentionMask: tf.Tensor2D;
  /** [B, T] int32 rotary positions, when a row packs branches ({@link PackedBranches}); other rows 0 … T − 1. */
  readonly positionIds?: tf.Tensor2D;
  /** [B, T] int32, when a row packs branches: 0 shared prefix, k branch k (`LlamaInputs.branchIds`); other rows 0. */
  readonly branchIds?: tf.Tensor2D;
  /** [ΣBimg, Nimg, Dvision·layers] tower features of the batch's images in reading order, or none (text only, the blind baseline). */
  readonly visionFeatures?: tf.Tensor3D;
  /** [ΣBimg, Nimg, pairs] each image token's object map (`objectMapTargets`), for a trainer with an object-map objective. */
  readonly objectMaps?: tf.Tensor3D;
}

/**
 * What one optimiser step trains on: a batch, or the same rows as parts of similar length, each padded only to its own
 * longest row (see {@link splitByLength}). The parts' loss is the whole batch's ({@link llavaLoss}).
 */
export type LlavaStepBatch = LlavaTrainingBatch | readonly LlavaTrainingBatch[];

/**
 * The rows of a batch in two parts of similar length, cut where the padded positions (rows × longest row, summed over
 * the parts) are fewest: a batch whose long rows (a scene's conversation) are few pads the many short ones (existence
 * questions packed after an image, a sentiment answer) to them, and a part of its own spares that. Returns the rows'
 * indices in each part, longest first; one part (all the rows) when no cut pads less. `lengths`: each row's tokens.
 */
export function splitByLength(lengths: readonly number[]): number[][] {
  if (!Array.isArray(lengths) || lengths.length === 0 || !lengths.every((n) => Number.isInteger(n) && n > 0))
    throw new Error(`splitByLength: lengths must be a non-empty list of positive integers, got ${JSON.stringify(lengths)}`);
  const order = lengths.map((_, k) => k).sort((a, b) => lengths[b] - lengths[a] || a - b); // longest first, stable
  let best = [order];
  for (let cut = 1; cut < order.length; cut++) {
    const parts = [order.slice(0, cut), order.slice(cut)];
    if (paddedPositions(lengths, parts) < paddedPositions(lengths, best)) best = parts;
  }
  return best;
}

/** The positions rows take once padded: each part's rows × its longest row, summed. `parts`: indices into `lengths`. */
export function paddedPositions(lengths: readonly number[], parts: readonly (readonly number[])[]): number {
  return parts.reduce((sum, part) => sum + part.length * Math.max(...part.map((k) => lengths[k])), 0);
}

/**
 * Pads tokenized examples into a batch. `visionFeatures` must hold one
 * feature set per image of the examples, in order (taken over, not copied).
 */
export function llavaBatch(
  examples: readonly (TokenizedConversation | PackedBranches)[],
  padTokenId: number,
  visionFeatures?: tf.Tensor3D,
): LlavaTrainingBatch {
  const images = examples.reduce((sum, e) => sum + e.images, 0);
  const given = visionFeatures?.shape[0] ?? 0;
  if (images !== given)
    throw new Error(`llavaBatch: the examples hold ${images} image(s) but ${given} feature set(s) were given`);
  const padded = padConversations(examples, padTokenId, "right");
  const [B, T] = [examples.length, padded.inputIds[0].length];
  const packed = examples.some((e) => "branchIds" in e);
  // Rows that pack branches carry their positions and branches; the other rows are one sequence (positions 0 … len − 1,
  // all in branch 0: plain causal attention). The padding counts on in branch 0 (masked as keys either way).
  const positionRows = examples.map((e) => {
    const given = "positionIds" in e ? e.positionIds : e.inputIds.map((_, t) => t);
    const next = given.length ? given[given.length - 1] + 1 : 0;
    return [...given, ...Array.from({ length: T - given.length }, (_, k) => next + k)];
  });
  const branchRows = examples.map((e) => [
    ...("branchIds" in e ? e.branchIds : e.inputIds.map(() => 0)),
    ...new Array<number>(T - e.inputIds.length).fill(0),
  ]);
  return {
    inputIds: tf.tensor2d(padded.inputIds, [B, T], "int32"),
    labels: tf.tensor2d(padded.labels, [B, T], "int32"),
    attentionMask: tf.tensor2d(padded.attentionMask, [B, T], "int32"),
    ...(packed
      ? {
          positionIds: tf.tensor2d(positionRows, [B, T], "int32"),
          branchIds: tf.tensor2d(branchRows, [B, T], "int32"),
        }
      : {}),
    ...(visionFeatures ? { visionFeatures } : {}),
  };
}

/** Frees a batch's tensors (every part's, for a batch in parts). */
export function disposeBatch(batch: LlavaStepBatch): void {
  if (isParts(batch)) {
    batch.forEach((part) => disposeBatch(part));
    return;
  }
  tf.dispose([
    batch.inputIds,
    batch.labels,
    batch.attentionMask,
    ...(batch.positionIds ? [batch.positionIds] : []),
    ...(batch.branchIds ? [batch.branchIds] : []),
    ...(batch.visionFeatures ? [batch.visionFeatures] : []),
    ...(batch.objectMaps ? [batch.objectMaps] : []),
  ]);
}

/**
 * How the loss averages the supervised tokens of a batch:
 * - `token`: every supervised token weighs the same (LLaVA's `train.py`), so a conversation weighs as much as its
 *   answers are long;
 * - `conversation`: each conversation's own mean, then the mean over the batch's conversations, so a one-word answer
 *   (a sentiment label) weighs as much as a paragraph (a caption, a drawing program).
 */
export type LlavaLossWeighting = "token" | "conversation";

/**
 * Mean next-token cross-entropy over the supervised positions (logits at t predict the label at t + 1), averaged as
 * `weighting` says (default `token`). A batch in parts ({@link LlavaStepBatch}) gives the loss of its rows as one batch.
 */
export function llavaLoss(
  model: LlavaForConditionalGeneration,
  batch: LlavaStepBatch,
  weighting: LlavaLossWeighting = "token",
): tf.Scalar {
  if (weighting !== "token" && weighting !== "conversation")
    throw new Error(`llavaLoss: weighting must be "token" or "conversation", got ${JSON.stringify(weighting)}`);
  if (isParts(batch)) return partsLoss(model, batch, weighting);
  return tf.tidy(() => {
    const { predicted, targets, supervised } = shiftedLabels(model, batch);
    if (weighting === "token") return crossEntropy(predicted, targets, supervised);
    return crossEntropy(predicted, targets, conversationWeights(supervised)); // weights [B, T−1]
  });
}

/** Whether a step's batch comes in parts. */
function isParts(batch: LlavaStepBatch): batch is readonly LlavaTrainingBatch[] {
  return Array.isArray(batch);
}

/** The logits at positions 0 … T − 2 and the labels they predict (1 … T − 1), with where a label applies. */
function shiftedLabels(
  model: LlavaForConditionalGeneration,
  batch: LlavaTrainingBatch,
): { predicted: tf.Tensor3D; targets: tf.Tensor2D; supervised: tf.Tensor2D } {
  const { logits } = model.forward({
    inputIds: batch.inputIds,
    attentionMask: batch.attentionMask,
    positionIds: batch.positionIds,
    branchIds: batch.branchIds,
    visionFeatures: batch.visionFeatures,
  }); // [B, T, V]
  const [B, T, V] = logits.shape;
  const predicted = logits.slice([0, 0, 0], [B, T - 1, V]) as tf.Tensor3D; // [B, T−1, V]: positions 0…T−2
  const next = batch.labels.slice([0, 1], [B, T - 1]); // [B, T−1]: labels 1…T−1
  const supervised = next.notEqual(IGNORE_INDEX) as tf.Tensor2D;
  const targets = tf.where(supervised, next, tf.zerosLike(next)) as tf.Tensor2D; // ignored positions get any valid id (weight 0)
  return { predicted, targets, supervised };
}

/**
 * `conversation` weighting: each row's supervised positions weigh 1 / (their count). A weighted mean is then the mean
 * of the rows' means over the rows that have any (a row with none adds 0 to both sums). [B, T−1] → [B, T−1]
 */
function conversationWeights(supervised: tf.Tensor2D): tf.Tensor2D {
  const perRow = supervised.toFloat().sum(1, true).maximum(1); // [B, 1]
  return supervised.toFloat().div(perRow);
}

/**
 * The loss of a batch given in parts: each part's weighted log-likelihood and its sum of weights
 * ({@link weightedLogLikelihood}), added over the parts, then divided, as `crossEntropy` divides within one batch. So the parts' loss and its gradient are the
 * whole batch's (the same terms, added in another order), whichever rows each part holds.
 */
function partsLoss(
  model: LlavaForConditionalGeneration,
  parts: readonly LlavaTrainingBatch[],
  weighting: LlavaLossWeighting,
): tf.Scalar {
  if (parts.length === 0) throw new Error("llavaLoss: a batch in parts has no parts");
  return tf.tidy(() => {
    let logLikelihood: tf.Tensor = tf.scalar(0);
    let weight: tf.Tensor = tf.scalar(0);
    for (const part of parts) {
      const { predicted, targets, supervised } = shiftedLabels(model, part);
      const sums = weightedLogLikelihood(
        predicted,
        targets,
        weighting === "token" ? supervised : conversationWeights(supervised),
      );
      logLikelihood = logLikelihood.add(sums.logLikelihood);
      weight = weight.add(sums.weight);
    }
    return logLikelihood.div(weight.maximum(1)).neg() as tf.Scalar; // as crossEntropy divides within one batch
  });
}

/** Options of {@link LlavaTrainer}. */
export interface LlavaTrainerArgs {
  /** Which stage (decides what learns). */
  readonly stage: LlavaStage;
  /** Step size until changed (set `learningRate` per step for a schedule). Default 1e-3 (stage 1), 5e-4 (stage 2). */
  readonly learningRate?: number;
  /** AdamW's decoupled weight decay. Default 0 (LLaVA's scripts). */
  readonly weightDecay?: number;
  /** AdamW's β2. Default 0.999. */
  readonly beta2?: number;
  /**
   * What learns, when not the stage's set (LoRA: the adapters, frozen model around them). Given, the model's
   * trainable flags are left as the caller set them. Default: {@link freezeForStage}'s.
   */
  readonly variables?: readonly tf.Variable[];
  /** How the loss averages the supervised tokens ({@link LlavaLossWeighting}). Default `token`. */
  readonly lossWeighting?: LlavaLossWeighting;
  /**
   * An object-map objective beside the language loss (`object_map.ts`): the head reads the projected (and pooled) image
   * tokens, which are what the LLM reads unless the model adds frame embeddings to them; its variables learn with the
   * stage's, and each batch must carry `objectMaps`. Default none.
   */
  readonly objectMap?: ObjectMapObjective & { readonly head: ObjectMapHead };
  /**
   * Whether a step's loss includes the language loss. False (needs `objectMap`): the step is the object-map loss alone
   * (times its weight), the LLM is not run, and the batch's tokens are ignored; what learns is still the stage's set,
   * so stage 1 with `languageLoss: false` trains the projector and the read-out on the map alone. Default true.
   */
  readonly languageLoss?: boolean;
}

/** One stage's optimiser over what the stage trains. */
export class LlavaTrainer {
  readonly stage: LlavaStage;
  /** The variables this stage updates. */
  readonly variables: tf.Variable[];
  readonly lossWeighting: LlavaLossWeighting;
  readonly objectMap: LlavaTrainerArgs["objectMap"];
  /** Whether a step's loss includes the language loss ({@link LlavaTrainerArgs.languageLoss}). */
  readonly languageLoss: boolean;
  private readonly optimizer: AdamW;
  private objectMapLoss: tf.Scalar | undefined;

  constructor(
    readonly model: LlavaForConditionalGeneration,
    args: LlavaTrainerArgs,
  ) {
    this.stage = args.stage;
    if (args.variables && !args.variables.length) throw new Error("LlavaTrainer: variables is empty; nothing would learn");
    this.lossWeighting = args.lossWeighting ?? "token";
    if (this.lossWeighting !== "token" && this.lossWeighting !== "conversation")
      throw new Error(`LlavaTrainer: lossWeighting must be "token" or "conversation", got ${JSON.stringify(this.lossWeighting)}`);
    this.variables = args.variables ? [...args.variables] : freezeForStage(model, args.stage);
    this.objectMap = args.objectMap;
    this.languageLoss = args.languageLoss ?? true;
    if (typeof this.languageLoss !== "boolean")
      throw new Error(`LlavaTrainer: languageLoss must be true or false, got ${JSON.stringify(this.languageLoss)}`);
    if (!this.languageLoss && !this.objectMap)
      throw new Error("LlavaTrainer: languageLoss false needs an objectMap objective; the step would have no loss");
    if (this.objectMap) {
      checkObjectMapObjective(this.objectMap);
      if (this.objectMap.head.width !== model.config.text.hiddenSize)
        throw new Error(
          `LlavaTrainer: the object-map head reads ${this.objectMap.head.width}-wide tokens but the image tokens are ${model.config.text.hiddenSize} wide`,
        );
      this.variables.push(...this.objectMap.head.variables);
    }
    this.optimizer = new AdamW({
      learningRate: args.learningRate ?? (args.stage === 1 ? 1e-3 : 5e-4),
      weightDecay: args.weightDecay ?? 0,
      beta2: args.beta2,
    });
  }

  get learningRate(): number {
    return this.optimizer.learningRate;
  }

  set learningRate(value: number) {
    if (!(value >= 0 && Number.isFinite(value)))
      throw new Error(`LlavaTrainer: learningRate must be a finite number ≥ 0, got ${value}`);
    this.optimizer.learningRate = value;
  }

  /** Steps taken. */
  get steps(): number {
    return this.optimizer.iterations;
  }

  /**
   * One optimiser step on a batch; returns the loss before the update (the caller disposes it and the batch): the
   * language loss, plus the object-map loss times its weight when the trainer has one ({@link takeObjectMapLoss}); with
   * `languageLoss` false, the weighted object-map loss alone.
   */
  step(batch: LlavaStepBatch): tf.Scalar {
    const objectMap = this.objectMap;
    if (!objectMap) return this.optimizer.minimize(() => llavaLoss(this.model, batch, this.lossWeighting), this.variables);
    if (isParts(batch))
      throw new Error("LlavaTrainer: the object-map objective takes a batch in one part; give llavaBatch's batch as it is");
    const { visionFeatures, objectMaps } = batch;
    if (!visionFeatures || !objectMaps)
      throw new Error(
        "LlavaTrainer: the trainer has an object-map objective but the batch has no visionFeatures or no objectMaps",
      );
    tf.dispose(this.objectMapLoss);
    this.objectMapLoss = undefined;
    return this.optimizer.minimize(() => {
      const language = this.languageLoss ? llavaLoss(this.model, batch, this.lossWeighting) : undefined;
      // With the language loss the projector runs a second time here (the LLM's forward keeps its tokens to itself):
      // with the read-out, 1.39 × the storyteller's step (bench/storyteller_step.js).
      const map = objectMap.head.loss(this.model.projectFeatures(visionFeatures), objectMaps);
      this.objectMapLoss = tf.keep(map.clone());
      const weighted = map.mul(objectMap.weight) as tf.Scalar;
      return language ? (language.add(weighted) as tf.Scalar) : weighted;
    }, this.variables);
  }

  /** The object-map loss of the last step (unweighted), handed to the caller to dispose; undefined without the objective. */
  takeObjectMapLoss(): tf.Scalar | undefined {
    const loss = this.objectMapLoss;
    this.objectMapLoss = undefined;
    return loss;
  }

  /** Frees the optimiser's moments and the last object-map loss (the model and the head are the caller's). */
  dispose(): void {
    this.optimizer.dispose();
    tf.dispose(this.objectMapLoss);
    this.objectMapLoss = undefined;
  }
}

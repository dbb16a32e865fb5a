/**
 * A Q-Former bridge from one modality's frozen (or small trained) encoder into
 * a language model: optional learned step position embeddings (frames, audio
 * segments), Nq learned queries that read the features through a Q-Former
 * (cross-attention every `crossAttentionFrequency` layers), and a linear
 * projection to the language model's width. VideoLLaMA's video branch and
 * audio branch are two of these; the sensor and point-cloud bridges are two more.
 *
 * Paper: Zhang et al., "Video-LLaMA: An Instruction-tuned Audio-Visual
 * Language Model for Video Understanding" (2023), §2.1 (video Q-Former, frame
 * position embeddings) and §2.2 (audio Q-Former, segment position embeddings).
 * Reference: DAMO-NLP-SG/Video-LLaMA `video_llama/models/video_llama.py`
 * (`video_frame_position_embedding`, `video_query_tokens`, `video_Qformer`,
 * `llama_proj`; `audio_position_embedding`, `audio_query_tokens`,
 * `audio_Qformer`, `audio_llama_proj`). Names here: `position_embedding`,
 * `query_tokens`, `qformer.*` (BLIP-2's Q-Former names), `projection`.
 *
 * The Q-Former's modules are lab 01's `Blip2QFormerModel` (blip2.ts); its
 * forward is repeated in {@link QFormerBridge.forward} because that one takes
 * no key mask and returns no attention weights (same computation, same modules;
 * `qformerAttention` of blip2_qformer.ts runs each attention).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { Embedding } from "../nn/embedding";
import { activation } from "../nn/activations";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";
import { Blip2QFormerModel, resolveBlip2QFormerConfig, type Blip2QFormerConfig, type ResolvedBlip2QFormerConfig } from "./blip2";
import { qformerAttention } from "./blip2_qformer";

const MASKED = -1e9;

/** One bridge. Defaults are filled by {@link resolveQFormerBridgeConfig}. */
export interface QFormerBridgeConfig {
  /** The Q-Former (width Dq, layers, heads; `encoderHiddenSize` = the feature width Dk). Defaults as BLIP-2's, except where a preset says. */
  readonly qformer: Blip2QFormerConfig;
  /** Learned queries Nq. Default 8 (Video-LLaMA's audio branch; its video branch has 32 at width 768). */
  readonly numQueryTokens?: number;
  /** Step positions P the position table holds (frames or segments); 0 = no position embeddings (an unordered set). Default 0. */
  readonly maxPositions?: number;
  /**
   * Token positions within a step (K: a frame's class token and patch slots); 0 = none. Default 0. Cross-attention is
   * blind to which slot a key came from, so without them a patch's place in the frame is only what its features keep.
   */
  readonly maxTokenPositions?: number;
  /** Width of the language model the projection feeds (Dtext). */
  readonly outputSize: number;
  /** Initialisation seed. Default 0. */
  readonly seed?: number;
}

export interface ResolvedQFormerBridgeConfig {
  readonly qformer: ResolvedBlip2QFormerConfig;
  readonly numQueryTokens: number;
  readonly maxPositions: number;
  readonly maxTokenPositions: number;
  readonly outputSize: number;
  readonly seed: number;
}

/** Fills every default of a {@link QFormerBridgeConfig} once and checks it (idempotent). */
export function resolveQFormerBridgeConfig(config: QFormerBridgeConfig): ResolvedQFormerBridgeConfig {
  const resolved: ResolvedQFormerBridgeConfig = {
    qformer: resolveBlip2QFormerConfig(config.qformer),
    numQueryTokens: config.numQueryTokens ?? 8,
    maxPositions: config.maxPositions ?? 0,
    maxTokenPositions: config.maxTokenPositions ?? 0,
    outputSize: config.outputSize,
    seed: config.seed ?? 0,
  };
  for (const key of ["numQueryTokens", "outputSize"] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] <= 0)
      throw new Error(`QFormerBridge: config.${key} must be a positive integer, got ${JSON.stringify(resolved[key])}`);
  }
  for (const key of ["maxPositions", "maxTokenPositions"] as const)
    if (!Number.isInteger(resolved[key]) || resolved[key] < 0)
      throw new Error(`QFormerBridge: config.${key} must be a non-negative integer, got ${JSON.stringify(resolved[key])}`);
  return resolved;
}

/**
 * The additive key mask of a bridge's cross-attention over P steps of K tokens
 * each: steps at or beyond a row's length (padding frames or segments) are
 * never attended to. lengths: real steps per row (1…P) → [B, 1, 1, P·K]
 * (0 allowed, −1e9 masked), broadcast over heads and queries.
 */
export function stepKeyMask(lengths: readonly number[], steps: number, tokensPerStep: number): tf.Tensor4D {
  if (!Number.isInteger(steps) || steps <= 0) throw new Error(`stepKeyMask: steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(tokensPerStep) || tokensPerStep <= 0)
    throw new Error(`stepKeyMask: tokensPerStep must be a positive integer, got ${tokensPerStep}`);
  const values = new Float32Array(lengths.length * steps * tokensPerStep);
  lengths.forEach((length, b) => {
    if (!Number.isInteger(length) || length < 1 || length > steps)
      throw new Error(`stepKeyMask: lengths[${b}] must be an integer in 1…${steps}, got ${JSON.stringify(length)}`);
    values.fill(MASKED, (b * steps + length) * tokensPerStep, (b + 1) * steps * tokensPerStep);
  });
  return tf.tensor4d(values, [lengths.length, 1, 1, steps * tokensPerStep]);
}

/**
 * The pooling-only alternative to a temporal Q-Former: the mean over the real
 * steps of each token slot, blind to their order.
 * features: [B, P, K, D]; lengths: real steps per row (default all P) → [B, K, D]
 */
export function meanOverSteps(features: tf.Tensor, lengths?: readonly number[]): tf.Tensor3D {
  if (features.rank !== 4) throw new Error(`meanOverSteps: features must be [B, P, K, D], got [${features.shape}]`);
  const [B, P] = features.shape;
  const counts = lengths ?? new Array<number>(B).fill(P);
  if (counts.length !== B) throw new Error(`meanOverSteps: ${counts.length} lengths for a batch of ${B}`);
  const weights = new Float32Array(B * P);
  counts.forEach((length, b) => {
    if (!Number.isInteger(length) || length < 1 || length > P)
      throw new Error(`meanOverSteps: lengths[${b}] must be an integer in 1…${P}, got ${JSON.stringify(length)}`);
    weights.fill(1 / length, b * P, b * P + length);
  });
  return tf.tidy(() => features.mul(tf.tensor4d(weights, [B, P, 1, 1])).sum(1)) as tf.Tensor3D; // [B, K, D]
}

/**
 * How much each query reads each step (the frame-by-query heatmap over time): cross-attention
 * weights summed over each step's K tokens and averaged over heads.
 * weights: [B, H, Nq, P·K] (step-major keys, as {@link QFormerBridge.keys} lays them out) → [B, Nq, P], rows summing to 1
 */
export function attentionOverSteps(weights: tf.Tensor, steps: number): tf.Tensor3D {
  if (weights.rank !== 4) throw new Error(`attentionOverSteps: weights must be [B, H, Nq, P·K], got [${weights.shape}]`);
  const [B, H, Nq, keys] = weights.shape;
  if (!Number.isInteger(steps) || steps <= 0 || keys % steps !== 0)
    throw new Error(
      `attentionOverSteps: steps must be a positive integer dividing the ${keys} keys, got ${JSON.stringify(steps)}`,
    );
  return tf.tidy(() =>
    weights
      .reshape([B, H, Nq, steps, keys / steps]) // [B, H, Nq, P, K]
      .sum(4)
      .mean(1),
  ) as tf.Tensor3D; // [B, Nq, P]
}

/** What {@link QFormerBridge.forward} returns. */
export interface QFormerBridgeOutput {
  /** [B, Nq, Dq]: the queries after the Q-Former. */
  queryOutput: tf.Tensor;
  /** [B, Nq, Dtext]: the soft prompt for the language model. */
  languageInputs: tf.Tensor;
  /** Per cross-attending layer, the queries' weights over the keys [B, H, Nq, P·K] (when asked). */
  crossAttentions?: tf.Tensor[];
}

/** Step positions + queries + Q-Former + projection. */
export class QFormerBridge extends Module {
  /** [P, Dk], absent when `maxPositions` is 0. Initialised N(0, 1). */
  readonly positionEmbedding?: Embedding;
  /** [K, Dk], absent when `maxTokenPositions` is 0. Initialised N(0, 1), as the step positions. */
  readonly tokenPositionEmbedding?: Embedding;
  /** [1, Nq, Dq] */
  readonly queryTokens: tf.Variable;
  readonly qformer: Blip2QFormerModel;
  readonly projection: Linear;
  readonly config: ResolvedQFormerBridgeConfig;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(options: QFormerBridgeConfig) {
    super();
    const config = (this.config = resolveQFormerBridgeConfig(options));
    const random = new Random(config.seed);
    const { hiddenSize: Dq, encoderHiddenSize: Dk } = config.qformer;
    const positionSeed = random.nextSeed();
    if (config.maxPositions > 0)
      this.positionEmbedding = this.module(
        "position_embedding",
        // N(0, 1), PyTorch's nn.Embedding default that Video-LLaMA's position tables get: as large as the (LayerNorm'd) features they mark
        new Embedding({ numEmbeddings: config.maxPositions, embeddingDim: Dk, seed: positionSeed, initStd: 1 }),
      );
    if (config.maxTokenPositions > 0)
      this.tokenPositionEmbedding = this.module(
        "token_position_embedding",
        new Embedding({ numEmbeddings: config.maxTokenPositions, embeddingDim: Dk, seed: random.nextSeed(), initStd: 1 }),
      );
    this.queryTokens = this.parameter(
      "query_tokens",
      tf.randomNormal([1, config.numQueryTokens, Dq], 0, 0.02, "float32", random.nextSeed()),
    );
    this.qformer = this.module("qformer", new Blip2QFormerModel(config.qformer, random.nextSeed()));
    this.projection = this.module(
      "projection",
      new Linear({ inFeatures: Dq, outFeatures: config.outputSize, seed: random.nextSeed() }),
    );
    this.act = activation(config.qformer.hiddenAct);
  }

  /**
   * Adds each step's position embedding to all K tokens of the step (and each token slot's to that slot in every
   * step, when the bridge has token positions) and joins the steps.
   * features: [B, P, K, Dk] → keys [B, P·K, Dk]
   */
  keys(features: tf.Tensor): tf.Tensor3D {
    const Dk = this.config.qformer.encoderHiddenSize;
    if (features.rank !== 4 || features.shape[3] !== Dk)
      throw new Error(`QFormerBridge: features must be [B, P, K, ${Dk}], got [${features.shape}]`);
    const [B, P, K] = features.shape;
    if (this.positionEmbedding && P > this.config.maxPositions)
      throw new Error(`QFormerBridge: ${P} steps exceed the ${this.config.maxPositions} positions of its table`);
    if (this.tokenPositionEmbedding && K > this.config.maxTokenPositions)
      throw new Error(
        `QFormerBridge: ${K} tokens per step exceed the ${this.config.maxTokenPositions} token positions of its table`,
      );
    return tf.tidy(() => {
      let x = features;
      if (this.positionEmbedding) {
        const positions = this.positionEmbedding.apply(tf.range(0, P, 1, "int32")); // [P, Dk]
        x = x.add(positions.reshape([1, P, 1, Dk])); // [B, P, K, Dk]: the step's position on each of its tokens
      }
      if (this.tokenPositionEmbedding) {
        const slots = this.tokenPositionEmbedding.apply(tf.range(0, K, 1, "int32")); // [K, Dk]
        x = x.add(slots.reshape([1, 1, K, Dk])); // [B, P, K, Dk]: each slot's position in every step
      }
      return x.reshape([B, P * K, Dk]); // [B, P·K, Dk]: step-major
    }) as tf.Tensor3D;
  }

  /**
   * features: [B, P, K, Dk] (P steps of K tokens); keyMask: additive [B, 1, 1, P·K] ({@link stepKeyMask}), none = all real
   * → queries [B, Nq, Dq], projected [B, Nq, Dtext], and the cross-attention weights when asked
   */
  forward(features: tf.Tensor, options: { keyMask?: tf.Tensor; outputCrossAttentions?: boolean } = {}): QFormerBridgeOutput {
    const heads = this.config.qformer.numHeads;
    return tidy<QFormerBridgeOutput>(() => {
      const keys = this.keys(features); // [B, P·K, Dk]
      const B = keys.shape[0];
      let x = this.qformer.layernorm.apply(this.queryTokens.tile([B, 1, 1])); // [B, Nq, Dq]
      const crossAttentions: tf.Tensor[] = [];
      // Same as Blip2QFormerLayer.apply (blip2.ts), with the key mask and the weights.
      for (const layer of this.qformer.layers) {
        let h = qformerAttention(layer.selfAttention, heads, x, x).output; // [B, Nq, Dq]
        if (layer.crossAttention) {
          const cross = qformerAttention(layer.crossAttention, heads, h, keys, options.keyMask);
          h = cross.output;
          crossAttentions.push(cross.weights); // [B, H, Nq, P·K]
        }
        x = layer.outputNorm.apply(layer.outputDense.apply(this.act(layer.intermediate.apply(h))).add(h)); // [B, Nq, Dq]
      }
      const languageInputs = this.projection.apply(x); // [B, Nq, Dtext]
      return options.outputCrossAttentions
        ? { queryOutput: x, languageInputs, crossAttentions }
        : { queryOutput: x, languageInputs };
    });
  }
}

/**
 * BLIP-2: a frozen image encoder, a Querying Transformer (Q-Former) whose Nq
 * learned queries read the image through cross-attention, a linear projection
 * to the language model's width, and a frozen LLM that sees the projected
 * queries in place of its image placeholder tokens.
 *
 * Paper: Li et al., "BLIP-2: Bootstrapping Language-Image Pre-training with
 * Frozen Image Encoders and Large Language Models" (2023).
 * Reference: transformers `models/blip_2/modeling_blip_2.py`
 * (`Blip2VisionModel`, `Blip2QFormerModel`, `Blip2ForConditionalGeneration`);
 * salesforce/LAVIS `lavis/models/blip2_models/Qformer.py`. Parameter names
 * are the checkpoint's (`vision_model.*`, `query_tokens`, `qformer.*`,
 * `language_projection.*`, `language_model.*`). The language model here is
 * Llama-style (decoder-only); OPT and Flan-T5 are not implemented.
 */
import { assertImageTokenCount, checkPromptNotEmpty, checkTokenIds } from "./input_validation";
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { LayerNorm } from "../nn/layer_norm";
import { PatchEmbedding } from "../nn/patch_embedding";
import { activation } from "../nn/activations";
import { scaledDotProductAttention, splitHeads, mergeHeads } from "../nn/attention";
import { LlamaForCausalLM, resolveLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig, type GenerateOptions } from "./llama";
import { embedWithImageFeatures, checkImageTokens } from "./merge_image_tokens";
import { patchNeighbourhoods } from "./llava";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";
import { FeedForward } from "../nn/feed_forward";
import { PreNormEncoderLayer } from "../nn/pre_norm_encoder_layer";

/** BLIP-2's ViT (EVA-CLIP in the paper). `Blip2VisionConfig`; every field defaults as transformers' does ({@link resolveBlip2VisionConfig}). */
export interface Blip2VisionConfig {
  /** Width Dv. Default 1408. */
  readonly hiddenSize?: number;
  /** MLP width. Default 6144. */
  readonly intermediateSize?: number;
  /** Encoder layers. Default 39. */
  readonly numLayers?: number;
  /** Heads H. Default 16. */
  readonly numHeads?: number;
  /** Input side S in pixels. Default 224. */
  readonly imageSize?: number;
  /** Patch side P. Default 14. */
  readonly patchSize?: number;
  /** MLP activation. Default `gelu` (exact). */
  readonly hiddenAct?: string;
  /** LayerNorm epsilon. Default 1e-6. */
  readonly layerNormEps?: number;
  /** Biases on q and v (k has none). Default true. */
  readonly qkvBias?: boolean;
}

/** The Q-Former (a BERT whose layers also cross-attend to the image). `Blip2QFormerConfig`; defaults as transformers' ({@link resolveBlip2QFormerConfig}). */
export interface Blip2QFormerConfig {
  /** Width Dq. Default 768. */
  readonly hiddenSize?: number;
  /** FFN width. Default 3072. */
  readonly intermediateSize?: number;
  /** Layers. Default 12. */
  readonly numLayers?: number;
  /** Heads. Default 12. */
  readonly numHeads?: number;
  /** FFN activation. Default `gelu`. */
  readonly hiddenAct?: string;
  /** LayerNorm epsilon. Default 1e-12 (BERT's). */
  readonly layerNormEps?: number;
  /** Layer i cross-attends when i % frequency == 0. Default 2. */
  readonly crossAttentionFrequency?: number;
  /** Width Dv of the image features it reads. Default 1408 alone; inside a {@link Blip2Config}, the vision width. */
  readonly encoderHiddenSize?: number;
  /**
   * Each image key/value of the cross-attention is a patch's encoderWindow × encoderWindow neighbourhood side by side
   * (zero beyond the grid's edge; {@link qformerImageContext}), so the cross-attention reads window²·Dv features per
   * token: a query attending to one token sees its patch's local layout, not only a weighted mean of single patches.
   * Odd integer ≥ 1; default 1 (off: BLIP-2's Q-Former, each token's own features). Ours, not transformers': config.json
   * key `mllm_labs_encoder_window` in `qformer_config`, written only when on.
   */
  readonly encoderWindow?: number;
}

/** `Blip2Config`. See {@link resolveBlip2Config}. */
export interface Blip2Config {
  readonly vision: Blip2VisionConfig;
  readonly qformer: Blip2QFormerConfig;
  readonly text: LlamaConfig;
  /** Learned queries Nq. Default 32. */
  readonly numQueryTokens?: number;
  /** Placeholder id in the text that the Nq projected queries replace. No default: required by {@link Blip2ForConditionalGeneration.forward}. */
  readonly imageTokenId?: number;
  /** Seed of the initialisers. Default 0. */
  readonly seed?: number;
}

export type ResolvedBlip2VisionConfig = Required<Blip2VisionConfig>;
export type ResolvedBlip2QFormerConfig = Required<Blip2QFormerConfig>;
export interface ResolvedBlip2Config {
  readonly vision: ResolvedBlip2VisionConfig;
  readonly qformer: ResolvedBlip2QFormerConfig;
  readonly text: ResolvedLlamaConfig;
  readonly numQueryTokens: number;
  readonly imageTokenId: number | undefined;
  readonly seed: number;
}

function checkPositive(model: string, config: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of keys) {
    const value = config[key];
    if (!Number.isInteger(value) || (value as number) <= 0)
      throw new Error(`${model}: config.${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
}

/** Fills every default of a {@link Blip2VisionConfig} once and checks the sizes (idempotent). */
export function resolveBlip2VisionConfig(config: Blip2VisionConfig): ResolvedBlip2VisionConfig {
  const resolved: ResolvedBlip2VisionConfig = {
    hiddenSize: config.hiddenSize ?? 1408,
    intermediateSize: config.intermediateSize ?? 6144,
    numLayers: config.numLayers ?? 39,
    numHeads: config.numHeads ?? 16,
    imageSize: config.imageSize ?? 224,
    patchSize: config.patchSize ?? 14,
    hiddenAct: config.hiddenAct ?? "gelu",
    layerNormEps: config.layerNormEps ?? 1e-6,
    qkvBias: config.qkvBias ?? true,
  };
  checkPositive("BLIP-2 vision", resolved, ["hiddenSize", "intermediateSize", "numLayers", "numHeads", "imageSize", "patchSize"]);
  if (resolved.imageSize % resolved.patchSize !== 0)
    throw new Error(`BLIP-2 vision: imageSize (${resolved.imageSize}) must be a multiple of patchSize (${resolved.patchSize})`);
  return resolved;
}

/** Fills every default of a {@link Blip2QFormerConfig} once and checks the sizes (idempotent). */
export function resolveBlip2QFormerConfig(config: Blip2QFormerConfig): ResolvedBlip2QFormerConfig {
  const resolved: ResolvedBlip2QFormerConfig = {
    hiddenSize: config.hiddenSize ?? 768,
    intermediateSize: config.intermediateSize ?? 3072,
    numLayers: config.numLayers ?? 12,
    numHeads: config.numHeads ?? 12,
    hiddenAct: config.hiddenAct ?? "gelu",
    layerNormEps: config.layerNormEps ?? 1e-12,
    crossAttentionFrequency: config.crossAttentionFrequency ?? 2,
    encoderHiddenSize: config.encoderHiddenSize ?? 1408,
    encoderWindow: config.encoderWindow ?? 1,
  };
  const window = resolved.encoderWindow;
  if (!Number.isInteger(window) || window < 1 || window % 2 === 0)
    throw new Error(`Q-Former: config.encoderWindow must be an odd integer ≥ 1 (1 = off), got ${JSON.stringify(window)}`);
  checkPositive("Q-Former", resolved, [
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
    "crossAttentionFrequency",
    "encoderHiddenSize",
  ]);
  return resolved;
}

/** Fills every default of a {@link Blip2Config} once (idempotent); the Q-Former reads the vision width unless told otherwise. */
export function resolveBlip2Config(config: Blip2Config): ResolvedBlip2Config {
  const vision = resolveBlip2VisionConfig(config.vision);
  return {
    vision,
    qformer: resolveBlip2QFormerConfig({
      ...config.qformer,
      encoderHiddenSize: config.qformer.encoderHiddenSize ?? vision.hiddenSize,
    }),
    text: resolveLlamaConfig(config.text),
    numQueryTokens: config.numQueryTokens ?? 32,
    imageTokenId: config.imageTokenId,
    seed: config.seed ?? 0,
  };
}

/** Self-attention with one fused qkv projection (bias on q and v only). HF: `Blip2Attention`. */
export class Blip2Attention extends Module {
  readonly qkv: Linear;
  readonly projection: Linear;

  /** @param qkvBias a bias on the fused projection (its k part stays 0 in checkpoints) */
  constructor(
    private readonly heads: number,
    dim: number,
    qkvBias: boolean,
    seed: number,
  ) {
    super();
    const random = new Random(seed);
    this.qkv = this.module("qkv", new Linear({ inFeatures: dim, outFeatures: 3 * dim, bias: qkvBias, seed: random.nextSeed() }));
    this.projection = this.module("projection", new Linear({ inFeatures: dim, outFeatures: dim, seed: random.nextSeed() }));
  }

  /** x: [B, T, D] → [B, T, D] */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(this.qkv.apply(x), 3, -1).map((part) => splitHeads(part, this.heads)); // 3 × [B, H, T, Dh]
      return this.projection.apply(mergeHeads(scaledDotProductAttention(q, k, v).output)); // [B, T, D]
    });
  }
}

/** Pre-norm ViT layer with the fused-qkv attention (the shared nn/pre_norm_encoder_layer.ts). HF: `Blip2EncoderLayer`. */
export class Blip2EncoderLayer extends PreNormEncoderLayer<Blip2Attention> {
  constructor(config: Blip2VisionConfig, seed: number) {
    const resolved = resolveBlip2VisionConfig(config);
    const random = new Random(seed);
    const D = resolved.hiddenSize;
    const attention = new Blip2Attention(resolved.numHeads, D, resolved.qkvBias, random.nextSeed());
    const mlpSeeds = [random.nextSeed(), random.nextSeed()] as const; // fc1, fc2: the order this layer always drew them in
    super({
      dim: D,
      eps: resolved.layerNormEps,
      attention,
      mlp: new FeedForward(D, resolved.intermediateSize, resolved.hiddenAct, mlpSeeds),
    });
  }

  /** The MLP's first linear layer (`mlp.fc1`). */
  get fc1(): Linear {
    return this.mlp.fc1;
  }

  /** The MLP's second linear layer (`mlp.fc2`). */
  get fc2(): Linear {
    return this.mlp.fc2;
  }
}

/** The image encoder. HF: `Blip2VisionModel`. */
export class Blip2VisionModel extends Module {
  /** [1, 1, D] */
  readonly classEmbedding: tf.Variable;
  readonly patchEmbedding: PatchEmbedding;
  /** [1, 1 + N, D] */
  readonly positionEmbedding: tf.Variable;
  readonly layers: Blip2EncoderLayer[] = [];
  readonly postLayerNorm: LayerNorm;

  readonly config: ResolvedBlip2VisionConfig;

  constructor(options: Blip2VisionConfig, seed: number) {
    super();
    const config = (this.config = resolveBlip2VisionConfig(options));
    const random = new Random(seed);
    const D = config.hiddenSize;
    const patches = (config.imageSize / config.patchSize) ** 2;
    this.classEmbedding = this.parameter(
      "embeddings.class_embedding",
      tf.randomNormal([1, 1, D], 0, 0.02, "float32", random.nextSeed()),
    );
    this.patchEmbedding = this.module(
      "embeddings.patch_embedding",
      new PatchEmbedding({ patchSize: config.patchSize, dim: D, bias: true, seed: random.nextSeed() }),
    );
    this.positionEmbedding = this.parameter(
      "embeddings.position_embedding",
      tf.randomNormal([1, patches + 1, D], 0, 0.02, "float32", random.nextSeed()),
    );
    for (let i = 0; i < config.numLayers; i++)
      this.layers.push(this.module(`encoder.layers.${i}`, new Blip2EncoderLayer(config, random.nextSeed())));
    this.postLayerNorm = this.module("post_layernorm", new LayerNorm({ dim: D, eps: config.layerNormEps }));
  }

  /** pixels: [B, 3, S, S] → lastHiddenState [B, 1 + N, D] (after the post-LayerNorm, as transformers returns it) */
  apply(pixels: tf.Tensor): tf.Tensor {
    const S = this.config.imageSize;
    if (pixels.rank !== 4 || pixels.shape[2] !== S || pixels.shape[3] !== S)
      throw new Error(`BLIP-2 vision: expected pixels [B, 3, ${S}, ${S}], got [${pixels.shape}]`);
    return tf.tidy(() => {
      const [B] = pixels.shape;
      const patches = this.patchEmbedding.apply(pixels); // [B, N, D]
      let x = tf.concat([this.classEmbedding.tile([B, 1, 1]), patches], 1).add(this.positionEmbedding); // [B, 1 + N, D]
      for (const layer of this.layers) x = layer.apply(x);
      return this.postLayerNorm.apply(x);
    });
  }
}

/** BERT-style attention (self or cross) with its post-LayerNorm residual output. HF: `Blip2QFormerAttention`. */
export class Blip2QFormerAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly outputDense: Linear;
  readonly outputNorm: LayerNorm;

  constructor(
    private readonly heads: number,
    dim: number,
    keyValueDim: number,
    eps: number,
    seed: number,
  ) {
    super();
    const random = new Random(seed);
    this.query = this.module("attention.query", new Linear({ inFeatures: dim, outFeatures: dim, seed: random.nextSeed() }));
    this.key = this.module("attention.key", new Linear({ inFeatures: keyValueDim, outFeatures: dim, seed: random.nextSeed() }));
    this.value = this.module(
      "attention.value",
      new Linear({ inFeatures: keyValueDim, outFeatures: dim, seed: random.nextSeed() }),
    );
    this.outputDense = this.module("output.dense", new Linear({ inFeatures: dim, outFeatures: dim, seed: random.nextSeed() }));
    this.outputNorm = this.module("output.LayerNorm", new LayerNorm({ dim, eps }));
  }

  /** x: [B, Nq, Dq]; context: [B, Tk, Dk] (x itself for self-attention) → LayerNorm(x + dense(attention)) [B, Nq, Dq] */
  apply(x: tf.Tensor, context: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const q = splitHeads(this.query.apply(x), this.heads); // [B, H, Nq, Dh]
      const k = splitHeads(this.key.apply(context), this.heads); // [B, H, Tk, Dh]
      const v = splitHeads(this.value.apply(context), this.heads);
      const attended = mergeHeads(scaledDotProductAttention(q, k, v).output); // [B, Nq, Dq]
      return this.outputNorm.apply(this.outputDense.apply(attended).add(x));
    });
  }
}

/** One Q-Former layer for the queries: self-attention, cross-attention to the image (some layers), FFN. HF: `Blip2QFormerLayer`. */
export class Blip2QFormerLayer extends Module {
  readonly selfAttention: Blip2QFormerAttention;
  readonly crossAttention: Blip2QFormerAttention | undefined;
  readonly intermediate: Linear;
  readonly outputDense: Linear;
  readonly outputNorm: LayerNorm;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(qformerConfig: Blip2QFormerConfig, index: number, seed: number) {
    super();
    const config = resolveBlip2QFormerConfig(qformerConfig);
    const random = new Random(seed);
    const Dq = config.hiddenSize;
    const eps = config.layerNormEps;
    this.act = activation(config.hiddenAct);
    this.selfAttention = this.module("attention", new Blip2QFormerAttention(config.numHeads, Dq, Dq, eps, random.nextSeed()));
    const crossSeed = random.nextSeed();
    this.crossAttention =
      index % config.crossAttentionFrequency === 0
        ? this.module(
            "crossattention",
            new Blip2QFormerAttention(config.numHeads, Dq, config.encoderWindow ** 2 * config.encoderHiddenSize, eps, crossSeed),
          )
        : undefined;
    this.intermediate = this.module(
      "intermediate_query.dense",
      new Linear({ inFeatures: Dq, outFeatures: config.intermediateSize, seed: random.nextSeed() }),
    );
    this.outputDense = this.module(
      "output_query.dense",
      new Linear({ inFeatures: config.intermediateSize, outFeatures: Dq, seed: random.nextSeed() }),
    );
    this.outputNorm = this.module("output_query.LayerNorm", new LayerNorm({ dim: Dq, eps }));
  }

  /** queries: [B, Nq, Dq]; image: the cross-attention's keys/values [B, Tk, w²·Dv] ({@link qformerImageContext}) → [B, Nq, Dq] */
  apply(queries: tf.Tensor, image: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = this.selfAttention.apply(queries, queries);
      if (this.crossAttention) h = this.crossAttention.apply(h, image);
      return this.outputNorm.apply(this.outputDense.apply(this.act(this.intermediate.apply(h))).add(h));
    });
  }
}

/**
 * What the Q-Former's cross-attention reads ({@link Blip2QFormerConfig.encoderWindow}): window 1 returns the image
 * features unchanged; window w > 1 gives every patch token its w × w patch neighbourhood side by side
 * (`patchNeighbourhoods` of ./llava, zero beyond the grid's edge: the input of a w × w convolution, as LLaVA's
 * `projectorWindow`). The class token has no place on the grid: its own vector sits in the centre slot (where each patch
 * has itself) and the other w² − 1 slots are zeros, so it still reaches the keys through the same weights as a patch's centre.
 * image: [B, 1 + g·g, Dv] (class token first, then the g × g patches row-major, as the vision towers return them)
 * → [B, 1 + g·g, w²·Dv]
 */
export function qformerImageContext(image: tf.Tensor, window: number): tf.Tensor {
  if (window === 1) return image;
  const [B, Tk, Dv] = image.shape;
  const grid = Math.round(Math.sqrt(Tk - 1));
  if (image.rank !== 3 || Tk < 2 || grid * grid !== Tk - 1)
    throw new Error(
      `Q-Former: encoderWindow ${window} needs image features [B, 1 + g·g, Dv] (a class token, then a square patch grid), got [${image.shape}]`,
    );
  const centre = (window * window - 1) / 2; // the slot of offset (0, 0) in the row-major window
  return tf.tidy(() => {
    const classToken = image.slice([0, 0, 0], [B, 1, Dv]); // [B, 1, Dv]
    const classSlots = classToken.pad([
      [0, 0],
      [0, 0],
      [centre * Dv, centre * Dv],
    ]); // [B, 1, w²·Dv]: its own vector in the centre slot, zeros elsewhere
    const patches = patchNeighbourhoods(image.slice([0, 1, 0], [B, Tk - 1, Dv]), window); // [B, g·g, w²·Dv]
    return tf.concat([classSlots, patches], 1); // [B, 1 + g·g, w²·Dv]
  });
}

/** The Q-Former over the learned queries (no text input). HF: `Blip2QFormerModel`. */
export class Blip2QFormerModel extends Module {
  readonly layernorm: LayerNorm;
  readonly layers: Blip2QFormerLayer[] = [];

  readonly config: ResolvedBlip2QFormerConfig;

  constructor(options: Blip2QFormerConfig, seed: number) {
    super();
    const config = (this.config = resolveBlip2QFormerConfig(options));
    const random = new Random(seed);
    this.layernorm = this.module("layernorm", new LayerNorm({ dim: config.hiddenSize, eps: config.layerNormEps }));
    for (let i = 0; i < config.numLayers; i++)
      this.layers.push(this.module(`encoder.layer.${i}`, new Blip2QFormerLayer(config, i, random.nextSeed())));
  }

  /** queryEmbeds: [B, Nq, Dq]; image: [B, Tk, Dv] ([B, 1 + g·g, Dv] when encoderWindow > 1) → lastHiddenState [B, Nq, Dq] */
  apply(queryEmbeds: tf.Tensor, image: tf.Tensor): tf.Tensor {
    if (image.shape[2] !== this.config.encoderHiddenSize)
      throw new Error(`Q-Former: image features must have width ${this.config.encoderHiddenSize}, got [${image.shape}]`);
    return tf.tidy(() => {
      const context = qformerImageContext(image, this.config.encoderWindow); // [B, Tk, w²·Dv]
      let x = this.layernorm.apply(queryEmbeds);
      for (const layer of this.layers) x = layer.apply(x, context);
      return x;
    });
  }
}

/** What {@link Blip2ForConditionalGeneration.forward} returns. */
export interface Blip2Output {
  /** [B, T, V] */
  logits: tf.Tensor;
  /** [B, 1 + N, Dv] */
  visionLastHiddenState: tf.Tensor;
  /** [B, Nq, Dq] */
  qformerLastHiddenState: tf.Tensor;
  /** [B, Nq, Dtext]: what replaces the image placeholders. */
  languageModelInputs: tf.Tensor;
}

export class Blip2ForConditionalGeneration extends Module {
  readonly visionModel: Blip2VisionModel;
  /** [1, Nq, Dq] */
  readonly queryTokens: tf.Variable;
  readonly qformer: Blip2QFormerModel;
  readonly languageProjection: Linear;
  readonly languageModel: LlamaForCausalLM;
  readonly config: ResolvedBlip2Config;

  constructor(options: Blip2Config) {
    super();
    const config = (this.config = resolveBlip2Config(options));
    const random = new Random(config.seed);
    this.visionModel = this.module("vision_model", new Blip2VisionModel(config.vision, random.nextSeed()));
    this.queryTokens = this.parameter(
      "query_tokens",
      tf.randomNormal([1, config.numQueryTokens, config.qformer.hiddenSize], 0, 0.02, "float32", random.nextSeed()),
    );
    this.qformer = this.module("qformer", new Blip2QFormerModel(config.qformer, random.nextSeed()));
    this.languageProjection = this.module(
      "language_projection",
      new Linear({ inFeatures: config.qformer.hiddenSize, outFeatures: config.text.hiddenSize, seed: random.nextSeed() }),
    );
    this.languageModel = this.module("language_model", new LlamaForCausalLM({ ...config.text, seed: random.nextSeed() }));
  }

  /** pixels: [B, 3, S, S] → the vision output, the Q-Former output and the projected queries */
  encodeImage(pixels: tf.Tensor): Omit<Blip2Output, "logits"> {
    return tidy(() => {
      const visionLastHiddenState = this.visionModel.apply(pixels); // [B, 1 + N, Dv]
      const [B] = pixels.shape;
      const queries = this.queryTokens.tile([B, 1, 1]); // [B, Nq, Dq]
      const qformerLastHiddenState = this.qformer.apply(queries, visionLastHiddenState); // [B, Nq, Dq]
      const languageModelInputs = this.languageProjection.apply(qformerLastHiddenState); // [B, Nq, Dtext]
      return { visionLastHiddenState, qformerLastHiddenState, languageModelInputs };
    });
  }

  private imageTokenId(): number {
    const id = this.config.imageTokenId;
    if (id === undefined)
      throw new Error("BLIP-2: config.imageTokenId is not set: the text needs Nq image placeholder tokens per image");
    return id;
  }

  /** The language model's input: token embeddings with the projected queries in the image placeholders. → [B, T, Dtext] */
  inputEmbeddings(inputIds: tf.Tensor, languageModelInputs: tf.Tensor): tf.Tensor {
    return embedWithImageFeatures(this.languageModel.model.embedTokens, inputIds, languageModelInputs, this.imageTokenId());
  }

  /** inputIds hold Nq placeholders per image. */
  forward(inputs: { pixelValues: tf.Tensor; inputIds: tf.Tensor; attentionMask?: tf.Tensor }): Blip2Output {
    assertImageTokenCount(
      inputs.inputIds,
      this.imageTokenId(),
      this.config.numQueryTokens,
      inputs.pixelValues.shape[0] as number,
      "BLIP-2 forward",
    );
    return tidy(() => {
      const image = this.encodeImage(inputs.pixelValues);
      const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, image.languageModelInputs);
      const { logits } = this.languageModel.forward({ inputsEmbeds, attentionMask: inputs.attentionMask });
      return { logits, ...image };
    });
  }

  /** Rejects inputs whose placeholder count does not match the images. */
  async checkInputs(inputs: { pixelValues: tf.Tensor; inputIds: tf.Tensor }): Promise<void> {
    checkPromptNotEmpty(inputs.inputIds, "BLIP-2");
    await checkTokenIds(inputs.inputIds, this.config.text.vocabSize, "BLIP-2", [this.imageTokenId()]);
    await checkImageTokens(
      inputs.inputIds,
      this.imageTokenId(),
      this.config.numQueryTokens,
      inputs.pixelValues.shape[0] as number,
    );
  }

  /** Generates from an image-and-text prompt; returns the new tokens of each row. */
  async generate(
    inputs: { pixelValues: tf.Tensor; inputIds: tf.Tensor; attentionMask?: tf.Tensor },
    options: GenerateOptions = {},
  ): Promise<number[][]> {
    await this.checkInputs(inputs);
    const inputsEmbeds = tf.tidy(() =>
      this.inputEmbeddings(inputs.inputIds, this.encodeImage(inputs.pixelValues).languageModelInputs),
    );
    try {
      return await this.languageModel.generate(undefined, { ...options, inputsEmbeds, attentionMask: inputs.attentionMask });
    } finally {
      inputsEmbeds.dispose();
    }
  }
}

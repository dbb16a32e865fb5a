/**
 * CLIP: a ViT image tower and a causal text transformer trained so that an
 * image and its caption map to nearby unit vectors (contrastive learning).
 *
 * Paper: Radford et al., "Learning Transferable Visual Models From Natural
 * Language Supervision" (2021). Reference: transformers
 * `models/clip/modeling_clip.py` (`CLIPModel`, `CLIPVisionTransformer`,
 * `CLIPTextTransformer`); openai/CLIP `clip/model.py`. Parameter names are
 * Hugging Face's (including its `pre_layrnorm` spelling).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { Embedding } from "../nn/embedding";
import { LayerNorm } from "../nn/layer_norm";
import { PatchEmbedding } from "../nn/patch_embedding";
import { FeedForward } from "../nn/feed_forward";
import { PreNormEncoderLayer } from "../nn/pre_norm_encoder_layer";
import { scaledDotProductAttention, splitHeads, mergeHeads } from "../nn/attention";
import { attentionMask, type AttentionMask } from "../nn/masks";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";

/** CLIP's image tower (`CLIPVisionConfig`). Every field defaults as transformers' does; see {@link resolveCLIPVisionConfig}. */
export interface CLIPVisionConfig {
  /** Width D. Default 768. */
  readonly hiddenSize?: number;
  /** MLP width. Default 3072. */
  readonly intermediateSize?: number;
  /** Encoder layers. Default 12. */
  readonly numLayers?: number;
  /** Heads H. Default 12. */
  readonly numHeads?: number;
  /** Image channels C. Default 3. */
  readonly numChannels?: number;
  /** Input side S in pixels. Default 224. */
  readonly imageSize?: number;
  /** Patch side P. Default 32. */
  readonly patchSize?: number;
  /** MLP activation. Default `quick_gelu`. */
  readonly hiddenAct?: string;
  /** LayerNorm epsilon. Default 1e-5. */
  readonly layerNormEps?: number;
  /** Seed of the initialisers. Default 0. */
  readonly seed?: number;
}

/** CLIP's text tower (`CLIPTextConfig`). Every field defaults as transformers' does; see {@link resolveCLIPTextConfig}. */
export interface CLIPTextConfig {
  /** Vocabulary size V. Default 49408. */
  readonly vocabSize?: number;
  /** Width D. Default 512. */
  readonly hiddenSize?: number;
  /** MLP width. Default 2048. */
  readonly intermediateSize?: number;
  /** Encoder layers. Default 12. */
  readonly numLayers?: number;
  /** Heads H. Default 8. */
  readonly numHeads?: number;
  /** Longest text (positions learned). Default 77. */
  readonly maxPositionEmbeddings?: number;
  /** MLP activation. Default `quick_gelu`. */
  readonly hiddenAct?: string;
  /** LayerNorm epsilon. Default 1e-5. */
  readonly layerNormEps?: number;
  /**
   * The end-of-text id whose position pools the sequence. transformers keeps
   * the original CLIP rule for id 2 (legacy configs): the position of the
   * largest id. Default 2.
   */
  readonly eosTokenId?: number;
  /** Seed of the initialisers. Default 0. */
  readonly seed?: number;
}

/** `CLIPConfig`: both towers and the joint space. See {@link resolveCLIPConfig}. */
export interface CLIPConfig {
  readonly text: CLIPTextConfig;
  readonly vision: CLIPVisionConfig;
  /** Joint embedding width P. Default 512. */
  readonly projectionDim?: number;
  /** Initial log of the logit scale. Default 2.6592 (= ln(1/0.07)). */
  readonly logitScaleInit?: number;
  /** Seed of the initialisers (each tower gets its own, drawn from this one). Default 0. */
  readonly seed?: number;
}

export type ResolvedCLIPVisionConfig = Required<CLIPVisionConfig>;
export type ResolvedCLIPTextConfig = Required<CLIPTextConfig>;
export interface ResolvedCLIPConfig extends Required<Omit<CLIPConfig, "text" | "vision">> {
  readonly text: ResolvedCLIPTextConfig;
  readonly vision: ResolvedCLIPVisionConfig;
}

function checkPositive(model: string, config: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of keys) {
    const value = config[key];
    if (!Number.isInteger(value) || (value as number) <= 0)
      throw new Error(`${model}: config.${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
}

/** Fills every default of a {@link CLIPVisionConfig} once and checks the sizes (idempotent). */
export function resolveCLIPVisionConfig(config: CLIPVisionConfig): ResolvedCLIPVisionConfig {
  const resolved: ResolvedCLIPVisionConfig = {
    hiddenSize: config.hiddenSize ?? 768,
    intermediateSize: config.intermediateSize ?? 3072,
    numLayers: config.numLayers ?? 12,
    numHeads: config.numHeads ?? 12,
    numChannels: config.numChannels ?? 3,
    imageSize: config.imageSize ?? 224,
    patchSize: config.patchSize ?? 32,
    hiddenAct: config.hiddenAct ?? "quick_gelu",
    layerNormEps: config.layerNormEps ?? 1e-5,
    seed: config.seed ?? 0,
  };
  checkPositive("CLIP vision", resolved, [
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
    "numChannels",
    "imageSize",
    "patchSize",
  ]);
  if (resolved.imageSize % resolved.patchSize !== 0)
    throw new Error(`CLIP vision: imageSize (${resolved.imageSize}) must be a multiple of patchSize (${resolved.patchSize})`);
  return resolved;
}

/** Fills every default of a {@link CLIPTextConfig} once and checks the sizes (idempotent). */
export function resolveCLIPTextConfig(config: CLIPTextConfig): ResolvedCLIPTextConfig {
  const resolved: ResolvedCLIPTextConfig = {
    vocabSize: config.vocabSize ?? 49408,
    hiddenSize: config.hiddenSize ?? 512,
    intermediateSize: config.intermediateSize ?? 2048,
    numLayers: config.numLayers ?? 12,
    numHeads: config.numHeads ?? 8,
    maxPositionEmbeddings: config.maxPositionEmbeddings ?? 77,
    hiddenAct: config.hiddenAct ?? "quick_gelu",
    layerNormEps: config.layerNormEps ?? 1e-5,
    eosTokenId: config.eosTokenId ?? 2,
    seed: config.seed ?? 0,
  };
  checkPositive("CLIP text", resolved, [
    "vocabSize",
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
    "maxPositionEmbeddings",
  ]);
  return resolved;
}

/** Fills every default of a {@link CLIPConfig} once (idempotent). */
export function resolveCLIPConfig(config: CLIPConfig): ResolvedCLIPConfig {
  return {
    text: resolveCLIPTextConfig(config.text),
    vision: resolveCLIPVisionConfig(config.vision),
    projectionDim: config.projectionDim ?? 512,
    logitScaleInit: config.logitScaleInit ?? 2.6592,
    seed: config.seed ?? 0,
  };
}

/** Settings shared by both towers' encoder layers (and the audio encoder's). */
export interface EncoderSizes {
  /** Width D. */
  dim: number;
  /** Heads H. */
  heads: number;
  /** MLP width. */
  intermediate: number;
  /** MLP activation name. */
  hiddenAct: string;
  /** LayerNorm epsilon. */
  eps: number;
}

/** A resolved tower's encoder settings. */
function encoderSizes(config: ResolvedCLIPVisionConfig | ResolvedCLIPTextConfig): EncoderSizes {
  return {
    dim: config.hiddenSize,
    heads: config.numHeads,
    intermediate: config.intermediateSize,
    hiddenAct: config.hiddenAct,
    eps: config.layerNormEps,
  };
}

/** Multi-head self-attention with biases. HF: `CLIPAttention`. */
export class CLIPAttention extends Module {
  readonly queryProjection: Linear;
  readonly keyProjection: Linear;
  readonly valueProjection: Linear;
  readonly outputProjection: Linear;

  constructor(
    private readonly heads: number,
    dim: number,
    seed: number,
  ) {
    super();
    if (dim % heads !== 0) throw new Error(`CLIPAttention: heads (${heads}) must divide the width (${dim})`);
    const random = new Random(seed);
    const linear = () => new Linear({ inFeatures: dim, outFeatures: dim, seed: random.nextSeed() });
    this.keyProjection = this.module("k_proj", linear());
    this.valueProjection = this.module("v_proj", linear());
    this.queryProjection = this.module("q_proj", linear());
    this.outputProjection = this.module("out_proj", linear());
  }

  /** x: [B, T, D]; mask over [T, T] → [B, T, D] */
  apply(x: tf.Tensor, mask: AttentionMask): tf.Tensor {
    return tf.tidy(() => {
      const q = splitHeads(this.queryProjection.apply(x), this.heads); // [B, H, T, Dh]
      const k = splitHeads(this.keyProjection.apply(x), this.heads);
      const v = splitHeads(this.valueProjection.apply(x), this.heads);
      const { output } = scaledDotProductAttention(q, k, v, mask.bias); // [B, H, T, Dh]
      const attended = mask.rowsWithKeys ? output.mul(mask.rowsWithKeys) : output;
      return this.outputProjection.apply(mergeHeads(attended)); // [B, T, D]
    });
  }
}

/** fc1 → activation → fc2. HF: `CLIPMLP` (the shared nn/feed_forward.ts). */
export { FeedForward as CLIPMLP };

/** Pre-norm encoder layer with CLIP's attention (the shared nn/pre_norm_encoder_layer.ts). HF: `CLIPEncoderLayer`. */
export class CLIPEncoderLayer extends PreNormEncoderLayer<CLIPAttention> {
  constructor(sizes: EncoderSizes, seed: number) {
    const random = new Random(seed);
    const attention = new CLIPAttention(sizes.heads, sizes.dim, random.nextSeed());
    super({
      dim: sizes.dim,
      eps: sizes.eps,
      attention,
      mlp: new FeedForward(sizes.dim, sizes.intermediate, sizes.hiddenAct, random.nextSeed()),
    });
  }
}

/** A stack of encoder layers. HF: `CLIPEncoder`. */
export class CLIPEncoder extends Module {
  readonly layers: CLIPEncoderLayer[] = [];

  constructor(sizes: EncoderSizes, numLayers: number, seed: number) {
    super();
    const random = new Random(seed);
    for (let i = 0; i < numLayers; i++)
      this.layers.push(this.module(`layers.${i}`, new CLIPEncoderLayer(sizes, random.nextSeed())));
  }

  /** x: [B, T, D]; mask (default none) → every hidden state: the input, then each layer's output (numLayers + 1 of [B, T, D]) */
  forward(x: tf.Tensor, mask: AttentionMask = {}): tf.Tensor[] {
    return tf.tidy(() => {
      const states = [x.clone()];
      for (const layer of this.layers) states.push(layer.apply(states[states.length - 1], mask));
      return states;
    });
  }
}

/** Class token, patch embeddings and learned positions. HF: `CLIPVisionEmbeddings`. */
export class CLIPVisionEmbeddings extends Module {
  /** [D] */
  readonly classEmbedding: tf.Variable;
  readonly patchEmbedding: PatchEmbedding;
  readonly positionEmbedding: Embedding;

  readonly config: ResolvedCLIPVisionConfig;

  constructor(options: CLIPVisionConfig, seed: number) {
    super();
    const config = (this.config = resolveCLIPVisionConfig(options));
    const random = new Random(seed);
    const D = config.hiddenSize;
    const patches = (config.imageSize / config.patchSize) ** 2;
    this.classEmbedding = this.parameter("class_embedding", tf.randomNormal([D], 0, 0.02, "float32", random.nextSeed()));
    this.patchEmbedding = this.module(
      "patch_embedding",
      new PatchEmbedding({ channels: config.numChannels, patchSize: config.patchSize, dim: D, seed: random.nextSeed() }),
    );
    this.positionEmbedding = this.module(
      "position_embedding",
      new Embedding({ numEmbeddings: patches + 1, embeddingDim: D, seed: random.nextSeed() }),
    );
  }

  /** pixels: [B, C, S, S] with S = imageSize → [B, 1 + N, D] */
  apply(pixels: tf.Tensor): tf.Tensor {
    const S = this.config.imageSize;
    if (pixels.rank !== 4 || pixels.shape[2] !== S || pixels.shape[3] !== S) {
      throw new Error(`CLIP vision: expected pixels [B, ${this.config.numChannels}, ${S}, ${S}], got [${pixels.shape}]`);
    }
    return tf.tidy(() => {
      const [B] = pixels.shape;
      const D = this.config.hiddenSize;
      const patches = this.patchEmbedding.apply(pixels); // [B, N, D]
      const classToken = this.classEmbedding.reshape([1, 1, D]).tile([B, 1, 1]); // [B, 1, D]
      const tokens = tf.concat([classToken, patches], 1); // [B, 1 + N, D]
      return tokens.add(this.positionEmbedding.weight); // + [1 + N, D]
    });
  }
}

/** What the image tower returns. */
export interface CLIPVisionOutput {
  /** [B, 1 + N, D], the last layer's output (not normalised). */
  lastHiddenState: tf.Tensor;
  /** [B, D]: post-LayerNorm of the class token. */
  poolerOutput: tf.Tensor;
  /** numLayers + 1 of [B, 1 + N, D]: after the pre-LayerNorm, then each layer. */
  hiddenStates: tf.Tensor[];
}

/** The ViT image tower. HF: `CLIPVisionTransformer` (inside `CLIPVisionModel`). */
export class CLIPVisionTransformer extends Module {
  readonly embeddings: CLIPVisionEmbeddings;
  readonly preLayerNorm: LayerNorm;
  readonly encoder: CLIPEncoder;
  readonly postLayerNorm: LayerNorm;
  readonly config: ResolvedCLIPVisionConfig;

  constructor(options: CLIPVisionConfig) {
    super();
    const config = (this.config = resolveCLIPVisionConfig(options));
    const random = new Random(config.seed);
    const eps = config.layerNormEps;
    this.embeddings = this.module("embeddings", new CLIPVisionEmbeddings(config, random.nextSeed()));
    this.preLayerNorm = this.module("pre_layrnorm", new LayerNorm({ dim: config.hiddenSize, eps }));
    this.encoder = this.module("encoder", new CLIPEncoder(encoderSizes(config), config.numLayers, random.nextSeed()));
    this.postLayerNorm = this.module("post_layernorm", new LayerNorm({ dim: config.hiddenSize, eps }));
  }

  /** pixels: [B, C, S, S] (normalised, see `preprocess/clip_image`) */
  forward(pixels: tf.Tensor): CLIPVisionOutput {
    return tidy(() => {
      const x = this.preLayerNorm.apply(this.embeddings.apply(pixels)); // [B, 1 + N, D]
      const hiddenStates = this.encoder.forward(x); // no mask: every patch sees every patch
      const lastHiddenState = hiddenStates[hiddenStates.length - 1];
      const [B, , D] = lastHiddenState.shape;
      const classToken = lastHiddenState.slice([0, 0, 0], [B, 1, D]).reshape([B, D]); // [B, D]
      return { lastHiddenState, poolerOutput: this.postLayerNorm.apply(classToken), hiddenStates };
    });
  }
}

/** What the text tower returns. */
export interface CLIPTextOutput {
  /** [B, T, D] after the final LayerNorm. */
  lastHiddenState: tf.Tensor;
  /** [B, D]: the hidden state at each row's end-of-text position. */
  poolerOutput: tf.Tensor;
}

/** The causal text transformer. HF: `CLIPTextTransformer`. */
export class CLIPTextTransformer extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;
  readonly encoder: CLIPEncoder;
  readonly finalLayerNorm: LayerNorm;
  readonly config: ResolvedCLIPTextConfig;

  constructor(options: CLIPTextConfig) {
    super();
    const config = (this.config = resolveCLIPTextConfig(options));
    const random = new Random(config.seed);
    const eps = config.layerNormEps;
    this.tokenEmbedding = this.module(
      "embeddings.token_embedding",
      new Embedding({ numEmbeddings: config.vocabSize, embeddingDim: config.hiddenSize, seed: random.nextSeed() }),
    );
    this.positionEmbedding = this.module(
      "embeddings.position_embedding",
      new Embedding({ numEmbeddings: config.maxPositionEmbeddings, embeddingDim: config.hiddenSize, seed: random.nextSeed() }),
    );
    this.encoder = this.module("encoder", new CLIPEncoder(encoderSizes(config), config.numLayers, random.nextSeed()));
    this.finalLayerNorm = this.module("final_layer_norm", new LayerNorm({ dim: config.hiddenSize, eps }));
  }

  /**
   * The position each row is pooled at: transformers' rule — the largest id
   * when `eosTokenId` is 2 (the original CLIP vocabulary's end token is its
   * largest id), else the first occurrence of `eosTokenId`.
   * inputIds: [B, T] → [B] int32
   */
  poolingPositions(inputIds: tf.Tensor): tf.Tensor {
    const eos = this.config.eosTokenId;
    return tf.tidy(() => {
      if (eos === 2) return inputIds.argMax(-1).toInt();
      return inputIds.equal(eos).toInt().argMax(-1).toInt(); // first index of the maximum (1 at the first eos)
    });
  }

  /** inputIds: [B, T] int32; attentionMask (optional): [B, T] 1 real / 0 padding */
  forward(inputIds: tf.Tensor, attentionMaskIds?: tf.Tensor): CLIPTextOutput {
    if (inputIds.rank !== 2 || inputIds.dtype !== "int32")
      throw new Error(`CLIP text: inputIds must be int32 [B, T], got ${inputIds.dtype} [${inputIds.shape}]`);
    const [B, T] = inputIds.shape;
    if (T > this.config.maxPositionEmbeddings)
      throw new Error(`CLIP text: ${T} tokens exceed maxPositionEmbeddings ${this.config.maxPositionEmbeddings}`);
    return tidy(() => {
      const x = this.tokenEmbedding.apply(inputIds).add(this.positionEmbedding.weight.slice([0, 0], [T, this.config.hiddenSize])); // [B, T, D]
      const mask = attentionMask({ queries: T, keys: T, causal: true, padding: attentionMaskIds });
      const states = this.encoder.forward(x, mask);
      const lastHiddenState = this.finalLayerNorm.apply(states[states.length - 1]); // [B, T, D]
      const positions = this.poolingPositions(inputIds); // [B]
      const rowStarts = tf.range(0, B * T, T, "int32"); // [B]: 0, T, 2T, …
      const poolerOutput = tf.gather(lastHiddenState.reshape([B * T, this.config.hiddenSize]), rowStarts.add(positions)); // [B, D]
      return { lastHiddenState, poolerOutput };
    });
  }
}

/** What {@link CLIPModel.forward} returns. */
export interface CLIPOutput {
  /** [Bimg, Btext]: scaled cosine similarity of every image with every text. */
  logitsPerImage: tf.Tensor;
  /** [Btext, Bimg] */
  logitsPerText: tf.Tensor;
  /** [Bimg, P], unit length. */
  imageEmbeds: tf.Tensor;
  /** [Btext, P], unit length. */
  textEmbeds: tf.Tensor;
  vision: CLIPVisionOutput;
  text: CLIPTextOutput;
}

/** Both towers, their projections and the learned temperature. HF: `CLIPModel`. */
export class CLIPModel extends Module {
  readonly textModel: CLIPTextTransformer;
  readonly visionModel: CLIPVisionTransformer;
  readonly visualProjection: Linear;
  readonly textProjection: Linear;
  /** Scalar: log of the logit scale. */
  readonly logitScale: tf.Variable;
  readonly config: ResolvedCLIPConfig;

  constructor(options: CLIPConfig) {
    super();
    const config = (this.config = resolveCLIPConfig(options));
    const random = new Random(config.seed);
    this.textModel = this.module("text_model", new CLIPTextTransformer({ ...config.text, seed: random.nextSeed() }));
    this.visionModel = this.module("vision_model", new CLIPVisionTransformer({ ...config.vision, seed: random.nextSeed() }));
    this.visualProjection = this.module(
      "visual_projection",
      new Linear({
        inFeatures: config.vision.hiddenSize,
        outFeatures: config.projectionDim,
        bias: false,
        seed: random.nextSeed(),
      }),
    );
    this.textProjection = this.module(
      "text_projection",
      new Linear({ inFeatures: config.text.hiddenSize, outFeatures: config.projectionDim, bias: false, seed: random.nextSeed() }),
    );
    this.logitScale = this.parameter("logit_scale", tf.scalar(config.logitScaleInit));
  }

  /** pixels: [Bimg, C, S, S] → unit image embeddings [Bimg, P] */
  imageFeatures(pixels: tf.Tensor): tf.Tensor {
    return tf.tidy(() => normalise(this.visualProjection.apply(this.visionModel.forward(pixels).poolerOutput)));
  }

  /** inputIds: [Btext, T] → unit text embeddings [Btext, P] */
  textFeatures(inputIds: tf.Tensor, attentionMaskIds?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => normalise(this.textProjection.apply(this.textModel.forward(inputIds, attentionMaskIds).poolerOutput)));
  }

  forward(args: { pixelValues: tf.Tensor; inputIds: tf.Tensor; attentionMask?: tf.Tensor }): CLIPOutput {
    return tidy(() => {
      const vision = this.visionModel.forward(args.pixelValues);
      const text = this.textModel.forward(args.inputIds, args.attentionMask);
      const imageEmbeds = normalise(this.visualProjection.apply(vision.poolerOutput)); // [Bimg, P]
      const textEmbeds = normalise(this.textProjection.apply(text.poolerOutput)); // [Btext, P]
      // [Btext, P] · [Bimg, P]ᵀ → [Btext, Bimg], scaled by exp(logitScale)
      const logitsPerText = tf.matMul(textEmbeds, imageEmbeds, false, true).mul(this.logitScale.exp());
      return { logitsPerImage: logitsPerText.transpose(), logitsPerText, imageEmbeds, textEmbeds, vision, text };
    });
  }
}

/** x / ‖x‖ over the last axis. */
function normalise(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.div(x.square().sum(-1, true).sqrt()));
}

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
import { LlamaForCausalLM, type LlamaConfig, type GenerateOptions } from "./llama";
import { embedWithImageFeatures, checkImageTokens } from "./merge_image_tokens";
import { Random } from "../util/random";

/** BLIP-2's ViT (EVA-CLIP in the paper). `Blip2VisionConfig`. */
export interface Blip2VisionConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly imageSize: number;
  readonly patchSize: number;
  /** Default `gelu` (exact). */
  readonly hiddenAct?: string;
  /** Default 1e-6. */
  readonly layerNormEps?: number;
  /** Biases on q and v (k has none). Default true. */
  readonly qkvBias?: boolean;
}

/** The Q-Former (a BERT whose layers also cross-attend to the image). `Blip2QFormerConfig`. */
export interface Blip2QFormerConfig {
  /** Width Dq. */
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Default `gelu`. */
  readonly hiddenAct?: string;
  /** Default 1e-12 (BERT's). */
  readonly layerNormEps?: number;
  /** Layer i cross-attends when i % frequency == 0. Default 2. */
  readonly crossAttentionFrequency: number;
  /** Width of the image features it reads. Default the vision width. */
  readonly encoderHiddenSize: number;
}

/** `Blip2Config`. */
export interface Blip2Config {
  readonly vision: Blip2VisionConfig;
  readonly qformer: Blip2QFormerConfig;
  readonly text: LlamaConfig;
  /** Learned queries Nq. Default 32. */
  readonly numQueryTokens: number;
  /** Placeholder id in the text that the Nq projected queries replace. Required for {@link Blip2ForConditionalGeneration.forward}. */
  readonly imageTokenId?: number;
  readonly seed?: number;
}

/** Self-attention with one fused qkv projection (bias on q and v only). HF: `Blip2Attention`. */
export class Blip2Attention extends Module {
  readonly qkv: Linear;
  readonly projection: Linear;

  /** @param qkvBias a bias on the fused projection (its k part stays 0 in checkpoints) */
  constructor(private readonly heads: number, dim: number, qkvBias: boolean, seed: number) {
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

/** Pre-norm ViT layer. HF: `Blip2EncoderLayer`. */
export class Blip2EncoderLayer extends Module {
  readonly selfAttention: Blip2Attention;
  readonly norm1: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly norm2: LayerNorm;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(config: Blip2VisionConfig, seed: number) {
    super();
    const random = new Random(seed);
    const D = config.hiddenSize;
    const eps = config.layerNormEps ?? 1e-6;
    this.act = activation(config.hiddenAct ?? "gelu");
    this.selfAttention = this.module("self_attn", new Blip2Attention(config.numHeads, D, config.qkvBias ?? true, random.nextSeed()));
    this.norm1 = this.module("layer_norm1", new LayerNorm({ dim: D, eps }));
    // Dotted names register the checkpoint's nesting (`mlp.fc1`) without a class per level.
    this.fc1 = this.module("mlp.fc1", new Linear({ inFeatures: D, outFeatures: config.intermediateSize, seed: random.nextSeed() }));
    this.fc2 = this.module("mlp.fc2", new Linear({ inFeatures: config.intermediateSize, outFeatures: D, seed: random.nextSeed() }));
    this.norm2 = this.module("layer_norm2", new LayerNorm({ dim: D, eps }));
  }

  /** x: [B, T, D] → [B, T, D] */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = x.add(this.selfAttention.apply(this.norm1.apply(x)));
      return h.add(this.fc2.apply(this.act(this.fc1.apply(this.norm2.apply(h)))));
    });
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

  constructor(readonly config: Blip2VisionConfig, seed: number) {
    super();
    const random = new Random(seed);
    const D = config.hiddenSize;
    if (config.imageSize % config.patchSize !== 0) throw new Error(`BLIP-2 vision: imageSize (${config.imageSize}) must be a multiple of patchSize (${config.patchSize})`);
    const patches = (config.imageSize / config.patchSize) ** 2;
    this.classEmbedding = this.parameter("embeddings.class_embedding", tf.randomNormal([1, 1, D], 0, 0.02, "float32", random.nextSeed()));
    this.patchEmbedding = this.module("embeddings.patch_embedding", new PatchEmbedding({ patchSize: config.patchSize, dim: D, bias: true, seed: random.nextSeed() }));
    this.positionEmbedding = this.parameter("embeddings.position_embedding", tf.randomNormal([1, patches + 1, D], 0, 0.02, "float32", random.nextSeed()));
    for (let i = 0; i < config.numLayers; i++) this.layers.push(this.module(`encoder.layers.${i}`, new Blip2EncoderLayer(config, random.nextSeed())));
    this.postLayerNorm = this.module("post_layernorm", new LayerNorm({ dim: D, eps: config.layerNormEps ?? 1e-6 }));
  }

  /** pixels: [B, 3, S, S] → lastHiddenState [B, 1 + N, D] (after the post-LayerNorm, as transformers returns it) */
  apply(pixels: tf.Tensor): tf.Tensor {
    const S = this.config.imageSize;
    if (pixels.rank !== 4 || pixels.shape[2] !== S || pixels.shape[3] !== S) throw new Error(`BLIP-2 vision: expected pixels [B, 3, ${S}, ${S}], got [${pixels.shape}]`);
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

  constructor(private readonly heads: number, dim: number, keyValueDim: number, eps: number, seed: number) {
    super();
    const random = new Random(seed);
    this.query = this.module("attention.query", new Linear({ inFeatures: dim, outFeatures: dim, seed: random.nextSeed() }));
    this.key = this.module("attention.key", new Linear({ inFeatures: keyValueDim, outFeatures: dim, seed: random.nextSeed() }));
    this.value = this.module("attention.value", new Linear({ inFeatures: keyValueDim, outFeatures: dim, seed: random.nextSeed() }));
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

  constructor(config: Blip2QFormerConfig, index: number, seed: number) {
    super();
    const random = new Random(seed);
    const Dq = config.hiddenSize;
    const eps = config.layerNormEps ?? 1e-12;
    this.act = activation(config.hiddenAct ?? "gelu");
    this.selfAttention = this.module("attention", new Blip2QFormerAttention(config.numHeads, Dq, Dq, eps, random.nextSeed()));
    const crossSeed = random.nextSeed();
    this.crossAttention =
      index % config.crossAttentionFrequency === 0
        ? this.module("crossattention", new Blip2QFormerAttention(config.numHeads, Dq, config.encoderHiddenSize, eps, crossSeed))
        : undefined;
    this.intermediate = this.module("intermediate_query.dense", new Linear({ inFeatures: Dq, outFeatures: config.intermediateSize, seed: random.nextSeed() }));
    this.outputDense = this.module("output_query.dense", new Linear({ inFeatures: config.intermediateSize, outFeatures: Dq, seed: random.nextSeed() }));
    this.outputNorm = this.module("output_query.LayerNorm", new LayerNorm({ dim: Dq, eps }));
  }

  /** queries: [B, Nq, Dq]; image: [B, Tk, Dv] → [B, Nq, Dq] */
  apply(queries: tf.Tensor, image: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = this.selfAttention.apply(queries, queries);
      if (this.crossAttention) h = this.crossAttention.apply(h, image);
      return this.outputNorm.apply(this.outputDense.apply(this.act(this.intermediate.apply(h))).add(h));
    });
  }
}

/** The Q-Former over the learned queries (no text input). HF: `Blip2QFormerModel`. */
export class Blip2QFormerModel extends Module {
  readonly layernorm: LayerNorm;
  readonly layers: Blip2QFormerLayer[] = [];

  constructor(readonly config: Blip2QFormerConfig, seed: number) {
    super();
    const random = new Random(seed);
    if (!(config.crossAttentionFrequency >= 1)) throw new Error(`Q-Former: crossAttentionFrequency must be ≥ 1, got ${config.crossAttentionFrequency}`);
    this.layernorm = this.module("layernorm", new LayerNorm({ dim: config.hiddenSize, eps: config.layerNormEps ?? 1e-12 }));
    for (let i = 0; i < config.numLayers; i++) this.layers.push(this.module(`encoder.layer.${i}`, new Blip2QFormerLayer(config, i, random.nextSeed())));
  }

  /** queryEmbeds: [B, Nq, Dq]; image: [B, Tk, Dv] → lastHiddenState [B, Nq, Dq] */
  apply(queryEmbeds: tf.Tensor, image: tf.Tensor): tf.Tensor {
    if (image.shape[2] !== this.config.encoderHiddenSize) throw new Error(`Q-Former: image features must have width ${this.config.encoderHiddenSize}, got [${image.shape}]`);
    return tf.tidy(() => {
      let x = this.layernorm.apply(queryEmbeds);
      for (const layer of this.layers) x = layer.apply(x, image);
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

  constructor(readonly config: Blip2Config) {
    super();
    const random = new Random(config.seed ?? 0);
    this.visionModel = this.module("vision_model", new Blip2VisionModel(config.vision, random.nextSeed()));
    this.queryTokens = this.parameter("query_tokens", tf.randomNormal([1, config.numQueryTokens, config.qformer.hiddenSize], 0, 0.02, "float32", random.nextSeed()));
    this.qformer = this.module("qformer", new Blip2QFormerModel(config.qformer, random.nextSeed()));
    this.languageProjection = this.module("language_projection", new Linear({ inFeatures: config.qformer.hiddenSize, outFeatures: config.text.hiddenSize, seed: random.nextSeed() }));
    this.languageModel = this.module("language_model", new LlamaForCausalLM({ ...config.text, seed: random.nextSeed() }));
  }

  /** pixels: [B, 3, S, S] → the vision output, the Q-Former output and the projected queries */
  encodeImage(pixels: tf.Tensor): Omit<Blip2Output, "logits"> {
    return tf.tidy(() => {
      const visionLastHiddenState = this.visionModel.apply(pixels); // [B, 1 + N, Dv]
      const [B] = pixels.shape;
      const queries = this.queryTokens.tile([B, 1, 1]); // [B, Nq, Dq]
      const qformerLastHiddenState = this.qformer.apply(queries, visionLastHiddenState); // [B, Nq, Dq]
      const languageModelInputs = this.languageProjection.apply(qformerLastHiddenState); // [B, Nq, Dtext]
      return { visionLastHiddenState, qformerLastHiddenState, languageModelInputs } as unknown as tf.TensorContainer;
    }) as unknown as Omit<Blip2Output, "logits">;
  }

  private imageTokenId(): number {
    const id = this.config.imageTokenId;
    if (id === undefined) throw new Error("BLIP-2: config.imageTokenId is not set: the text needs Nq image placeholder tokens per image");
    return id;
  }

  /** The language model's input: token embeddings with the projected queries in the image placeholders. → [B, T, Dtext] */
  inputEmbeddings(inputIds: tf.Tensor, languageModelInputs: tf.Tensor): tf.Tensor {
    return embedWithImageFeatures(this.languageModel.model.embedTokens, inputIds, languageModelInputs, this.imageTokenId());
  }

  /** inputIds hold Nq placeholders per image. */
  forward(inputs: { pixelValues: tf.Tensor; inputIds: tf.Tensor; attentionMask?: tf.Tensor }): Blip2Output {
    assertImageTokenCount(inputs.inputIds, this.imageTokenId(), this.config.numQueryTokens, inputs.pixelValues.shape[0] as number, "BLIP-2 forward");
    return tf.tidy(() => {
      const image = this.encodeImage(inputs.pixelValues);
      const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, image.languageModelInputs);
      const { logits } = this.languageModel.forward({ inputsEmbeds, attentionMask: inputs.attentionMask });
      return { logits, ...image } as unknown as tf.TensorContainer;
    }) as unknown as Blip2Output;
  }

  /** Rejects inputs whose placeholder count does not match the images. */
  async checkInputs(inputs: { pixelValues: tf.Tensor; inputIds: tf.Tensor }): Promise<void> {
    checkPromptNotEmpty(inputs.inputIds, "BLIP-2");
    await checkTokenIds(inputs.inputIds, this.config.text.vocabSize, "BLIP-2", [this.imageTokenId()]);
    await checkImageTokens(inputs.inputIds, this.imageTokenId(), this.config.numQueryTokens, inputs.pixelValues.shape[0] as number);
  }

  /** Generates from an image-and-text prompt; returns the new tokens of each row. */
  async generate(inputs: { pixelValues: tf.Tensor; inputIds: tf.Tensor; attentionMask?: tf.Tensor }, options: GenerateOptions = {}): Promise<number[][]> {
    await this.checkInputs(inputs);
    const inputsEmbeds = tf.tidy(() => this.inputEmbeddings(inputs.inputIds, this.encodeImage(inputs.pixelValues).languageModelInputs));
    try {
      return await this.languageModel.generate(undefined, { ...options, inputsEmbeds, attentionMask: inputs.attentionMask });
    } finally {
      inputsEmbeds.dispose();
    }
  }
}

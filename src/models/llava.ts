/**
 * LLaVA: a CLIP image tower, a 2-layer MLP (or linear) projector and a Llama language
 * model. Image features (one layer's patch tokens) are projected to the LLM's
 * width and replace the `<image>` placeholder tokens of the prompt.
 *
 * Papers: Liu et al., "Visual Instruction Tuning" (LLaVA, 2023); "Improved
 * Baselines with Visual Instruction Tuning" (LLaVA-1.5, 2023: the MLP projector).
 * Reference: transformers `models/llava/modeling_llava.py`
 * (`LlavaForConditionalGeneration`, `LlavaMultiModalProjector`, `get_image_features`).
 * Parameter names follow the checkpoint layout transformers saves
 * (`vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
 * `language_model.lm_head.*`); `loadLlava` also reads the other layouts.
 */
import { assertImageTokenCount, assertImageTokensPerRow, checkPromptNotEmpty, checkTokenIds } from "./input_validation";
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { activation } from "../nn/activations";
import { CLIPVisionTransformer, resolveCLIPVisionConfig, type CLIPVisionConfig, type ResolvedCLIPVisionConfig } from "./clip";
import { LlamaForCausalLM, resolveLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig, type GenerateOptions } from "./llama";
import { embedWithImageFeatures, checkImageTokens, countImageTokens } from "./merge_image_tokens";
import { Embedding } from "../nn/embedding";
import { Random } from "../util/random";

/** `LlavaConfig`. Defaults as transformers' ({@link resolveLlavaConfig}). */
export interface LlavaConfig {
  readonly vision: CLIPVisionConfig;
  readonly text: LlamaConfig;
  /** Id of the `<image>` placeholder. Default 32000. */
  readonly imageTokenId?: number;
  /**
   * Hidden state(s) of the image tower to use: an index into its hidden states
   * (numLayers + 1 of them; negative counts from the end). Several are
   * concatenated along the width. Default [-2] (the penultimate layer).
   */
  readonly visionFeatureLayers?: readonly number[];
  /** `default` drops the class token, `full` keeps it. Default `default`. */
  readonly visionFeatureSelectStrategy?: "default" | "full";
  /** Projector activation. Default `gelu`. */
  readonly projectorHiddenAct?: string;
  /** Biases in the projector. Default true. */
  readonly projectorBias?: boolean;
  /**
   * `mlp2x_gelu` (LLaVA-1.5: Linear → activation → Linear) or `linear` (LLaVA-1:
   * one Linear). Default `mlp2x_gelu`. Original LLaVA's `mm_projector_type`.
   */
  readonly projectorType?: LlavaProjectorType;
  /**
   * Learned frame-index embeddings for multi-image prompts (lab 05's stories): this many
   * vectors [F, Dtext]; vector f is added to every projected feature of the f-th image of
   * a row, so the LLM can tell the frames apart beyond their order in the text. 0 (default)
   * = off: no parameter, the checkpoint and transformers' LLaVA unchanged. Initialised at
   * zero, so a trained bridge behaves as before until they learn. Stored as
   * `frame_embeddings.weight`, config.json key `frame_embeddings` (ours; written only when on).
   */
  readonly frameEmbeddings?: number;
  /**
   * Image-token pooling (LLaVA-OneVision / LLaVA-NeXT-Video's `get_2dPool`): the projected patch
   * grid of each image is average-pooled with this window and stride, so an 8×8 grid of 64 tokens
   * becomes 4×4 = 16 at stride 2, and five frames fit a short LLM context. 1 (default) = off: the
   * model and transformers' LLaVA unchanged. Needs the `default` feature strategy (no class token)
   * and a patch grid the stride divides. config.json key `mllm_labs_image_pool_stride` (ours; written
   * only when on, so transformers' loaders ignore it and would not pool).
   */
  readonly imagePoolStride?: number;
  /**
   * Local context for the projector: each patch token's projector input is its window × window neighbourhood of patches
   * (zero beyond the grid's edge) side by side, so the projector's first layer is a window × window convolution over the
   * patch grid, after the locality-enhanced projectors of Honeybee (C-Abstractor) and MobileVLM (LDP). 1 (default) = off:
   * the model and transformers' LLaVA unchanged. An object's shape spreads over about 3×3 of the tiny tower's patches
   * (docs/lab02-plan.md); one token alone reads it poorly. Needs the `default` feature strategy (no class token) and an odd
   * window. config.json key `mllm_labs_projector_window` (ours; written only when on).
   */
  readonly projectorWindow?: number;
  /** Seed of the initialisers. Default 0. */
  readonly seed?: number;
}

/** The projector designs of LLaVA-1 (`linear`) and LLaVA-1.5 (`mlp2x_gelu`). */
export const LLAVA_PROJECTOR_TYPES = ["mlp2x_gelu", "linear"] as const;
export type LlavaProjectorType = (typeof LLAVA_PROJECTOR_TYPES)[number];

export interface ResolvedLlavaConfig extends Required<Omit<LlavaConfig, "vision" | "text">> {
  readonly vision: ResolvedCLIPVisionConfig;
  readonly text: ResolvedLlamaConfig;
}

/** Fills every default of a {@link LlavaConfig} once and checks it (idempotent). */
export function resolveLlavaConfig(config: LlavaConfig): ResolvedLlavaConfig {
  const resolved: ResolvedLlavaConfig = {
    vision: resolveCLIPVisionConfig(config.vision),
    text: resolveLlamaConfig(config.text),
    imageTokenId: config.imageTokenId ?? 32000,
    visionFeatureLayers: config.visionFeatureLayers ?? [-2],
    visionFeatureSelectStrategy: config.visionFeatureSelectStrategy ?? "default",
    projectorHiddenAct: config.projectorHiddenAct ?? "gelu",
    projectorBias: config.projectorBias ?? true,
    projectorType: config.projectorType ?? "mlp2x_gelu",
    frameEmbeddings: config.frameEmbeddings ?? 0,
    imagePoolStride: config.imagePoolStride ?? 1,
    projectorWindow: config.projectorWindow ?? 1,
    seed: config.seed ?? 0,
  };
  const window = resolved.projectorWindow;
  if (!Number.isInteger(window) || window < 1 || window % 2 === 0)
    throw new Error(`LLaVA: projectorWindow must be an odd integer ≥ 1 (1 = off), got ${JSON.stringify(window)}`);
  if (window > 1 && resolved.visionFeatureSelectStrategy !== "default")
    throw new Error(
      `LLaVA: projectorWindow ${window} reads the patch grid and needs visionFeatureSelectStrategy "default" (no class token), got ${JSON.stringify(resolved.visionFeatureSelectStrategy)}`,
    );
  const stride = resolved.imagePoolStride;
  if (!Number.isInteger(stride) || stride < 1)
    throw new Error(`LLaVA: imagePoolStride must be an integer ≥ 1 (1 = off), got ${JSON.stringify(stride)}`);
  if (stride > 1) {
    const grid = resolved.vision.imageSize / resolved.vision.patchSize;
    if (resolved.visionFeatureSelectStrategy !== "default")
      throw new Error(
        `LLaVA: imagePoolStride ${stride} pools the patch grid and needs visionFeatureSelectStrategy "default" (no class token), got ${JSON.stringify(resolved.visionFeatureSelectStrategy)}`,
      );
    if (!Number.isInteger(grid) || grid % stride !== 0)
      throw new Error(
        `LLaVA: imagePoolStride ${stride} does not divide the ${grid}×${grid} patch grid; choose a divisor of ${grid}`,
      );
  }
  if (!Number.isInteger(resolved.frameEmbeddings) || resolved.frameEmbeddings < 0)
    throw new Error(`LLaVA: frameEmbeddings must be an integer ≥ 0 (0 = off), got ${JSON.stringify(resolved.frameEmbeddings)}`);
  if (!resolved.visionFeatureLayers.length || !resolved.visionFeatureLayers.every(Number.isInteger)) {
    throw new Error(
      `LLaVA: visionFeatureLayers must be a non-empty list of integers, got ${JSON.stringify(resolved.visionFeatureLayers)}`,
    );
  }
  if (resolved.visionFeatureSelectStrategy !== "default" && resolved.visionFeatureSelectStrategy !== "full") {
    throw new Error(
      `LLaVA: visionFeatureSelectStrategy must be "default" or "full", got ${JSON.stringify(resolved.visionFeatureSelectStrategy)}`,
    );
  }
  return resolved;
}

/**
 * Linear → activation → Linear from the image tower's width to the LLM's
 * (HF: `LlavaMultiModalProjector`), or a single Linear (`linear`, LLaVA-1's
 * `mm_projector`; stored as `linear_1`).
 */
export class LlavaMultiModalProjector extends Module {
  readonly linear1: Linear;
  /** Undefined for the `linear` projector. */
  readonly linear2: Linear | undefined;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(
    inFeatures: number,
    outFeatures: number,
    hiddenAct: string,
    bias: boolean,
    seed: number,
    type: LlavaProjectorType = "mlp2x_gelu",
  ) {
    super();
    if (!LLAVA_PROJECTOR_TYPES.includes(type))
      throw new Error(`LLaVA: projectorType must be one of ${LLAVA_PROJECTOR_TYPES.join(", ")}, got ${JSON.stringify(type)}`);
    const random = new Random(seed);
    this.act = activation(hiddenAct);
    this.linear1 = this.module("linear_1", new Linear({ inFeatures, outFeatures, bias, seed: random.nextSeed() }));
    const secondSeed = random.nextSeed(); // drawn either way: the first layer starts the same in both designs
    this.linear2 =
      type === "linear"
        ? undefined
        : this.module("linear_2", new Linear({ inFeatures: outFeatures, outFeatures, bias, seed: secondSeed }));
  }

  /** x: [..., Dvision·layers] → [..., Dtext] */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => (this.linear2 ? this.linear2.apply(this.act(this.linear1.apply(x))) : this.linear1.apply(x)));
  }
}

/**
 * Each patch's window × window neighbourhood side by side (an "unfold" / im2col of the patch grid, zero padding at the
 * edges): the input of a window × window convolution. features: [Bimg, N, D] with N = g·g row-major →
 * [Bimg, N, window²·D], the neighbours in row-major order (the patch itself in the middle). Window 1 returns the features.
 */
export function patchNeighbourhoods(features: tf.Tensor, window: number): tf.Tensor {
  if (window === 1) return features;
  const [B, N, D] = features.shape;
  const grid = Math.round(Math.sqrt(N));
  if (features.rank !== 3 || grid * grid !== N)
    throw new Error(`patchNeighbourhoods: features must be [Bimg, g·g, D] (a square patch grid), got [${features.shape}]`);
  if (!Number.isInteger(window) || window < 1 || window % 2 === 0)
    throw new Error(`patchNeighbourhoods: window must be an odd integer ≥ 1, got ${JSON.stringify(window)}`);
  const half = (window - 1) / 2;
  return tf.tidy(() => {
    const padded = features.reshape([B, grid, grid, D]).pad([
      [0, 0],
      [half, half],
      [half, half],
      [0, 0],
    ]); // [Bimg, g + w − 1, g + w − 1, D]: zeros around the grid
    const shifted: tf.Tensor[] = [];
    for (let dy = 0; dy < window; dy++)
      for (let dx = 0; dx < window; dx++) shifted.push(padded.slice([0, dy, dx, 0], [B, grid, grid, D])); // neighbour (dy − h, dx − h) of every patch
    return tf.concat(shifted, 3).reshape([B, N, window * window * D]); // [Bimg, N, w²·D]
  });
}

/**
 * Average pooling of each image's square token grid (LLaVA-OneVision's `get_2dPool`, `mm_spatial_pool_mode`
 * "average"): windows of stride × stride tokens, stride apart, are averaged. features: [Bimg, N, D] with
 * N = g·g in row-major order → [Bimg, (g/stride)², D]. Stride 1 returns the features unchanged (a copy-free
 * identity inside the caller's tidy).
 */
export function poolImageTokens(features: tf.Tensor, stride: number): tf.Tensor {
  if (stride === 1) return features;
  const [B, N, D] = features.shape;
  const grid = Math.round(Math.sqrt(N));
  if (features.rank !== 3 || grid * grid !== N || grid % stride !== 0)
    throw new Error(
      `poolImageTokens: features must be [Bimg, g·g, D] with g divisible by the stride ${stride}, got [${features.shape}]`,
    );
  const pooled = grid / stride;
  return tf.tidy(() =>
    features
      .reshape([B, pooled, stride, pooled, stride, D]) // [Bimg, g, g, D] with each side split into (g/s, s)
      .mean([2, 4]) // [Bimg, g/s, g/s, D]: the mean of each s×s window
      .reshape([B, pooled * pooled, D]),
  ); // [Bimg, (g/s)², D], row-major as the patches
}

/** What {@link LlavaForConditionalGeneration.forward} returns. */
export interface LlavaOutput {
  /** [B, T, V] */
  logits: tf.Tensor;
}

/** Inputs of {@link LlavaForConditionalGeneration.forward}. */
export interface LlavaInputs {
  /** [B, T] int32 with Nimg placeholders per image. */
  inputIds: tf.Tensor;
  /** [Bimg, C, S, S] normalised pixels, or none for text only. */
  pixelValues?: tf.Tensor;
  /**
   * [Bimg, Nimg, Dvision·layers]: the frozen tower's selected features
   * ({@link LlavaForConditionalGeneration.visionFeatures}), computed once and
   * reused in training; give these or `pixelValues`, not both.
   */
  visionFeatures?: tf.Tensor;
  /** [B, T] 1 real, 0 padding. */
  attentionMask?: tf.Tensor;
  /** [B, T] int32 rotary positions (forward only). Default 0 … T − 1. */
  positionIds?: tf.Tensor;
  /** [B, T] int32, forward only: conversations packed after a shared prefix (`LlamaInputs.branchIds`). Default none. */
  branchIds?: tf.Tensor;
  /**
   * Images per text row F (multi-image prompts): the images are [B·F, …], row b's frames at
   * b·F … b·F + F − 1, and every row must hold F·Nimg placeholders (checked per row). Default
   * unset: only the batch's total is checked, and frame embeddings count F = images / B.
   */
  framesPerRow?: number;
}

export class LlavaForConditionalGeneration extends Module {
  readonly visionTower: CLIPVisionTransformer;
  readonly projector: LlavaMultiModalProjector;
  readonly languageModel: LlamaForCausalLM;
  /** Learned frame-index embeddings [F, Dtext] (config `frameEmbeddings`); undefined when off. */
  readonly frameEmbedding: Embedding | undefined;
  readonly config: ResolvedLlavaConfig;

  constructor(options: LlavaConfig) {
    super();
    const config = (this.config = resolveLlavaConfig(options));
    const random = new Random(config.seed);
    this.visionTower = this.module("vision_tower", new CLIPVisionTransformer({ ...config.vision, seed: random.nextSeed() }));
    const inFeatures = config.vision.hiddenSize * config.visionFeatureLayers.length * config.projectorWindow ** 2;
    this.projector = this.module(
      "multi_modal_projector",
      new LlavaMultiModalProjector(
        inFeatures,
        config.text.hiddenSize,
        config.projectorHiddenAct,
        config.projectorBias,
        random.nextSeed(),
        config.projectorType,
      ),
    );
    this.languageModel = this.module("language_model", new LlamaForCausalLM({ ...config.text, seed: random.nextSeed() }));
    // Zero-initialised (no seed drawn from `random`: the other modules start as without it).
    this.frameEmbedding = config.frameEmbeddings
      ? this.module(
          "frame_embeddings",
          new Embedding({ numEmbeddings: config.frameEmbeddings, embeddingDim: config.text.hiddenSize, seed: 0, initStd: 0 }),
        )
      : undefined;
  }

  /** Feature vectors each image contributes (and placeholders it needs): the patches (+ class token), pooled by `imagePoolStride`. */
  get imageTokensPerImage(): number {
    const patches = (this.config.vision.imageSize / this.config.vision.patchSize) ** 2;
    if (this.config.visionFeatureSelectStrategy === "full") return patches + 1; // pooling needs "default" (checked once)
    return patches / this.config.imagePoolStride ** 2;
  }

  /** pixels: [Bimg, C, S, S] → projected (and pooled) image features [Bimg, Nimg, Dtext] */
  imageFeatures(pixels: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.projectFeatures(this.visionFeatures(pixels)));
  }

  /**
   * The projector, then the image-token pooling when on. visionFeatures: [Bimg, N, Dvision·layers] →
   * [Bimg, Nimg, Dtext] with Nimg = N / stride² ({@link imageTokensPerImage}).
   */
  projectFeatures(visionFeatures: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      poolImageTokens(
        this.projector.apply(patchNeighbourhoods(visionFeatures, this.config.projectorWindow)),
        this.config.imagePoolStride,
      ),
    );
  }

  /**
   * The image tower's selected features before the projector (HF: the first
   * half of `get_image_features`). The tower is frozen in both LLaVA stages,
   * so these can be computed once per image and reused.
   * pixels: [Bimg, C, S, S] → [Bimg, Nimg, Dvision·layers]
   */
  visionFeatures(pixels: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const { hiddenStates } = this.visionTower.forward(pixels); // numLayers + 1 of [Bimg, 1 + N, Dv]
      const selected = this.config.visionFeatureLayers.map((layer) => {
        const index = layer < 0 ? hiddenStates.length + layer : layer;
        if (index < 0 || index >= hiddenStates.length)
          throw new Error(`LLaVA: vision_feature_layer ${layer} is out of range for ${hiddenStates.length} hidden states`);
        const state = hiddenStates[index];
        const [B, tokens, Dv] = state.shape;
        // `default` drops the class token: [Bimg, 1 + N, Dv] → [Bimg, N, Dv]
        return this.config.visionFeatureSelectStrategy === "default" ? state.slice([0, 1, 0], [B, tokens - 1, Dv]) : state;
      });
      return selected.length === 1 ? selected[0] : tf.concat(selected, -1); // [Bimg, Nimg, Dv·layers]
    });
  }

  /**
   * The language model's input: token embeddings with image features in the placeholders. → [B, T, Dtext]
   * @param visionFeatures the tower's features ({@link visionFeatures}) instead of pixels
   * @param framesPerRow images per row F, for the frame embeddings (see {@link LlavaInputs.framesPerRow})
   */
  inputEmbeddings(inputIds: tf.Tensor, pixelValues?: tf.Tensor, visionFeatures?: tf.Tensor, framesPerRow?: number): tf.Tensor {
    if (pixelValues && visionFeatures) throw new Error("LLaVA: give pixelValues or visionFeatures, not both");
    const width = this.config.vision.hiddenSize * this.config.visionFeatureLayers.length;
    if (visionFeatures && (visionFeatures.rank !== 3 || visionFeatures.shape[2] !== width)) {
      throw new Error(
        `LLaVA: visionFeatures must be [Bimg, Nimg, ${width}] (the tower's selected layers), got [${visionFeatures.shape}]`,
      );
    }
    return tf.tidy(() => {
      let features = pixelValues ? this.imageFeatures(pixelValues) : visionFeatures && this.projectFeatures(visionFeatures); // [Bimg, Nimg, Dtext]
      if (features && this.frameEmbedding)
        features = features.add(this.frameVectors(features.shape[0], inputIds.shape[0], framesPerRow));
      return embedWithImageFeatures(this.languageModel.model.embedTokens, inputIds, features, this.config.imageTokenId);
    });
  }

  /**
   * The frame embedding of each image, images in row-major order (row b's frame f is image b·F + f).
   * → [Bimg, 1, Dtext], to add to the features [Bimg, Nimg, Dtext]
   */
  private frameVectors(images: number, rows: number, framesPerRow: number | undefined): tf.Tensor {
    const F = framesPerRow ?? images / rows;
    if (!Number.isInteger(F) || F * rows !== images)
      throw new Error(`LLaVA: ${images} image(s) cannot be split evenly over ${rows} row(s); give framesPerRow`);
    const available = this.frameEmbedding!.numEmbeddings;
    if (F > available)
      throw new Error(`LLaVA: ${F} frames per row but the model has ${available} frame embeddings (config frameEmbeddings)`);
    return tf.tidy(() => {
      const frameIndex = tf.tensor1d(
        Array.from({ length: images }, (_, i) => i % F),
        "int32",
      ); // [Bimg]
      return this.frameEmbedding!.apply(frameIndex).expandDims(1); // [Bimg, D] → [Bimg, 1, D]
    });
  }

  /** With `framesPerRow`: the image count must be B·F (a shape check; the per-row placeholder counts are checked apart). */
  private checkFrameCount(inputs: LlavaInputs): void {
    const F = inputs.framesPerRow;
    if (F === undefined) return;
    if (!Number.isInteger(F) || F < 1)
      throw new Error(`LLaVA: framesPerRow must be a positive integer, got ${JSON.stringify(F)}`);
    const images = (inputs.pixelValues ?? inputs.visionFeatures)?.shape[0] ?? 0;
    const rows = inputs.inputIds.shape[0];
    if (images !== rows * F)
      throw new Error(`LLaVA: ${rows} row(s) × ${F} frames per row need ${rows * F} images, got ${images} (images are [B·F, …])`);
  }

  /** @returns logits [B, T, V] */
  forward(inputs: LlavaInputs): LlavaOutput {
    this.checkFrameCount(inputs);
    if (inputs.framesPerRow !== undefined)
      assertImageTokensPerRow(
        inputs.inputIds,
        this.config.imageTokenId,
        this.imageTokensPerImage,
        inputs.framesPerRow,
        "LLaVA forward",
      );
    assertImageTokenCount(
      inputs.inputIds,
      this.config.imageTokenId,
      this.imageTokensPerImage,
      (inputs.pixelValues ?? inputs.visionFeatures)?.shape[0] ?? 0,
      "LLaVA forward",
    );
    return tf.tidy(() => {
      const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, inputs.pixelValues, inputs.visionFeatures, inputs.framesPerRow);
      const { attentionMask, positionIds, branchIds } = inputs;
      return { logits: this.languageModel.forward({ inputsEmbeds, attentionMask, positionIds, branchIds }).logits };
    });
  }

  /** Rejects inputs whose placeholder count does not match the images (async: reads the ids). */
  async checkInputs(inputs: LlavaInputs): Promise<void> {
    checkPromptNotEmpty(inputs.inputIds, "LLaVA");
    await checkTokenIds(inputs.inputIds, this.config.text.vocabSize, "LLaVA", [this.config.imageTokenId]);
    this.checkFrameCount(inputs);
    if (inputs.framesPerRow !== undefined) {
      const counts = await countImageTokens(inputs.inputIds, this.config.imageTokenId);
      const expected = inputs.framesPerRow * this.imageTokensPerImage;
      const row = counts.findIndex((count) => count !== expected);
      if (row >= 0) {
        throw new Error(
          `LLaVA: row ${row} holds ${counts[row]} image token(s) (${counts[row] / this.imageTokensPerImage} <image> placeholder(s) of ${this.imageTokensPerImage} tokens) but ${inputs.framesPerRow} frames per row need ${expected}`,
        );
      }
    }
    const images = (inputs.pixelValues ?? inputs.visionFeatures)?.shape[0] ?? 0;
    await checkImageTokens(inputs.inputIds, this.config.imageTokenId, this.imageTokensPerImage, images);
  }

  /**
   * Generates from an image-and-text prompt (one image or F frames per row); returns the new tokens of each row.
   * The repetition penalty and n-gram ban count the prompt's text ids, as transformers' LLaVA does.
   */
  async generate(inputs: LlavaInputs, options: GenerateOptions = {}): Promise<number[][]> {
    await this.checkInputs(inputs);
    const promptIds = options.promptIds ?? ((await inputs.inputIds.array()) as number[][]);
    const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, inputs.pixelValues, inputs.visionFeatures, inputs.framesPerRow);
    try {
      return await this.languageModel.generate(undefined, {
        ...options,
        inputsEmbeds,
        attentionMask: inputs.attentionMask,
        promptIds,
      });
    } finally {
      inputsEmbeds.dispose();
    }
  }
}

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
import { assertImageTokenCount, checkPromptNotEmpty, checkTokenIds } from "./input_validation";
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { activation } from "../nn/activations";
import { CLIPVisionTransformer, resolveCLIPVisionConfig, type CLIPVisionConfig, type ResolvedCLIPVisionConfig } from "./clip";
import { LlamaForCausalLM, resolveLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig, type GenerateOptions } from "./llama";
import { embedWithImageFeatures, checkImageTokens } from "./merge_image_tokens";
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
    seed: config.seed ?? 0,
  };
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
}

export class LlavaForConditionalGeneration extends Module {
  readonly visionTower: CLIPVisionTransformer;
  readonly projector: LlavaMultiModalProjector;
  readonly languageModel: LlamaForCausalLM;
  readonly config: ResolvedLlavaConfig;

  constructor(options: LlavaConfig) {
    super();
    const config = (this.config = resolveLlavaConfig(options));
    const random = new Random(config.seed);
    this.visionTower = this.module("vision_tower", new CLIPVisionTransformer({ ...config.vision, seed: random.nextSeed() }));
    const inFeatures = config.vision.hiddenSize * config.visionFeatureLayers.length;
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
  }

  /** Feature vectors each image contributes (and placeholders it needs). */
  get imageTokensPerImage(): number {
    const patches = (this.config.vision.imageSize / this.config.vision.patchSize) ** 2;
    return this.config.visionFeatureSelectStrategy === "default" ? patches : patches + 1;
  }

  /** pixels: [Bimg, C, S, S] → projected image features [Bimg, Nimg, Dtext] */
  imageFeatures(pixels: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.projector.apply(this.visionFeatures(pixels)));
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
   */
  inputEmbeddings(inputIds: tf.Tensor, pixelValues?: tf.Tensor, visionFeatures?: tf.Tensor): tf.Tensor {
    if (pixelValues && visionFeatures) throw new Error("LLaVA: give pixelValues or visionFeatures, not both");
    const width = this.projector.linear1.inFeatures;
    if (visionFeatures && (visionFeatures.rank !== 3 || visionFeatures.shape[2] !== width)) {
      throw new Error(
        `LLaVA: visionFeatures must be [Bimg, Nimg, ${width}] (the tower's selected layers), got [${visionFeatures.shape}]`,
      );
    }
    return tf.tidy(() => {
      const features = pixelValues ? this.imageFeatures(pixelValues) : visionFeatures && this.projector.apply(visionFeatures); // [Bimg, Nimg, Dtext]
      return embedWithImageFeatures(this.languageModel.model.embedTokens, inputIds, features, this.config.imageTokenId);
    });
  }

  /** @returns logits [B, T, V] */
  forward(inputs: LlavaInputs): LlavaOutput {
    assertImageTokenCount(
      inputs.inputIds,
      this.config.imageTokenId,
      this.imageTokensPerImage,
      (inputs.pixelValues ?? inputs.visionFeatures)?.shape[0] ?? 0,
      "LLaVA forward",
    );
    return tf.tidy(() => {
      const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, inputs.pixelValues, inputs.visionFeatures);
      return { logits: this.languageModel.forward({ inputsEmbeds, attentionMask: inputs.attentionMask }).logits };
    });
  }

  /** Rejects inputs whose placeholder count does not match the images (async: reads the ids). */
  async checkInputs(inputs: LlavaInputs): Promise<void> {
    checkPromptNotEmpty(inputs.inputIds, "LLaVA");
    await checkTokenIds(inputs.inputIds, this.config.text.vocabSize, "LLaVA", [this.config.imageTokenId]);
    const images = (inputs.pixelValues ?? inputs.visionFeatures)?.shape[0] ?? 0;
    await checkImageTokens(inputs.inputIds, this.config.imageTokenId, this.imageTokensPerImage, images);
  }

  /** Generates from an image-and-text prompt; returns the new tokens of each row. */
  async generate(inputs: LlavaInputs, options: GenerateOptions = {}): Promise<number[][]> {
    await this.checkInputs(inputs);
    const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, inputs.pixelValues, inputs.visionFeatures);
    try {
      return await this.languageModel.generate(undefined, { ...options, inputsEmbeds, attentionMask: inputs.attentionMask });
    } finally {
      inputsEmbeds.dispose();
    }
  }
}

/**
 * LLaVA: a CLIP image tower, a 2-layer MLP projector and a Llama language
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
import { CLIPVisionTransformer, type CLIPVisionConfig } from "./clip";
import { LlamaForCausalLM, type LlamaConfig, type GenerateOptions } from "./llama";
import { embedWithImageFeatures, checkImageTokens } from "./merge_image_tokens";
import { Random } from "../util/random";

/** `LlavaConfig`. */
export interface LlavaConfig {
  readonly vision: CLIPVisionConfig;
  readonly text: LlamaConfig;
  /** Id of the `<image>` placeholder. Default 32000. */
  readonly imageTokenId: number;
  /**
   * Hidden state(s) of the image tower to use: an index into its hidden states
   * (numLayers + 1 of them; negative counts from the end). Several are
   * concatenated along the width. Default [-2] (the penultimate layer).
   */
  readonly visionFeatureLayers: readonly number[];
  /** `default` drops the class token, `full` keeps it. Default `default`. */
  readonly visionFeatureSelectStrategy: "default" | "full";
  /** Projector activation. Default `gelu`. */
  readonly projectorHiddenAct?: string;
  /** Biases in the projector. Default true. */
  readonly projectorBias?: boolean;
  readonly seed?: number;
}

/** Linear → activation → Linear from the image tower's width to the LLM's. HF: `LlavaMultiModalProjector`. */
export class LlavaMultiModalProjector extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(inFeatures: number, outFeatures: number, hiddenAct: string, bias: boolean, seed: number) {
    super();
    const random = new Random(seed);
    this.act = activation(hiddenAct);
    this.linear1 = this.module("linear_1", new Linear({ inFeatures, outFeatures, bias, seed: random.nextSeed() }));
    this.linear2 = this.module("linear_2", new Linear({ inFeatures: outFeatures, outFeatures, bias, seed: random.nextSeed() }));
  }

  /** x: [..., Dvision·layers] → [..., Dtext] */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.linear2.apply(this.act(this.linear1.apply(x))));
  }
}

/** Inputs of {@link LlavaForConditionalGeneration.forward}. */
export interface LlavaInputs {
  /** [B, T] int32 with Nimg placeholders per image. */
  inputIds: tf.Tensor;
  /** [Bimg, C, S, S] normalised pixels, or none for text only. */
  pixelValues?: tf.Tensor;
  /** [B, T] 1 real, 0 padding. */
  attentionMask?: tf.Tensor;
}

export class LlavaForConditionalGeneration extends Module {
  readonly visionTower: CLIPVisionTransformer;
  readonly projector: LlavaMultiModalProjector;
  readonly languageModel: LlamaForCausalLM;

  constructor(readonly config: LlavaConfig) {
    super();
    const random = new Random(config.seed ?? 0);
    if (!config.visionFeatureLayers.length) throw new Error("LLaVA: visionFeatureLayers is empty");
    this.visionTower = this.module("vision_tower", new CLIPVisionTransformer({ ...config.vision, seed: random.nextSeed() }));
    const inFeatures = config.vision.hiddenSize * config.visionFeatureLayers.length;
    this.projector = this.module(
      "multi_modal_projector",
      new LlavaMultiModalProjector(inFeatures, config.text.hiddenSize, config.projectorHiddenAct ?? "gelu", config.projectorBias ?? true, random.nextSeed()),
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
    return tf.tidy(() => {
      const { hiddenStates } = this.visionTower.apply(pixels); // numLayers + 1 of [Bimg, 1 + N, Dv]
      const selected = this.config.visionFeatureLayers.map((layer) => {
        const index = layer < 0 ? hiddenStates.length + layer : layer;
        if (index < 0 || index >= hiddenStates.length) throw new Error(`LLaVA: vision_feature_layer ${layer} is out of range for ${hiddenStates.length} hidden states`);
        const state = hiddenStates[index];
        const [B, tokens, Dv] = state.shape;
        // `default` drops the class token: [Bimg, 1 + N, Dv] → [Bimg, N, Dv]
        return this.config.visionFeatureSelectStrategy === "default" ? state.slice([0, 1, 0], [B, tokens - 1, Dv]) : state;
      });
      const features = selected.length === 1 ? selected[0] : tf.concat(selected, -1); // [Bimg, Nimg, Dv·layers]
      return this.projector.apply(features); // [Bimg, Nimg, Dtext]
    });
  }

  /** The language model's input: token embeddings with image features in the placeholders. → [B, T, Dtext] */
  inputEmbeddings(inputIds: tf.Tensor, pixelValues?: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      embedWithImageFeatures(this.languageModel.model.embedTokens, inputIds, pixelValues && this.imageFeatures(pixelValues), this.config.imageTokenId),
    );
  }

  /** @returns logits [B, T, V] */
  forward(inputs: LlavaInputs): { logits: tf.Tensor } {
    assertImageTokenCount(inputs.inputIds, this.config.imageTokenId, this.imageTokensPerImage, inputs.pixelValues ? (inputs.pixelValues.shape[0] as number) : 0, "LLaVA forward");
    return tf.tidy(() => {
      const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, inputs.pixelValues);
      return { logits: this.languageModel.forward({ inputsEmbeds, attentionMask: inputs.attentionMask }).logits };
    });
  }

  /** Rejects inputs whose placeholder count does not match the images (async: reads the ids). */
  async checkInputs(inputs: LlavaInputs): Promise<void> {
    checkPromptNotEmpty(inputs.inputIds, "LLaVA");
    await checkTokenIds(inputs.inputIds, this.config.text.vocabSize, "LLaVA", [this.config.imageTokenId]);
    const images = inputs.pixelValues ? (inputs.pixelValues.shape[0] as number) : 0;
    await checkImageTokens(inputs.inputIds, this.config.imageTokenId, this.imageTokensPerImage, images);
  }

  /** Generates from an image-and-text prompt; returns the new tokens of each row. */
  async generate(inputs: LlavaInputs, options: GenerateOptions = {}): Promise<number[][]> {
    await this.checkInputs(inputs);
    const inputsEmbeds = this.inputEmbeddings(inputs.inputIds, inputs.pixelValues);
    try {
      return await this.languageModel.generate(undefined, { ...options, inputsEmbeds, attentionMask: inputs.attentionMask });
    } finally {
      inputsEmbeds.dispose();
    }
  }
}

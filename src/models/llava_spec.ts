/**
 * LLaVA's place in the model registry: `config.json` ↔ {@link LlavaConfig},
 * the checkpoint layouts transformers has used, and its parity run against
 * transformers' `LlavaForConditionalGeneration`.
 *
 * Reference: transformers `models/llava/configuration_llava.py` (both
 * `image_token_id` and the older `image_token_index`).
 */
import { hfOptionalBoolean, hfOptionalInteger, hfOptionalText, subConfig, type HFConfig } from "../io/hf_config";
import {
  LlavaForConditionalGeneration,
  resolveLlavaConfig,
  type LlavaConfig,
  type LlavaProjectorType,
  type ResolvedLlavaConfig,
} from "./llava";
import { clipVisionConfigFromHF, clipVisionConfigToHF } from "./clip_spec";
import { llamaConfigFromHF, llamaConfigToHF } from "./llama_spec";
import type { KeyAliases, ModelSpec, StoredTensors } from "./model_spec";

/** `config.json` → {@link LlavaConfig} (CLIP vision towers and Llama-style language models). */
export function llavaConfigFromHF(config: HFConfig): ResolvedLlavaConfig {
  const layer = config.json.vision_feature_layer;
  const layers = layer === undefined || layer === null ? undefined : Array.isArray(layer) ? layer : [layer];
  if (layers && !layers.every(Number.isInteger))
    throw new Error(
      `config: ${config.where}: "vision_feature_layer" must be an integer or a list of integers, got ${JSON.stringify(layer)}`,
    );
  const strategy = hfOptionalText(config, "vision_feature_select_strategy");
  if (strategy !== undefined && strategy !== "default" && strategy !== "full") {
    throw new Error(
      `config: ${config.where}: "vision_feature_select_strategy" must be "default" or "full", got ${JSON.stringify(strategy)}`,
    );
  }
  const vision = subConfig(config, "vision_config");
  const visionType = hfOptionalText(vision, "model_type") ?? "clip_vision_model";
  if (visionType !== "clip_vision_model")
    throw new Error(
      `config: ${vision.where}: only CLIP vision towers are supported, got model_type ${JSON.stringify(visionType)}`,
    );
  return resolveLlavaConfig({
    vision: clipVisionConfigFromHF(vision),
    text: llamaConfigFromHF(subConfig(config, "text_config")),
    imageTokenId: hfOptionalInteger(config, config.json.image_token_id !== undefined ? "image_token_id" : "image_token_index"),
    visionFeatureLayers: layers,
    visionFeatureSelectStrategy: strategy,
    projectorHiddenAct: hfOptionalText(config, "projector_hidden_act"),
    projectorBias: hfOptionalBoolean(config, "multimodal_projector_bias"),
    projectorType: hfOptionalText(config, "mm_projector_type") as LlavaProjectorType | undefined,
    frameEmbeddings: hfOptionalInteger(config, "frame_embeddings"),
    imagePoolStride: hfOptionalInteger(config, "mllm_labs_image_pool_stride"),
    projectorWindow: hfOptionalInteger(config, "mllm_labs_projector_window"),
  });
}

/** {@link LlavaConfig} → a transformers `LlavaConfig` document. */
export function llavaConfigToHF(config: LlavaConfig): Record<string, unknown> {
  const resolved = resolveLlavaConfig(config);
  const { architectures: _architectures, torch_dtype: _dtype, ...text } = llamaConfigToHF(resolved.text);
  return {
    architectures: ["LlavaForConditionalGeneration"],
    model_type: "llava",
    vision_config: clipVisionConfigToHF(resolved.vision),
    text_config: text,
    image_token_id: resolved.imageTokenId,
    vision_feature_layer:
      resolved.visionFeatureLayers.length === 1 ? resolved.visionFeatureLayers[0] : resolved.visionFeatureLayers,
    vision_feature_select_strategy: resolved.visionFeatureSelectStrategy,
    projector_hidden_act: resolved.projectorHiddenAct,
    multimodal_projector_bias: resolved.projectorBias,
    // Original LLaVA's key (transformers ignores it): written only for LLaVA-1's single Linear.
    ...(resolved.projectorType === "linear" ? { mm_projector_type: resolved.projectorType } : {}),
    // Ours (lab 05's frame-index embeddings): written only when on, so other configs stay transformers'.
    ...(resolved.frameEmbeddings > 0 ? { frame_embeddings: resolved.frameEmbeddings } : {}),
    // Ours (lab 05's image-token pooling): written only when on; transformers ignores the key (and would not pool).
    ...(resolved.imagePoolStride > 1 ? { mllm_labs_image_pool_stride: resolved.imagePoolStride } : {}),
    ...(resolved.projectorWindow > 1 ? { mllm_labs_projector_window: resolved.projectorWindow } : {}),
    torch_dtype: "float32",
  };
}

/** The layout transformers saves, the current in-memory one, and the older Hub one. */
export const LLAVA_KEY_ALIASES: KeyAliases = [
  ["vision_tower.", "vision_tower.vision_model."],
  ["vision_tower.", "model.vision_tower."],
  ["vision_tower.", "model.vision_tower.vision_model."],
  ["multi_modal_projector.", "model.multi_modal_projector."],
  ["language_model.model.", "model.language_model."],
  ["language_model.lm_head.", "lm_head."],
];

export const LLAVA_SPEC: ModelSpec<ResolvedLlavaConfig, LlavaForConditionalGeneration> = {
  modelType: "llava",
  fromHF: llavaConfigFromHF,
  toHF: llavaConfigToHF,
  keyAliases: LLAVA_KEY_ALIASES,
  create: (config) => new LlavaForConditionalGeneration(config),
  /** Parity: the logits of an image-and-text prompt. */
  async parity(model: LlavaForConditionalGeneration, stored: StoredTensors) {
    const inputs = { inputIds: stored.get("input_ids"), pixelValues: stored.get("pixel_values") };
    await model.checkInputs(inputs);
    return { tensors: { logits: model.forward(inputs).logits } };
  },
};

/**
 * CLIP's place in the model registry: `config.json` ↔ {@link CLIPConfig}, the
 * stand-alone vision tower's key layout, and its parity run against
 * transformers' `CLIPModel`.
 *
 * Reference: transformers `models/clip/configuration_clip.py`.
 */
import * as tf from "@tensorflow/tfjs";
import { hfOptionalInteger, hfOptionalNumber, hfOptionalText, subConfig, type HFConfig } from "../io/hf_config";
import {
  CLIPModel,
  resolveCLIPConfig,
  resolveCLIPTextConfig,
  resolveCLIPVisionConfig,
  type CLIPConfig,
  type ResolvedCLIPConfig,
  type ResolvedCLIPTextConfig,
  type ResolvedCLIPVisionConfig,
} from "./clip";
import type { KeyAliases, ModelSpec, ParityOutputs, StoredTensors } from "./model_spec";

/** `CLIPVisionConfig` (also the vision config inside LLaVA). */
export function clipVisionConfigFromHF(config: HFConfig): ResolvedCLIPVisionConfig {
  return resolveCLIPVisionConfig({
    hiddenSize: hfOptionalInteger(config, "hidden_size"),
    intermediateSize: hfOptionalInteger(config, "intermediate_size"),
    numLayers: hfOptionalInteger(config, "num_hidden_layers"),
    numHeads: hfOptionalInteger(config, "num_attention_heads"),
    numChannels: hfOptionalInteger(config, "num_channels"),
    imageSize: hfOptionalInteger(config, "image_size"),
    patchSize: hfOptionalInteger(config, "patch_size"),
    hiddenAct: hfOptionalText(config, "hidden_act"),
    layerNormEps: hfOptionalNumber(config, "layer_norm_eps"),
  });
}

/** `CLIPTextConfig`. */
export function clipTextConfigFromHF(config: HFConfig): ResolvedCLIPTextConfig {
  return resolveCLIPTextConfig({
    vocabSize: hfOptionalInteger(config, "vocab_size"),
    hiddenSize: hfOptionalInteger(config, "hidden_size"),
    intermediateSize: hfOptionalInteger(config, "intermediate_size"),
    numLayers: hfOptionalInteger(config, "num_hidden_layers"),
    numHeads: hfOptionalInteger(config, "num_attention_heads"),
    maxPositionEmbeddings: hfOptionalInteger(config, "max_position_embeddings"),
    hiddenAct: hfOptionalText(config, "hidden_act"),
    layerNormEps: hfOptionalNumber(config, "layer_norm_eps"),
    eosTokenId: hfOptionalInteger(config, "eos_token_id"),
  });
}

/** `CLIPConfig` (text + vision + projections). */
export function clipConfigFromHF(config: HFConfig): ResolvedCLIPConfig {
  return resolveCLIPConfig({
    text: clipTextConfigFromHF(subConfig(config, "text_config")),
    vision: clipVisionConfigFromHF(subConfig(config, "vision_config")),
    projectionDim: hfOptionalInteger(config, "projection_dim"),
    logitScaleInit: hfOptionalNumber(config, "logit_scale_init_value"),
  });
}

/** A vision config → its `CLIPVisionConfig` document (without `projection_dim`, which belongs to the whole model). */
export function clipVisionConfigToHF(config: ResolvedCLIPVisionConfig): Record<string, unknown> {
  return {
    model_type: "clip_vision_model",
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_channels: config.numChannels,
    image_size: config.imageSize,
    patch_size: config.patchSize,
    hidden_act: config.hiddenAct,
    layer_norm_eps: config.layerNormEps,
  };
}

/** {@link CLIPConfig} → a transformers `CLIPConfig` document. */
export function clipConfigToHF(config: CLIPConfig): Record<string, unknown> {
  const { text, vision, projectionDim, logitScaleInit } = resolveCLIPConfig(config);
  return {
    architectures: ["CLIPModel"],
    model_type: "clip",
    projection_dim: projectionDim,
    logit_scale_init_value: logitScaleInit,
    text_config: {
      model_type: "clip_text_model",
      vocab_size: text.vocabSize,
      hidden_size: text.hiddenSize,
      intermediate_size: text.intermediateSize,
      num_hidden_layers: text.numLayers,
      num_attention_heads: text.numHeads,
      max_position_embeddings: text.maxPositionEmbeddings,
      hidden_act: text.hiddenAct,
      layer_norm_eps: text.layerNormEps,
      eos_token_id: text.eosTokenId,
      projection_dim: projectionDim,
    },
    vision_config: { ...clipVisionConfigToHF(vision), projection_dim: projectionDim },
    torch_dtype: "float32",
  };
}

/** A stand-alone CLIP vision tower (`CLIPVisionModel`) stores its weights under `vision_model.`. */
export const CLIP_VISION_KEY_ALIASES: KeyAliases = [["", "vision_model."]];

/** Parity: both towers' outputs, the embeddings and the image-text logits. */
async function clipParity(model: CLIPModel, stored: StoredTensors): Promise<ParityOutputs> {
  const output = model.forward({ pixelValues: stored.get("pixel_values"), inputIds: stored.get("input_ids") });
  const tensors: Record<string, tf.Tensor> = {
    logits_per_image: output.logitsPerImage,
    logits_per_text: output.logitsPerText,
    image_embeds: output.imageEmbeds,
    text_embeds: output.textEmbeds,
    vision_last_hidden_state: output.vision.lastHiddenState,
    vision_pooler_output: output.vision.poolerOutput,
    text_last_hidden_state: output.text.lastHiddenState,
    text_pooler_output: output.text.poolerOutput,
  };
  output.vision.hiddenStates.forEach((state, index) => (tensors[`vision_hidden_states.${index}`] = state));
  // transformers 5 reports CLIPModel's vision pooler output after the visual projection (width P, unnormalised).
  const { projectionDim } = model.config;
  if (
    stored.has("vision_pooler_output") &&
    stored.shape("vision_pooler_output")[1] === projectionDim &&
    projectionDim !== model.config.vision.hiddenSize
  ) {
    tensors.vision_pooler_output = model.visualProjection.apply(output.vision.poolerOutput);
    output.vision.poolerOutput.dispose();
  }
  return { tensors };
}

export const CLIP_SPEC: ModelSpec<ResolvedCLIPConfig, CLIPModel> = {
  modelType: "clip",
  fromHF: clipConfigFromHF,
  toHF: clipConfigToHF,
  keyAliases: [],
  create: (config) => new CLIPModel(config),
  parity: clipParity,
};

/**
 * Hugging Face `config.json` → the library's typed configs.
 *
 * Reads the fields transformers reads, with transformers' defaults where a
 * checkpoint omits one, and both the current and the older spellings
 * (`rope_parameters` vs `rope_theta` + `rope_scaling`; `image_token_id` vs
 * `image_token_index`). A missing required field or a value of the wrong type
 * is an error naming the file and the field.
 *
 * Reference: transformers `configuration_utils.py`, `models/<name>/configuration_<name>.py`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { LlamaConfig } from "../models/llama";
import type { RopeConfig } from "../nn/rotary";
import type { CLIPConfig, CLIPTextConfig, CLIPVisionConfig } from "../models/clip";
import type { LlavaConfig } from "../models/llava";
import type { Blip2Config, Blip2QFormerConfig, Blip2VisionConfig } from "../models/blip2";
import type { AudioEncoderConfig } from "../models/audio_encoder";
import { validateConfigValues } from "./checkpoint_validation";

/** A parsed `config.json` and where it came from (for error messages). */
export interface HFConfig {
  readonly json: Record<string, any>;
  readonly where: string;
}

/** Reads `<dir>/config.json` (or a path to a JSON file). */
export function readHFConfig(location: string): HFConfig {
  const file = location.endsWith(".json") ? location : path.join(location, "config.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`config: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`config: ${file} is not valid JSON (${(error as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new Error(`config: ${file} is not a JSON object`);
  validateConfigValues({ json: json as Record<string, any>, where: file });
  return { json: json as Record<string, any>, where: file };
}

/** A nested config (`text_config`, `vision_config`, …), named in errors by its path. */
export function subConfig(config: HFConfig, key: string): HFConfig {
  const value = config.json[key];
  if (!value || typeof value !== "object") throw new Error(`config: ${config.where} has no "${key}" object`);
  return { json: value, where: `${config.where} → ${key}` };
}

function integer(config: HFConfig, key: string, fallback?: number): number {
  const value = config.json[key] ?? fallback;
  if (!Number.isInteger(value)) throw new Error(`config: ${config.where}: "${key}" must be an integer, got ${JSON.stringify(config.json[key])}`);
  return value;
}

function number(config: HFConfig, key: string, fallback?: number): number {
  const value = config.json[key] ?? fallback;
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`config: ${config.where}: "${key}" must be a number, got ${JSON.stringify(config.json[key])}`);
  return value;
}

function text(config: HFConfig, key: string, fallback?: string): string {
  const value = config.json[key] ?? fallback;
  if (typeof value !== "string") throw new Error(`config: ${config.where}: "${key}" must be a string, got ${JSON.stringify(config.json[key])}`);
  return value;
}

function ids(value: unknown): number[] | undefined {
  if (value === null || value === undefined) return undefined;
  return Array.isArray(value) ? value.map(Number) : [Number(value)];
}

/** The `model_type` of a config (`llama`, `clip`, `llava`, `blip-2`, …). */
export function modelType(config: HFConfig): string {
  return text(config, "model_type");
}

function rope(config: HFConfig): RopeConfig {
  const parameters = config.json.rope_parameters ?? config.json.rope_scaling ?? {};
  const theta = parameters.rope_theta ?? config.json.rope_theta ?? 10000;
  const type = parameters.rope_type ?? parameters.type ?? "default";
  if (!["default", "linear", "llama3"].includes(type)) throw new Error(`config: ${config.where}: rope type ${JSON.stringify(type)} is not supported (default, linear, llama3)`);
  return {
    theta,
    type,
    factor: parameters.factor,
    lowFreqFactor: parameters.low_freq_factor,
    highFreqFactor: parameters.high_freq_factor,
    originalMaxPositionEmbeddings: parameters.original_max_position_embeddings,
  };
}

/** `LlamaConfig` (also Mistral/Qwen2-style configs without their extras). */
export function llamaConfigFromHF(config: HFConfig): LlamaConfig {
  const heads = integer(config, "num_attention_heads");
  const hidden = integer(config, "hidden_size");
  return {
    vocabSize: integer(config, "vocab_size"),
    hiddenSize: hidden,
    intermediateSize: integer(config, "intermediate_size"),
    numLayers: integer(config, "num_hidden_layers"),
    numHeads: heads,
    numKeyValueHeads: integer(config, "num_key_value_heads", heads),
    headDim: integer(config, "head_dim", hidden / heads),
    rmsNormEps: number(config, "rms_norm_eps", 1e-6),
    rope: rope(config),
    tieWordEmbeddings: Boolean(config.json.tie_word_embeddings ?? false),
    attentionBias: Boolean(config.json.attention_bias ?? false),
    mlpBias: Boolean(config.json.mlp_bias ?? false),
    hiddenAct: text(config, "hidden_act", "silu"),
    maxPositionEmbeddings: integer(config, "max_position_embeddings", 2048),
    eosTokenIds: ids(config.json.eos_token_id),
    padTokenId: config.json.pad_token_id ?? undefined,
  };
}

/** `CLIPVisionConfig` (also the vision config inside LLaVA). */
export function clipVisionConfigFromHF(config: HFConfig): CLIPVisionConfig {
  return {
    hiddenSize: integer(config, "hidden_size", 768),
    intermediateSize: integer(config, "intermediate_size", 3072),
    numLayers: integer(config, "num_hidden_layers", 12),
    numHeads: integer(config, "num_attention_heads", 12),
    numChannels: integer(config, "num_channels", 3),
    imageSize: integer(config, "image_size", 224),
    patchSize: integer(config, "patch_size", 32),
    hiddenAct: text(config, "hidden_act", "quick_gelu"),
    layerNormEps: number(config, "layer_norm_eps", 1e-5),
    projectionDim: integer(config, "projection_dim", 512),
  };
}

/** `CLIPTextConfig`. */
export function clipTextConfigFromHF(config: HFConfig): CLIPTextConfig {
  return {
    vocabSize: integer(config, "vocab_size", 49408),
    hiddenSize: integer(config, "hidden_size", 512),
    intermediateSize: integer(config, "intermediate_size", 2048),
    numLayers: integer(config, "num_hidden_layers", 12),
    numHeads: integer(config, "num_attention_heads", 8),
    maxPositionEmbeddings: integer(config, "max_position_embeddings", 77),
    hiddenAct: text(config, "hidden_act", "quick_gelu"),
    layerNormEps: number(config, "layer_norm_eps", 1e-5),
    eosTokenId: integer(config, "eos_token_id", 2),
    projectionDim: integer(config, "projection_dim", 512),
  };
}

/** `CLIPConfig` (text + vision + projections). */
export function clipConfigFromHF(config: HFConfig): CLIPConfig {
  return {
    text: clipTextConfigFromHF(subConfig(config, "text_config")),
    vision: clipVisionConfigFromHF(subConfig(config, "vision_config")),
    projectionDim: integer(config, "projection_dim", 512),
    logitScaleInit: number(config, "logit_scale_init_value", 2.6592),
  };
}

/** `LlavaConfig`. */
export function llavaConfigFromHF(config: HFConfig): LlavaConfig {
  const layer = config.json.vision_feature_layer ?? -2;
  const layers = Array.isArray(layer) ? layer : [layer];
  if (!layers.every(Number.isInteger)) throw new Error(`config: ${config.where}: "vision_feature_layer" must be an integer or a list of integers, got ${JSON.stringify(layer)}`);
  const strategy = text(config, "vision_feature_select_strategy", "default");
  if (strategy !== "default" && strategy !== "full") throw new Error(`config: ${config.where}: "vision_feature_select_strategy" must be "default" or "full", got ${JSON.stringify(strategy)}`);
  const vision = subConfig(config, "vision_config");
  if (text(vision, "model_type", "clip_vision_model") !== "clip_vision_model") {
    throw new Error(`config: ${vision.where}: only CLIP vision towers are supported, got model_type ${JSON.stringify(vision.json.model_type)}`);
  }
  return {
    vision: clipVisionConfigFromHF(vision),
    text: llamaConfigFromHF(subConfig(config, "text_config")),
    imageTokenId: integer(config, config.json.image_token_id !== undefined ? "image_token_id" : "image_token_index", 32000),
    visionFeatureLayers: layers,
    visionFeatureSelectStrategy: strategy,
    projectorHiddenAct: text(config, "projector_hidden_act", "gelu"),
    projectorBias: Boolean(config.json.multimodal_projector_bias ?? true),
  };
}

/** `Blip2Config` with a Llama-style decoder-only language model. */
export function blip2ConfigFromHF(config: HFConfig): Blip2Config {
  const visionJson = subConfig(config, "vision_config");
  const qformerJson = subConfig(config, "qformer_config");
  const textJson = subConfig(config, "text_config");
  if (text(textJson, "model_type", "llama") !== "llama") {
    throw new Error(`config: ${textJson.where}: only Llama-style language models are supported in BLIP-2 here, got ${JSON.stringify(textJson.json.model_type)} (OPT and Flan-T5 are not implemented)`);
  }
  const vision: Blip2VisionConfig = {
    hiddenSize: integer(visionJson, "hidden_size", 1408),
    intermediateSize: integer(visionJson, "intermediate_size", 6144),
    numLayers: integer(visionJson, "num_hidden_layers", 39),
    numHeads: integer(visionJson, "num_attention_heads", 16),
    imageSize: integer(visionJson, "image_size", 224),
    patchSize: integer(visionJson, "patch_size", 14),
    hiddenAct: text(visionJson, "hidden_act", "gelu"),
    layerNormEps: number(visionJson, "layer_norm_eps", 1e-6),
    qkvBias: Boolean(visionJson.json.qkv_bias ?? true),
  };
  const qformer: Blip2QFormerConfig = {
    hiddenSize: integer(qformerJson, "hidden_size", 768),
    intermediateSize: integer(qformerJson, "intermediate_size", 3072),
    numLayers: integer(qformerJson, "num_hidden_layers", 12),
    numHeads: integer(qformerJson, "num_attention_heads", 12),
    hiddenAct: text(qformerJson, "hidden_act", "gelu"),
    layerNormEps: number(qformerJson, "layer_norm_eps", 1e-12),
    crossAttentionFrequency: integer(qformerJson, "cross_attention_frequency", 2),
    encoderHiddenSize: integer(qformerJson, "encoder_hidden_size", vision.hiddenSize),
  };
  return {
    vision,
    qformer,
    text: llamaConfigFromHF(textJson),
    numQueryTokens: integer(config, "num_query_tokens", 32),
    imageTokenId: config.json.image_token_id ?? config.json.image_token_index ?? undefined,
  };
}

// ---------------------------------------------------------------------------
// The other direction: typed configs → config.json, as `save_pretrained` writes
// them, so that checkpoints made here load in transformers too.

/** `LlamaConfig` → a transformers `LlamaConfig` document. */
export function llamaConfigToHF(config: LlamaConfig): Record<string, unknown> {
  const heads = config.numHeads;
  const rope = config.rope ?? { theta: 10000 };
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: heads,
    num_key_value_heads: config.numKeyValueHeads ?? heads,
    head_dim: config.headDim ?? config.hiddenSize / heads,
    hidden_act: config.hiddenAct ?? "silu",
    max_position_embeddings: config.maxPositionEmbeddings ?? 2048,
    rms_norm_eps: config.rmsNormEps ?? 1e-6,
    rope_theta: rope.theta,
    rope_scaling: null,
    attention_bias: config.attentionBias ?? false,
    mlp_bias: config.mlpBias ?? false,
    tie_word_embeddings: config.tieWordEmbeddings ?? false,
    bos_token_id: null,
    eos_token_id: config.eosTokenIds?.length === 1 ? config.eosTokenIds[0] : (config.eosTokenIds ?? null),
    pad_token_id: config.padTokenId ?? null,
    torch_dtype: "float32",
  };
}

/** `CLIPConfig` → a transformers `CLIPConfig` document. */
export function clipConfigToHF(config: CLIPConfig): Record<string, unknown> {
  const text = config.text;
  const vision = config.vision;
  return {
    architectures: ["CLIPModel"],
    model_type: "clip",
    projection_dim: config.projectionDim,
    logit_scale_init_value: config.logitScaleInit ?? 2.6592,
    text_config: {
      model_type: "clip_text_model",
      vocab_size: text.vocabSize,
      hidden_size: text.hiddenSize,
      intermediate_size: text.intermediateSize,
      num_hidden_layers: text.numLayers,
      num_attention_heads: text.numHeads,
      max_position_embeddings: text.maxPositionEmbeddings,
      hidden_act: text.hiddenAct ?? "quick_gelu",
      layer_norm_eps: text.layerNormEps ?? 1e-5,
      eos_token_id: text.eosTokenId ?? 2,
      projection_dim: config.projectionDim,
    },
    vision_config: {
      model_type: "clip_vision_model",
      hidden_size: vision.hiddenSize,
      intermediate_size: vision.intermediateSize,
      num_hidden_layers: vision.numLayers,
      num_attention_heads: vision.numHeads,
      num_channels: vision.numChannels ?? 3,
      image_size: vision.imageSize,
      patch_size: vision.patchSize,
      hidden_act: vision.hiddenAct ?? "quick_gelu",
      layer_norm_eps: vision.layerNormEps ?? 1e-5,
      projection_dim: config.projectionDim,
    },
    torch_dtype: "float32",
  };
}

/** The labs' audio encoder (model_type "mllm_audio_encoder"). */
export function audioEncoderConfigFromHF(config: HFConfig): AudioEncoderConfig {
  const labels = config.json.labels;
  if (labels !== undefined && !(Array.isArray(labels) && labels.every((l) => typeof l === "string"))) throw new Error(`${config.where}: labels must be a list of strings`);
  return {
    numMelBins: integer(config, "num_mel_bins", 80),
    maxFrames: integer(config, "max_frames", 100),
    framesPerToken: integer(config, "frames_per_token", 4),
    hiddenSize: integer(config, "hidden_size"),
    intermediateSize: integer(config, "intermediate_size"),
    numLayers: integer(config, "num_hidden_layers"),
    numHeads: integer(config, "num_attention_heads"),
    hiddenAct: text(config, "hidden_act", "gelu"),
    layerNormEps: number(config, "layer_norm_eps", 1e-5),
    labels,
  };
}

export function audioEncoderConfigToHF(config: AudioEncoderConfig): Record<string, unknown> {
  return {
    architectures: ["AudioEncoder"],
    model_type: "mllm_audio_encoder",
    num_mel_bins: config.numMelBins ?? 80,
    max_frames: config.maxFrames ?? 100,
    frames_per_token: config.framesPerToken ?? 4,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    hidden_act: config.hiddenAct ?? "gelu",
    layer_norm_eps: config.layerNormEps ?? 1e-5,
    labels: config.labels ?? [],
    sampling_rate: 16000,
    torch_dtype: "float32",
  };
}

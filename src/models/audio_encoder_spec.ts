/**
 * The labs' audio encoder in the model registry (model_type
 * `mllm_audio_encoder`, not a Hugging Face architecture): `config.json` ↔
 * {@link AudioEncoderConfig}. No parity fixture: it has no reference implementation.
 */
import { hfInteger, hfOptionalInteger, hfOptionalNumber, hfOptionalText, type HFConfig } from "../io/hf_config";
import {
  AudioEncoder,
  resolveAudioEncoderConfig,
  type AudioEncoderConfig,
  type ResolvedAudioEncoderConfig,
} from "./audio_encoder";
import type { ModelSpec } from "./model_spec";

/** `config.json` → {@link AudioEncoderConfig}. */
export function audioEncoderConfigFromHF(config: HFConfig): ResolvedAudioEncoderConfig {
  const labels = config.json.labels;
  if (labels !== undefined && !(Array.isArray(labels) && labels.every((label) => typeof label === "string"))) {
    throw new Error(`config: ${config.where}: "labels" must be a list of strings, got ${JSON.stringify(labels)}`);
  }
  return resolveAudioEncoderConfig({
    numMelBins: hfOptionalInteger(config, "num_mel_bins"),
    maxFrames: hfOptionalInteger(config, "max_frames"),
    framesPerToken: hfOptionalInteger(config, "frames_per_token"),
    hiddenSize: hfInteger(config, "hidden_size"),
    intermediateSize: hfInteger(config, "intermediate_size"),
    numLayers: hfInteger(config, "num_hidden_layers"),
    numHeads: hfInteger(config, "num_attention_heads"),
    hiddenAct: hfOptionalText(config, "hidden_act"),
    layerNormEps: hfOptionalNumber(config, "layer_norm_eps"),
    labels,
  });
}

/** {@link AudioEncoderConfig} → its config.json document. */
export function audioEncoderConfigToHF(config: AudioEncoderConfig): Record<string, unknown> {
  const resolved = resolveAudioEncoderConfig(config);
  return {
    architectures: ["AudioEncoder"],
    model_type: "mllm_audio_encoder",
    num_mel_bins: resolved.numMelBins,
    max_frames: resolved.maxFrames,
    frames_per_token: resolved.framesPerToken,
    hidden_size: resolved.hiddenSize,
    intermediate_size: resolved.intermediateSize,
    num_hidden_layers: resolved.numLayers,
    num_attention_heads: resolved.numHeads,
    hidden_act: resolved.hiddenAct,
    layer_norm_eps: resolved.layerNormEps,
    labels: resolved.labels,
    sampling_rate: 16000,
    torch_dtype: "float32",
  };
}

export const AUDIO_ENCODER_SPEC: ModelSpec<ResolvedAudioEncoderConfig, AudioEncoder> = {
  modelType: "mllm_audio_encoder",
  fromHF: audioEncoderConfigFromHF,
  toHF: audioEncoderConfigToHF,
  keyAliases: [],
  create: (config) => new AudioEncoder(config),
};

/**
 * The sensor and point-cloud bridges in the model registry (model_type
 * `mllm_modality_llm`, not a Hugging Face architecture): `config.json` ↔
 * {@link ModalityLlmConfig}, the encoder as `imu_config` or `point_config`,
 * the Q-Former as BLIP-2's `qformer_config`, the language model as Llama's.
 */
import {
  hfInteger,
  hfOptionalInteger,
  hfOptionalNumber,
  hfOptionalText,
  hfText,
  subConfig,
  type HFConfig,
} from "../io/hf_config";
import { llamaConfigFromHF, llamaConfigToHF } from "./llama_spec";
import { qformerConfigFromHF, qformerConfigToHF } from "./video_llama_spec";
import {
  ModalityLlm,
  resolveModalityLlmConfig,
  type Modality,
  type ModalityLlmConfig,
  type ResolvedModalityLlmConfig,
} from "./modality_bridge";
import type { ModelSpec } from "./model_spec";

function labelsFromHF(config: HFConfig): string[] | undefined {
  const labels = config.json.labels;
  if (labels !== undefined && !(Array.isArray(labels) && labels.every((label) => typeof label === "string")))
    throw new Error(`config: ${config.where}: "labels" must be a list of strings, got ${JSON.stringify(labels)}`);
  return labels;
}

function numbersFromHF(config: HFConfig, key: string): number[] | undefined {
  const value = config.json[key];
  if (value !== undefined && !(Array.isArray(value) && value.every((v) => Number.isInteger(v))))
    throw new Error(`config: ${config.where}: "${key}" must be a list of integers, got ${JSON.stringify(value)}`);
  return value;
}

/** `config.json` → {@link ModalityLlmConfig}. */
export function modalityLlmConfigFromHF(config: HFConfig): ResolvedModalityLlmConfig {
  const modality = hfText(config, "modality") as Modality;
  const encoder =
    modality === "imu"
      ? (() => {
          const imu = subConfig(config, "imu_config");
          return {
            imu: {
              numChannels: hfOptionalInteger(imu, "num_channels"),
              windowLength: hfOptionalInteger(imu, "window_length"),
              kernelSize: hfOptionalInteger(imu, "kernel_size"),
              stride: hfOptionalInteger(imu, "stride"),
              hiddenSize: hfInteger(imu, "hidden_size"),
              intermediateSize: hfInteger(imu, "intermediate_size"),
              numLayers: hfInteger(imu, "num_hidden_layers"),
              numHeads: hfInteger(imu, "num_attention_heads"),
              hiddenAct: hfOptionalText(imu, "hidden_act"),
              layerNormEps: hfOptionalNumber(imu, "layer_norm_eps"),
              labels: labelsFromHF(imu),
            },
          };
        })()
      : (() => {
          const points = subConfig(config, "point_config");
          return {
            points: {
              numChannels: hfOptionalInteger(points, "num_channels"),
              mlpSizes: numbersFromHF(points, "mlp_sizes"),
              hiddenSize: hfInteger(points, "hidden_size"),
              hiddenAct: hfOptionalText(points, "hidden_act"),
              layerNormEps: hfOptionalNumber(points, "layer_norm_eps"),
              labels: labelsFromHF(points),
            },
          };
        })();
  return resolveModalityLlmConfig({
    modality,
    ...encoder,
    qformer: qformerConfigFromHF(subConfig(config, "qformer_config")),
    numQueryTokens: hfOptionalInteger(config, "num_query_tokens"),
    text: llamaConfigFromHF(subConfig(config, "text_config")),
  });
}

/** {@link ModalityLlmConfig} → its config.json document. */
export function modalityLlmConfigToHF(config: ModalityLlmConfig): Record<string, unknown> {
  const resolved = resolveModalityLlmConfig(config);
  const { architectures: _architectures, torch_dtype: _dtype, ...text } = llamaConfigToHF(resolved.text);
  const { imu, points } = resolved;
  return {
    architectures: ["ModalityLlm"],
    model_type: "mllm_modality_llm",
    modality: resolved.modality,
    ...(imu
      ? {
          imu_config: {
            model_type: "mllm_imu_encoder",
            num_channels: imu.numChannels,
            window_length: imu.windowLength,
            kernel_size: imu.kernelSize,
            stride: imu.stride,
            hidden_size: imu.hiddenSize,
            intermediate_size: imu.intermediateSize,
            num_hidden_layers: imu.numLayers,
            num_attention_heads: imu.numHeads,
            hidden_act: imu.hiddenAct,
            layer_norm_eps: imu.layerNormEps,
            labels: imu.labels,
          },
        }
      : {}),
    ...(points
      ? {
          point_config: {
            model_type: "mllm_point_encoder",
            num_channels: points.numChannels,
            mlp_sizes: points.mlpSizes,
            hidden_size: points.hiddenSize,
            hidden_act: points.hiddenAct,
            layer_norm_eps: points.layerNormEps,
            labels: points.labels,
          },
        }
      : {}),
    qformer_config: qformerConfigToHF(resolved.qformer),
    num_query_tokens: resolved.numQueryTokens,
    text_config: text,
    torch_dtype: "float32",
  };
}

export const MODALITY_LLM_SPEC: ModelSpec<ResolvedModalityLlmConfig, ModalityLlm> = {
  modelType: "mllm_modality_llm",
  fromHF: modalityLlmConfigFromHF,
  toHF: modalityLlmConfigToHF,
  keyAliases: [],
  create: (config) => new ModalityLlm(config),
};

/**
 * Lab 00's GPT in the model registry (model_type `mllm_gpt`, not a Hugging
 * Face architecture; the field names follow transformers' conventions):
 * `config.json` ↔ {@link GPTConfig}. No parity fixture.
 */
import { hfInteger, type HFConfig } from "../io/hf_config";
import { GPT, resolveGPTConfig, type GPTConfig, type ResolvedGPTConfig } from "./gpt";
import type { ModelSpec } from "./model_spec";

/** `config.json` → {@link GPTConfig}. */
export function gptConfigFromHF(config: HFConfig): ResolvedGPTConfig {
  return resolveGPTConfig({
    vocabSize: hfInteger(config, "vocab_size"),
    contextLength: hfInteger(config, "max_position_embeddings"),
    dim: hfInteger(config, "hidden_size"),
    layers: hfInteger(config, "num_hidden_layers"),
    heads: hfInteger(config, "num_attention_heads"),
  });
}

/** {@link GPTConfig} → its config.json document. */
export function gptConfigToHF(config: GPTConfig): Record<string, unknown> {
  const resolved = resolveGPTConfig(config);
  return {
    architectures: ["GPT"],
    model_type: "mllm_gpt",
    vocab_size: resolved.vocabSize,
    max_position_embeddings: resolved.contextLength,
    hidden_size: resolved.dim,
    num_hidden_layers: resolved.layers,
    num_attention_heads: resolved.heads,
    torch_dtype: "float32",
  };
}

export const GPT_SPEC: ModelSpec<ResolvedGPTConfig, GPT> = {
  modelType: "mllm_gpt",
  fromHF: gptConfigFromHF,
  toHF: gptConfigToHF,
  keyAliases: [],
  create: (config) => new GPT(config),
};

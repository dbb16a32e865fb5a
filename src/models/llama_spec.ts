/**
 * Llama's place in the model registry: `config.json` ↔ {@link LlamaConfig},
 * and its parity run against transformers' `LlamaForCausalLM`.
 *
 * Reference: transformers `models/llama/configuration_llama.py` (field names,
 * and both `rope_parameters` and the older `rope_theta` + `rope_scaling`).
 */
import * as tf from "@tensorflow/tfjs";
import {
  hfIds,
  hfInteger,
  hfOptionalBoolean,
  hfOptionalInteger,
  hfOptionalNumber,
  hfOptionalText,
  type HFConfig,
} from "../io/hf_config";
import type { RopeConfig } from "../nn/rotary";
import { LlamaForCausalLM, resolveLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig } from "./llama";
import type { ModelSpec, ParityOutputs } from "./model_spec";

function ropeFromHF(config: HFConfig): RopeConfig {
  const parameters = config.json.rope_parameters ?? config.json.rope_scaling ?? {};
  return {
    theta: parameters.rope_theta ?? config.json.rope_theta ?? undefined,
    type: parameters.rope_type ?? parameters.type ?? undefined,
    factor: parameters.factor,
    lowFreqFactor: parameters.low_freq_factor,
    highFreqFactor: parameters.high_freq_factor,
    originalMaxPositionEmbeddings: parameters.original_max_position_embeddings,
  };
}

/** `config.json` → {@link LlamaConfig} (also Mistral/Qwen2-style configs without their extras). */
export function llamaConfigFromHF(config: HFConfig): ResolvedLlamaConfig {
  try {
    return resolveLlamaConfig({
      vocabSize: hfInteger(config, "vocab_size"),
      hiddenSize: hfInteger(config, "hidden_size"),
      intermediateSize: hfInteger(config, "intermediate_size"),
      numLayers: hfInteger(config, "num_hidden_layers"),
      numHeads: hfInteger(config, "num_attention_heads"),
      numKeyValueHeads: hfOptionalInteger(config, "num_key_value_heads"),
      headDim: hfOptionalInteger(config, "head_dim"),
      rmsNormEps: hfOptionalNumber(config, "rms_norm_eps"),
      rope: ropeFromHF(config),
      tieWordEmbeddings: hfOptionalBoolean(config, "tie_word_embeddings"),
      attentionBias: hfOptionalBoolean(config, "attention_bias"),
      mlpBias: hfOptionalBoolean(config, "mlp_bias"),
      hiddenAct: hfOptionalText(config, "hidden_act"),
      maxPositionEmbeddings: hfOptionalInteger(config, "max_position_embeddings"),
      eosTokenIds: hfIds(config, "eos_token_id"),
      padTokenId: hfOptionalInteger(config, "pad_token_id"),
    });
  } catch (error) {
    if ((error as Error).message.startsWith("config:")) throw error;
    throw new Error(`config: ${config.where}: ${(error as Error).message}`);
  }
}

/** {@link LlamaConfig} → a transformers `LlamaConfig` document. */
export function llamaConfigToHF(config: LlamaConfig): Record<string, unknown> {
  const resolved = resolveLlamaConfig(config);
  const { rope } = resolved;
  const eos = resolved.eosTokenIds;
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: resolved.vocabSize,
    hidden_size: resolved.hiddenSize,
    intermediate_size: resolved.intermediateSize,
    num_hidden_layers: resolved.numLayers,
    num_attention_heads: resolved.numHeads,
    num_key_value_heads: resolved.numKeyValueHeads,
    head_dim: resolved.headDim,
    hidden_act: resolved.hiddenAct,
    max_position_embeddings: resolved.maxPositionEmbeddings,
    rms_norm_eps: resolved.rmsNormEps,
    rope_theta: rope.theta,
    rope_scaling:
      rope.type === "default"
        ? null
        : {
            rope_type: rope.type,
            factor: rope.factor,
            ...(rope.type === "llama3"
              ? {
                  low_freq_factor: rope.lowFreqFactor,
                  high_freq_factor: rope.highFreqFactor,
                  original_max_position_embeddings: rope.originalMaxPositionEmbeddings,
                }
              : {}),
          },
    attention_bias: resolved.attentionBias,
    mlp_bias: resolved.mlpBias,
    tie_word_embeddings: resolved.tieWordEmbeddings,
    bos_token_id: null,
    eos_token_id: eos.length === 0 ? null : eos.length === 1 ? eos[0] : eos,
    pad_token_id: resolved.padTokenId,
    torch_dtype: "float32",
  };
}

/**
 * Parity: logits (and hidden states, padded logits) of `input_ids`; greedy
 * generation from `greedy_prompt` with and without the KV cache.
 */
async function llamaParity(
  model: LlamaForCausalLM,
  stored: Parameters<NonNullable<ModelSpec["parity"]>>[1],
): Promise<ParityOutputs> {
  const inputIds = stored.get("input_ids");
  const tensors: Record<string, tf.Tensor> = {};
  const forward = model.forward({ inputIds, outputHiddenStates: stored.has("hidden_states.0") });
  tensors.logits = forward.logits;
  forward.hiddenStates?.forEach((state, index) => (tensors[`hidden_states.${index}`] = state));
  if (stored.has("padded_attention_mask") && stored.has("padded_logits")) {
    tensors.padded_logits = model.forward({ inputIds, attentionMask: stored.get("padded_attention_mask") }).logits;
  }
  const exact: { name: string; reference: string; values: number[] }[] = [];
  if (stored.has("greedy_prompt") && stored.has("greedy_output")) {
    const prompt = stored.get("greedy_prompt");
    const newTokens = (stored.shape("greedy_output")[1] as number) - (prompt.shape[1] as number);
    const cached = await model.generate(prompt, { maxNewTokens: newTokens, stopTokens: [] });
    exact.push({ name: "greedy_output", reference: "greedy_output", values: cached.flat() });
    const uncached = await model.generate(prompt, { maxNewTokens: newTokens, stopTokens: [], useCache: false });
    exact.push({ name: "greedy_output (no KV cache)", reference: "greedy_output", values: uncached.flat() });
  }
  return { tensors, exact };
}

export const LLAMA_SPEC: ModelSpec<ResolvedLlamaConfig, LlamaForCausalLM> = {
  modelType: "llama",
  alsoReads: ["mistral"],
  fromHF: llamaConfigFromHF,
  toHF: llamaConfigToHF,
  keyAliases: [],
  create: (config) => new LlamaForCausalLM(config),
  parity: llamaParity,
};

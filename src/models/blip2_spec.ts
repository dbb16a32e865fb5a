/**
 * BLIP-2's place in the model registry: `config.json` ↔ {@link Blip2Config},
 * its checkpoint layouts (including the older separate `q_bias`/`v_bias`),
 * and its parity run against transformers' `Blip2ForConditionalGeneration`.
 *
 * Reference: transformers `models/blip_2/configuration_blip_2.py`.
 */
import * as tf from "@tensorflow/tfjs";
import {
  hfOptionalBoolean,
  hfOptionalInteger,
  hfOptionalNumber,
  hfOptionalText,
  subConfig,
  type HFConfig,
} from "../io/hf_config";
import { Blip2ForConditionalGeneration, resolveBlip2Config, type Blip2Config, type ResolvedBlip2Config } from "./blip2";
import { llamaConfigFromHF, llamaConfigToHF } from "./llama_spec";
import {
  candidateKeys,
  type KeyAliases,
  type ModelSpec,
  type ParityOutputs,
  type SpecialKeyReader,
  type StoredTensors,
} from "./model_spec";

/** `config.json` → {@link Blip2Config} with a Llama-style decoder-only language model. */
export function blip2ConfigFromHF(config: HFConfig): ResolvedBlip2Config {
  const vision = subConfig(config, "vision_config");
  const qformer = subConfig(config, "qformer_config");
  const text = subConfig(config, "text_config");
  const textType = hfOptionalText(text, "model_type") ?? "llama";
  if (textType !== "llama") {
    throw new Error(
      `config: ${text.where}: only Llama-style language models are supported in BLIP-2 here, got ${JSON.stringify(textType)} (OPT and Flan-T5 are not implemented)`,
    );
  }
  return resolveBlip2Config({
    vision: {
      hiddenSize: hfOptionalInteger(vision, "hidden_size"),
      intermediateSize: hfOptionalInteger(vision, "intermediate_size"),
      numLayers: hfOptionalInteger(vision, "num_hidden_layers"),
      numHeads: hfOptionalInteger(vision, "num_attention_heads"),
      imageSize: hfOptionalInteger(vision, "image_size"),
      patchSize: hfOptionalInteger(vision, "patch_size"),
      hiddenAct: hfOptionalText(vision, "hidden_act"),
      layerNormEps: hfOptionalNumber(vision, "layer_norm_eps"),
      qkvBias: hfOptionalBoolean(vision, "qkv_bias"),
    },
    qformer: {
      hiddenSize: hfOptionalInteger(qformer, "hidden_size"),
      intermediateSize: hfOptionalInteger(qformer, "intermediate_size"),
      numLayers: hfOptionalInteger(qformer, "num_hidden_layers"),
      numHeads: hfOptionalInteger(qformer, "num_attention_heads"),
      hiddenAct: hfOptionalText(qformer, "hidden_act"),
      layerNormEps: hfOptionalNumber(qformer, "layer_norm_eps"),
      crossAttentionFrequency: hfOptionalInteger(qformer, "cross_attention_frequency"),
      encoderHiddenSize: hfOptionalInteger(qformer, "encoder_hidden_size"),
      encoderWindow: hfOptionalInteger(qformer, "mllm_labs_encoder_window"),
    },
    text: llamaConfigFromHF(text),
    numQueryTokens: hfOptionalInteger(config, "num_query_tokens"),
    imageTokenId: hfOptionalInteger(config, config.json.image_token_id !== undefined ? "image_token_id" : "image_token_index"),
  });
}

/** {@link Blip2Config} → a transformers `Blip2Config` document. */
export function blip2ConfigToHF(config: Blip2Config): Record<string, unknown> {
  const { vision, qformer, text, numQueryTokens, imageTokenId } = resolveBlip2Config(config);
  const { architectures: _architectures, torch_dtype: _dtype, ...textConfig } = llamaConfigToHF(text);
  return {
    architectures: ["Blip2ForConditionalGeneration"],
    model_type: "blip-2",
    vision_config: {
      model_type: "blip_2_vision_model",
      hidden_size: vision.hiddenSize,
      intermediate_size: vision.intermediateSize,
      num_hidden_layers: vision.numLayers,
      num_attention_heads: vision.numHeads,
      image_size: vision.imageSize,
      patch_size: vision.patchSize,
      hidden_act: vision.hiddenAct,
      layer_norm_eps: vision.layerNormEps,
      qkv_bias: vision.qkvBias,
    },
    qformer_config: {
      model_type: "blip_2_qformer",
      hidden_size: qformer.hiddenSize,
      intermediate_size: qformer.intermediateSize,
      num_hidden_layers: qformer.numLayers,
      num_attention_heads: qformer.numHeads,
      hidden_act: qformer.hiddenAct,
      layer_norm_eps: qformer.layerNormEps,
      cross_attention_frequency: qformer.crossAttentionFrequency,
      encoder_hidden_size: qformer.encoderHiddenSize,
      ...(qformer.encoderWindow > 1 ? { mllm_labs_encoder_window: qformer.encoderWindow } : {}), // ours: written only when on
    },
    text_config: textConfig,
    num_query_tokens: numQueryTokens,
    image_token_id: imageTokenId ?? null,
    torch_dtype: "float32",
  };
}

/** BLIP-2's layouts (transformers ≥ 4.52 may prefix `model.`). */
export const BLIP2_KEY_ALIASES: KeyAliases = [
  ["vision_model.", "model.vision_model."],
  ["qformer.", "model.qformer."],
  ["query_tokens", "model.query_tokens"],
  ["language_projection.", "model.language_projection."],
  ["language_model.model.", "model.language_model."],
  ["language_model.lm_head.", "lm_head."],
];

/** Older checkpoints store the qkv bias as q_bias and v_bias (k has none): qkv.bias = [q_bias, 0, v_bias]. */
const readSplitQkvBias: SpecialKeyReader = (name, read) => {
  const match = /^(.*)\.self_attn\.qkv\.bias$/.exec(name);
  if (!match) return undefined;
  for (const prefix of candidateKeys(`${match[1]}.self_attn.`, BLIP2_KEY_ALIASES)) {
    const q = read(`${prefix}q_bias`);
    const v = read(`${prefix}v_bias`);
    if (q && v) {
      const joined = tf.concat([q, tf.zerosLike(q), v]);
      q.dispose();
      v.dispose();
      return joined;
    }
    q?.dispose();
    v?.dispose();
  }
  return undefined;
};

/** Parity: the vision, Q-Former and projection outputs, and the logits when the fixture has a prompt. */
async function blip2Parity(model: Blip2ForConditionalGeneration, stored: StoredTensors): Promise<ParityOutputs> {
  const pixelValues = stored.get("pixel_values");
  if (stored.has("input_ids") && stored.has("logits")) {
    const inputs = { pixelValues, inputIds: stored.get("input_ids") };
    await model.checkInputs(inputs);
    const output = model.forward(inputs);
    return {
      tensors: {
        logits: output.logits,
        vision_last_hidden_state: output.visionLastHiddenState,
        qformer_last_hidden_state: output.qformerLastHiddenState,
        language_projection: output.languageModelInputs,
      },
    };
  }
  const image = model.encodeImage(pixelValues);
  return {
    tensors: {
      vision_last_hidden_state: image.visionLastHiddenState,
      qformer_last_hidden_state: image.qformerLastHiddenState,
      language_projection: image.languageModelInputs,
    },
  };
}

export const BLIP2_SPEC: ModelSpec<ResolvedBlip2Config, Blip2ForConditionalGeneration> = {
  modelType: "blip-2",
  fromHF: blip2ConfigFromHF,
  toHF: blip2ConfigToHF,
  keyAliases: BLIP2_KEY_ALIASES,
  specialKeys: readSplitQkvBias,
  create: (config) => new Blip2ForConditionalGeneration(config),
  parity: blip2Parity,
};

/**
 * Loading Hugging Face checkpoints from disk into the library's models:
 * `config.json` → typed config → model → every parameter read from the
 * safetensors file(s) by name. Each parameter name may be found under the
 * checkpoint layouts transformers has used (LLaVA's `model.language_model.*`
 * now and `language_model.model.*` before; a CLIP tower with or without its
 * `vision_model.` wrapper; BLIP-2's separate `q_bias`/`v_bias`).
 *
 * A missing or mis-shaped tensor is an error naming the checkpoint and the
 * tensor; so is a tensor the model does not use (see checkpoint_validation);
 * nothing is half-loaded.
 */
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Checkpoint } from "./safetensors";
import { checkUnusedWeights, type UnusedWeightsArgs } from "./checkpoint_validation";
import { readHFConfig, subConfig, modelType, llamaConfigFromHF, clipConfigFromHF, llavaConfigFromHF, blip2ConfigFromHF, clipVisionConfigFromHF, audioEncoderConfigFromHF } from "./hf_config";
import { AudioEncoder } from "../models/audio_encoder";
import type { Module } from "../nn/module";
import { LlamaForCausalLM } from "../models/llama";
import { CLIPModel, CLIPVisionTransformer } from "../models/clip";
import { LlavaForConditionalGeneration } from "../models/llava";
import { Blip2ForConditionalGeneration } from "../models/blip2";

/** Prefix rewrites: a parameter named `<from>rest` may be stored as `<to>rest`. */
export type KeyAliases = readonly (readonly [from: string, to: string])[];

/** LLaVA: the layout transformers saves, the current in-memory one, and the older Hub one. */
export const LLAVA_KEY_ALIASES: KeyAliases = [
  ["vision_tower.", "vision_tower.vision_model."],
  ["vision_tower.", "model.vision_tower."],
  ["vision_tower.", "model.vision_tower.vision_model."],
  ["multi_modal_projector.", "model.multi_modal_projector."],
  ["language_model.model.", "model.language_model."],
  ["language_model.lm_head.", "lm_head."],
];

/** BLIP-2: the same idea (transformers ≥ 4.52 may prefix `model.`). */
export const BLIP2_KEY_ALIASES: KeyAliases = [
  ["vision_model.", "model.vision_model."],
  ["qformer.", "model.qformer."],
  ["query_tokens", "model.query_tokens"],
  ["language_projection.", "model.language_projection."],
  ["language_model.model.", "model.language_model."],
  ["language_model.lm_head.", "lm_head."],
];

/** A stand-alone CLIP vision tower (`CLIPVisionModel`) stores its weights under `vision_model.`. */
export const CLIP_VISION_KEY_ALIASES: KeyAliases = [["", "vision_model."]];

/** What a `CLIPModel` checkpoint holds besides the image tower (unused when only the tower is loaded). */
const CLIP_TEXT_TOWER = [/^text_model\./, /^text_projection\./, /^visual_projection\./, /^logit_scale$/];

/** Candidate stored names of a parameter, itself first. */
export function candidateKeys(name: string, aliases: KeyAliases): string[] {
  const out = [name];
  for (const [from, to] of aliases) if (name.startsWith(from)) out.push(to + name.slice(from.length));
  return out;
}

/**
 * Loads every parameter of `model` from `checkpoint`.
 * @param special optional hook for parameters a layout stores differently (return undefined to fall through)
 * @returns the checkpoint keys nothing used (transformers warns about these too)
 */
export function loadWeights(
  model: Module,
  checkpoint: Checkpoint,
  aliases: KeyAliases = [],
  special?: (name: string, read: (key: string) => tf.Tensor | undefined) => tf.Tensor | undefined,
  unusedArgs: UnusedWeightsArgs = {},
): string[] {
  const used = new Set<string>();
  const read = (key: string): tf.Tensor | undefined => {
    if (!checkpoint.has(key)) return undefined;
    used.add(key);
    return checkpoint.tensor(key);
  };
  model.loadParameters((name) => {
    for (const key of candidateKeys(name, aliases)) {
      const tensor = read(key);
      if (tensor) return tensor;
    }
    return special?.(name, read);
  }, checkpoint.directory);
  const unused = checkpoint.keys().filter((key) => !used.has(key));
  checkUnusedWeights(checkpoint, unused, unusedArgs);
  return unused;
}

function withCheckpoint<T>(directory: string, load: (checkpoint: Checkpoint) => T): T {
  const checkpoint = Checkpoint.open(directory);
  try {
    return load(checkpoint);
  } finally {
    checkpoint.close();
  }
}

/** A `LlamaForCausalLM` checkpoint directory (config.json + model.safetensors or shards). */
export function loadLlama(directory: string): LlamaForCausalLM {
  const model = new LlamaForCausalLM(llamaConfigFromHF(readHFConfig(directory)));
  return disposeOnError(model, () => withCheckpoint(directory, (checkpoint) => loadWeights(model, checkpoint)));
}

/** A `CLIPModel` checkpoint directory. */
export function loadCLIP(directory: string): CLIPModel {
  const model = new CLIPModel(clipConfigFromHF(readHFConfig(directory)));
  return disposeOnError(model, () => withCheckpoint(directory, (checkpoint) => loadWeights(model, checkpoint)));
}

/** The image tower of a `CLIPModel` or `CLIPVisionModel` checkpoint. */
export function loadCLIPVision(directory: string): CLIPVisionTransformer {
  const config = readHFConfig(directory);
  const visionJson = config.json.vision_config ? subConfig(config, "vision_config") : config;
  const model = new CLIPVisionTransformer(clipVisionConfigFromHF(visionJson));
  return disposeOnError(model, () => withCheckpoint(directory, (checkpoint) => loadWeights(model, checkpoint, CLIP_VISION_KEY_ALIASES, undefined, { ignore: CLIP_TEXT_TOWER })));
}

/** A `LlavaForConditionalGeneration` checkpoint directory (any of the layouts). */
export function loadLlava(directory: string): LlavaForConditionalGeneration {
  const model = new LlavaForConditionalGeneration(llavaConfigFromHF(readHFConfig(directory)));
  return disposeOnError(model, () => withCheckpoint(directory, (checkpoint) => loadWeights(model, checkpoint, LLAVA_KEY_ALIASES)));
}

/** A `Blip2ForConditionalGeneration` checkpoint directory with a Llama-style language model. */
export function loadBlip2(directory: string): Blip2ForConditionalGeneration {
  const model = new Blip2ForConditionalGeneration(blip2ConfigFromHF(readHFConfig(directory)));
  return disposeOnError(model, () =>
    withCheckpoint(directory, (checkpoint) =>
      loadWeights(model, checkpoint, BLIP2_KEY_ALIASES, (name, read) => {
        // Older checkpoints store the qkv bias as q_bias and v_bias (k has none): qkv.bias = [q_bias, 0, v_bias].
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
      }),
    ),
  );
}

function disposeOnError<M extends Module>(model: M, load: () => unknown): M {
  try {
    load();
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** The labs' audio encoder (`mllm_audio_encoder`). */
export function loadAudioEncoder(directory: string): AudioEncoder {
  const model = new AudioEncoder(audioEncoderConfigFromHF(readHFConfig(directory)));
  return disposeOnError(model, () => withCheckpoint(directory, (checkpoint) => loadWeights(model, checkpoint)));
}

/** Any supported checkpoint, chosen by `model_type`. */
export function loadPretrained(directory: string): { modelType: string; model: LlamaForCausalLM | CLIPModel | LlavaForConditionalGeneration | Blip2ForConditionalGeneration | AudioEncoder } {
  const type = modelType(readHFConfig(directory));
  switch (type) {
    case "llama":
    case "mistral":
      return { modelType: type, model: loadLlama(directory) };
    case "clip":
      return { modelType: type, model: loadCLIP(directory) };
    case "llava":
      return { modelType: type, model: loadLlava(directory) };
    case "blip-2":
      return { modelType: type, model: loadBlip2(directory) };
    case "mllm_audio_encoder":
      return { modelType: type, model: loadAudioEncoder(directory) };
    default:
      throw new Error(`loadPretrained: ${path.join(directory, "config.json")} has model_type ${JSON.stringify(type)}; supported: llama, mistral, clip, llava, blip-2, mllm_audio_encoder`);
  }
}

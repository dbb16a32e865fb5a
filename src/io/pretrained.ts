/**
 * Loading checkpoints from disk into the library's models: `config.json` →
 * the model's spec in the registry (by `model_type`) → typed config → model →
 * every parameter read from the safetensors file(s) by name. Each parameter
 * may be found under the layouts the spec lists (LLaVA's
 * `model.language_model.*` now and `language_model.model.*` before; a CLIP
 * tower with or without its `vision_model.` wrapper; BLIP-2's separate
 * `q_bias`/`v_bias`).
 *
 * A missing or mis-shaped tensor is an error naming the checkpoint and the
 * tensor; so is a tensor the model does not use (see checkpoint_validation);
 * nothing is half-loaded.
 */
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Checkpoint } from "./safetensors";
import { readHFConfig, subConfig, modelType } from "./hf_config";
import { checkUnusedWeights, type UnusedWeightsArgs } from "./checkpoint_validation";
import type { Module } from "../nn/module";
import { candidateKeys, type KeyAliases, type ModelSpec, type SpecialKeyReader } from "../models/model_spec";
import { modelSpec } from "../models/registry";
import type { LlamaForCausalLM } from "../models/llama";
import { LLAMA_SPEC } from "../models/llama_spec";
import type { CLIPModel } from "../models/clip";
import { CLIPVisionTransformer } from "../models/clip";
import { CLIP_SPEC, CLIP_VISION_KEY_ALIASES, clipVisionConfigFromHF } from "../models/clip_spec";
import type { LlavaForConditionalGeneration } from "../models/llava";
import { LLAVA_SPEC } from "../models/llava_spec";
import type { Blip2ForConditionalGeneration } from "../models/blip2";
import { BLIP2_SPEC } from "../models/blip2_spec";
import type { AudioEncoder } from "../models/audio_encoder";
import { AUDIO_ENCODER_SPEC } from "../models/audio_encoder_spec";

export { candidateKeys, type KeyAliases };
export { LLAVA_KEY_ALIASES } from "../models/llava_spec";
export { BLIP2_KEY_ALIASES } from "../models/blip2_spec";
export { CLIP_VISION_KEY_ALIASES };

/** What a `CLIPModel` checkpoint holds besides the image tower (unused when only the tower is loaded). */
const CLIP_TEXT_TOWER = [/^text_model\./, /^text_projection\./, /^visual_projection\./, /^logit_scale$/];

/**
 * Loads every parameter of `model` from `checkpoint`.
 * @param special optional hook for parameters a layout stores differently (return undefined to fall through)
 * @returns the checkpoint keys nothing used (transformers warns about these too)
 */
export function loadWeights(
  model: Module,
  checkpoint: Checkpoint,
  aliases: KeyAliases = [],
  special?: SpecialKeyReader,
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

function disposeOnError<M extends Module>(model: M, load: () => unknown): M {
  try {
    load();
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** Builds `spec`'s model from `<directory>/config.json` and loads its weights. */
export function loadWithSpec<C, M extends Module>(directory: string, spec: ModelSpec<C, M>): M {
  const model = spec.create(spec.fromHF(readHFConfig(directory)));
  return disposeOnError(model, () =>
    withCheckpoint(directory, (checkpoint) => loadWeights(model, checkpoint, spec.keyAliases, spec.specialKeys)),
  );
}

/** A `LlamaForCausalLM` checkpoint directory (config.json + model.safetensors or shards). */
export function loadLlama(directory: string): LlamaForCausalLM {
  return loadWithSpec(directory, LLAMA_SPEC);
}

/** A `CLIPModel` checkpoint directory. */
export function loadCLIP(directory: string): CLIPModel {
  return loadWithSpec(directory, CLIP_SPEC);
}

/** The image tower of a `CLIPModel` or `CLIPVisionModel` checkpoint. */
export function loadCLIPVision(directory: string): CLIPVisionTransformer {
  const config = readHFConfig(directory);
  const visionJson = config.json.vision_config ? subConfig(config, "vision_config") : config;
  const model = new CLIPVisionTransformer(clipVisionConfigFromHF(visionJson));
  return disposeOnError(model, () =>
    withCheckpoint(directory, (checkpoint) =>
      loadWeights(model, checkpoint, CLIP_VISION_KEY_ALIASES, undefined, { ignore: CLIP_TEXT_TOWER }),
    ),
  );
}

/** A `LlavaForConditionalGeneration` checkpoint directory (any of the layouts). */
export function loadLlava(directory: string): LlavaForConditionalGeneration {
  return loadWithSpec(directory, LLAVA_SPEC);
}

/** A `Blip2ForConditionalGeneration` checkpoint directory with a Llama-style language model. */
export function loadBlip2(directory: string): Blip2ForConditionalGeneration {
  return loadWithSpec(directory, BLIP2_SPEC);
}

/** The labs' audio encoder (`mllm_audio_encoder`). */
export function loadAudioEncoder(directory: string): AudioEncoder {
  return loadWithSpec(directory, AUDIO_ENCODER_SPEC);
}

/** Any checkpoint whose `model_type` the registry knows (see models/registry.ts). */
export function loadPretrained(directory: string): { modelType: string; model: Module } {
  const type = modelType(readHFConfig(directory));
  const spec = modelSpec(type, `loadPretrained: ${path.join(directory, "config.json")}`);
  return { modelType: type, model: loadWithSpec(directory, spec) };
}

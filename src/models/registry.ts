/**
 * The model registry: every architecture the library loads, saves and checks,
 * by its config.json `model_type`. The checkpoint loader (`io/pretrained.ts`),
 * `mllm-labs parity` (`parity/run.ts`) and `mllm-labs eval` (`pretrain/run.ts`)
 * look models up here; nothing else lists them.
 *
 * Adding a model: write `models/<name>.ts` (modules + `resolve<Name>Config`)
 * and `models/<name>_spec.ts` (its {@link ModelSpec}), then add the spec to
 * {@link MODEL_SPECS}. See docs/ARCHITECTURE.md, "Adding a model".
 */
import type { ModelSpec } from "./model_spec";
import { LLAMA_SPEC } from "./llama_spec";
import { CLIP_SPEC } from "./clip_spec";
import { LLAVA_SPEC } from "./llava_spec";
import { BLIP2_SPEC } from "./blip2_spec";
import { AUDIO_ENCODER_SPEC } from "./audio_encoder_spec";
import { GPT_SPEC } from "./gpt_spec";
import { VIDEO_LLAMA_SPEC } from "./video_llama_spec";
import { MODALITY_LLM_SPEC } from "./modality_bridge_spec";

/** Every registered architecture. */
export const MODEL_SPECS: readonly ModelSpec<any, any>[] = [
  LLAMA_SPEC,
  CLIP_SPEC,
  LLAVA_SPEC,
  BLIP2_SPEC,
  AUDIO_ENCODER_SPEC,
  GPT_SPEC,
  VIDEO_LLAMA_SPEC,
  MODALITY_LLM_SPEC,
];

/** Every `model_type` the registry reads, in registry order. */
export function registeredModelTypes(): string[] {
  return MODEL_SPECS.flatMap((spec) => [spec.modelType, ...(spec.alsoReads ?? [])]);
}

/** The spec reading `modelType`, or undefined. */
export function findModelSpec(modelType: string): ModelSpec<any, any> | undefined {
  return MODEL_SPECS.find((spec) => spec.modelType === modelType || spec.alsoReads?.includes(modelType));
}

/**
 * The spec reading `modelType`.
 * @param where names the config in the error (a file path)
 */
export function modelSpec(modelType: string, where = "config.json"): ModelSpec<any, any> {
  const spec = findModelSpec(modelType);
  if (!spec)
    throw new Error(
      `${where} has model_type ${JSON.stringify(modelType)}; the model registry knows ${registeredModelTypes().join(", ")}`,
    );
  return spec;
}

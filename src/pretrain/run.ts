/**
 * `npm run pretrain -- <name>` and `mllm-labs eval <checkpoint-dir>`: make a
 * backbone checkpoint, and recompute a checkpoint's card metrics.
 */
import * as fs from "fs";
import * as path from "path";
import { readHFConfig, modelType } from "../io/hf_config";
import { loadPretrained } from "../io/pretrained";
import type { Module } from "../nn/module";
import type { CLIPModel } from "../models/clip";
import type { LlamaForCausalLM } from "../models/llama";
import type { AudioEncoder } from "../models/audio_encoder";
import { loadTokenizer } from "../tokenizer/tokenizer";
import { pretrainVision, evaluateVision, type PretrainArgs } from "./vision";
import { pretrainLanguage, evaluateLanguage } from "./language";
import { pretrainAudio, evaluateAudio } from "./audio";
import { pretrainBlip2, evaluateBlip2, loadBlip2Pipeline } from "./blip2";
import { pretrainLlava, evaluateLlavaCheckpoint } from "./llava";
import { pretrainLlavaRobust } from "./llava_robust";
import { pretrainLlavaCode } from "./llava_code";
import { pretrainLoraSweep, evaluateLoraAdapter } from "./lora_sweep";
import { pretrainLlavaSentiment, pretrainLlavaMedical } from "./llava_domain";
import { pretrainStoryteller, evaluateStorytellerCheckpoint, isStoryteller } from "./storyteller";
import { pretrainVideoLlama, evaluateVideoLlamaCheckpoint } from "./videollama";
import { pretrainModality, evaluateModality } from "./modality";
import type { CheckpointCard } from "./common";
import { refuseExistingCheckpoint } from "./checkpoint_folder";

export const BACKBONES = ["vision", "language", "audio"] as const;
export type BackboneName = (typeof BACKBONES)[number];
/** What `npm run pretrain -- NAME` makes: the backbones, then the labs' models built on them. */
export const PRETRAINED = [
  ...BACKBONES,
  "blip2",
  "llava",
  "llava-blind",
  "llava-sentiment",
  "llava-medical",
  "llava-code-blind",
  "llava-code",
  "llava-robust-blind",
  "llava-robust",
  "lora-sweep",
  "storyteller",
  "videollama",
  "sensors",
  "points",
] as const;
export type PretrainedName = (typeof PRETRAINED)[number];

/** Trains one backbone and writes its checkpoint (config, weights, tokenizer, card). */
export async function pretrain(
  name: string,
  args: PretrainArgs & { force?: boolean; ablation?: string },
): Promise<CheckpointCard> {
  if (!(PRETRAINED as readonly string[]).includes(name))
    throw new Error(`pretrain: unknown model ${JSON.stringify(name)}; expected one of ${PRETRAINED.join(", ")}`);
  if (args.ablation !== undefined && name !== "llava")
    throw new Error(`pretrain: --ablation applies to llava only, got it with ${JSON.stringify(name)}`);
  if (!args.dryRun) refuseExistingCheckpoint(args.out, args.force); // before training, so no run is wasted
  const run = {
    vision: pretrainVision,
    language: pretrainLanguage,
    audio: pretrainAudio,
    blip2: pretrainBlip2,
    llava: pretrainLlava,
    "llava-blind": (a: PretrainArgs) => pretrainLlava({ ...a, blind: true }),
    "llava-sentiment": pretrainLlavaSentiment,
    "llava-medical": pretrainLlavaMedical,
    "llava-code": pretrainLlavaCode,
    "llava-code-blind": (a: PretrainArgs) => pretrainLlavaCode({ ...a, blind: true }),
    "llava-robust": pretrainLlavaRobust,
    "llava-robust-blind": (a: PretrainArgs) => pretrainLlavaRobust({ ...a, blind: true }),
    "lora-sweep": pretrainLoraSweep,
    storyteller: pretrainStoryteller,
    videollama: pretrainVideoLlama,
    sensors: (a: PretrainArgs) => pretrainModality("sensors", a),
    points: (a: PretrainArgs) => pretrainModality("points", a),
  }[name as PretrainedName];
  const result: { model?: { dispose(): void }; card: CheckpointCard } = await run(args);
  result.model?.dispose(); // a sweep returns no model: it disposes each run's as it ends
  return result.card;
}

/** What an evaluator measures: the metrics and, for the labs' models, the same metrics of the baselines. */
interface Measured {
  readonly metrics: Record<string, number>;
  readonly baselines?: Record<string, Record<string, number>>;
}

/** Loads a checkpoint through the model registry (models/registry.ts), measures it, disposes it. */
function registryModel<M extends Module>(
  measure: (model: M, directory: string, world: string) => Promise<Record<string, number>>,
) {
  return async (directory: string, world: string): Promise<Measured> => {
    const { model } = loadPretrained(directory);
    try {
      return { metrics: await measure(model as M, directory, world) };
    } finally {
      model.dispose();
    }
  };
}

/**
 * model_type → how a checkpoint is measured. Backbones are built and loaded by
 * the model registry, so a new architecture needs only its evaluator here; the
 * labs' models load their own pipeline (their config.json names the frozen
 * backbones they sit on).
 */
const EVALUATORS: Record<string, (directory: string, world: string) => Promise<Measured>> = {
  // Lab 03's VideoLLaMA bridges (backbones by reference): per-type video QA, audio-visual, sound events, beside their baselines.
  mllm_video_llama: evaluateVideoLlamaCheckpoint,
  // The labs' LLaVA: its blind twin (card.json baseline_checkpoints.blind) is measured beside it. Lab 05's
  // storyteller is a LLaVA too (config.json mllm_labs.storyteller): its story metrics and baselines.
  // llava-code's and llava-robust's cards name their test sets and the model it was tuned from (measured as before_tuning).
  llava: async (directory, world) =>
    isStoryteller(directory) ? evaluateStorytellerCheckpoint(directory, world) : evaluateLlavaCheckpoint(directory, world),
  clip: registryModel<CLIPModel>((model, directory, world) => evaluateVision(model, loadTokenizer(directory), world)),
  // A Llama is the language backbone, or LLaVA's blind twin (config.json mllm_labs.blind_twin_of), measured on llava's metrics with no image.
  llama: async (directory, world) =>
    readHFConfig(directory).json.mllm_labs?.blind_twin_of
      ? evaluateLlavaCheckpoint(directory, world)
      : registryModel<LlamaForCausalLM>((model, dir, w) => evaluateLanguage(model, loadTokenizer(dir), w))(directory, world),
  mllm_audio_encoder: registryModel<AudioEncoder>((model, _directory, world) => evaluateAudio(model, world)),
  // The labs' BLIP-2 bridge; a transformers BLIP-2 checkpoint is refused with a message.
  "blip-2": async (directory, world) => {
    const pipeline = loadBlip2Pipeline(directory);
    try {
      return await evaluateBlip2(pipeline, world);
    } finally {
      pipeline.dispose();
    }
  },
  mllm_modality_llm: evaluateModality, // lab 03's sensors and points bridges (the LLM by reference, as blip-2)
};

export interface EvalResult {
  readonly checkpoint: string;
  readonly model_type: string;
  readonly metrics: Record<string, number>;
  /** The same metrics for the baselines (blind, other image, chance), for the labs' models; absent for the backbones. */
  readonly baselines?: Record<string, Record<string, number>>;
  /** The card's metrics, when the folder has a card.json. */
  readonly card_metrics?: Record<string, number>;
}

/** Recomputes the metrics of a backbone checkpoint on the world's test split. */
export async function evaluateCheckpoint(directory: string, world: string): Promise<EvalResult> {
  // A peft adapter folder (lora-sweep): its base with the adapter applied.
  const adapter =
    !fs.existsSync(path.join(directory, "config.json")) && fs.existsSync(path.join(directory, "adapter_config.json"));
  if (!adapter && !fs.existsSync(path.join(directory, "config.json")))
    throw new Error(`eval: ${directory} is not a checkpoint folder (no config.json, nor a peft adapter's adapter_config.json)`);
  const type = adapter ? "lora" : modelType(readHFConfig(directory));
  const evaluate = adapter ? evaluateLoraAdapter : EVALUATORS[type];
  if (!evaluate)
    throw new Error(
      `eval: ${directory} has model_type ${JSON.stringify(type)}; eval knows ${Object.keys(EVALUATORS).join(", ")}`,
    );
  const { metrics, baselines } = await evaluate(directory, world);
  const cardFile = path.join(directory, "card.json");
  const card = fs.existsSync(cardFile) ? (JSON.parse(fs.readFileSync(cardFile, "utf8")) as CheckpointCard) : undefined;
  return {
    checkpoint: directory,
    model_type: type,
    metrics,
    ...(baselines ? { baselines } : {}),
    ...(card ? { card_metrics: card.metrics } : {}),
  };
}

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
import type { CheckpointCard } from "./common";
import { refuseExistingCheckpoint } from "./checkpoint_folder";

export const BACKBONES = ["vision", "language", "audio"] as const;
export type BackboneName = (typeof BACKBONES)[number];

/** Trains one backbone and writes its checkpoint (config, weights, tokenizer, card). */
export async function pretrain(name: string, args: PretrainArgs & { force?: boolean }): Promise<CheckpointCard> {
  if (!(BACKBONES as readonly string[]).includes(name)) throw new Error(`pretrain: unknown backbone ${JSON.stringify(name)}; expected one of ${BACKBONES.join(", ")}`);
  if (!args.dryRun) refuseExistingCheckpoint(args.out, args.force); // before training, so no run is wasted
  const run = { vision: pretrainVision, language: pretrainLanguage, audio: pretrainAudio }[name as BackboneName];
  const { model, card } = await run(args);
  model.dispose();
  return card;
}

/**
 * model_type → how a loaded backbone is measured. The model itself is built
 * and loaded by the model registry (models/registry.ts), so a new
 * architecture needs only its evaluator here.
 */
const EVALUATORS: Record<string, (model: Module, directory: string, world: string) => Promise<Record<string, number>>> = {
  clip: (model, directory, world) => evaluateVision(model as CLIPModel, loadTokenizer(directory), world),
  llama: (model, directory, world) => evaluateLanguage(model as LlamaForCausalLM, loadTokenizer(directory), world),
  mllm_audio_encoder: (model, _directory, world) => evaluateAudio(model as AudioEncoder, world),
};

export interface EvalResult {
  readonly checkpoint: string;
  readonly model_type: string;
  readonly metrics: Record<string, number>;
  /** The card's metrics, when the folder has a card.json. */
  readonly card_metrics?: Record<string, number>;
}

/** Recomputes the metrics of a backbone checkpoint on the world's test split. */
export async function evaluateCheckpoint(directory: string, world: string): Promise<EvalResult> {
  if (!fs.existsSync(path.join(directory, "config.json"))) throw new Error(`eval: ${directory} is not a checkpoint folder (no config.json)`);
  const type = modelType(readHFConfig(directory));
  const evaluate = EVALUATORS[type];
  if (!evaluate) throw new Error(`eval: ${directory} has model_type ${JSON.stringify(type)}; eval knows the backbones ${Object.keys(EVALUATORS).join(", ")}`);
  const { model } = loadPretrained(directory);
  let metrics: Record<string, number>;
  try {
    metrics = await evaluate(model, directory, world);
  } finally {
    model.dispose();
  }
  const cardFile = path.join(directory, "card.json");
  const card = fs.existsSync(cardFile) ? (JSON.parse(fs.readFileSync(cardFile, "utf8")) as CheckpointCard) : undefined;
  return { checkpoint: directory, model_type: type, metrics, ...(card ? { card_metrics: card.metrics } : {}) };
}

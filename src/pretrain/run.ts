/**
 * `npm run pretrain -- <name>` and `mllm-labs eval <checkpoint-dir>`: make a
 * backbone checkpoint, and recompute a checkpoint's card metrics.
 */
import * as fs from "fs";
import * as path from "path";
import { readHFConfig, modelType } from "../io/hf_config";
import { loadCLIP, loadLlama, loadAudioEncoder } from "../io/pretrained";
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

/** model_type → how its checkpoint is loaded and measured (the model is disposed after). */
const EVALUATORS: Record<string, (directory: string, world: string) => Promise<Record<string, number>>> = {
  clip: (directory, world) => withModel(loadCLIP(directory), (model) => evaluateVision(model, loadTokenizer(directory), world)),
  llama: (directory, world) => withModel(loadLlama(directory), (model) => evaluateLanguage(model, loadTokenizer(directory), world)),
  mllm_audio_encoder: (directory, world) => withModel(loadAudioEncoder(directory), (model) => evaluateAudio(model, world)),
};

async function withModel<M extends { dispose(): void }, T>(model: M, use: (model: M) => Promise<T>): Promise<T> {
  try {
    return await use(model);
  } finally {
    model.dispose();
  }
}

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
  const metrics = await evaluate(directory, world);
  const cardFile = path.join(directory, "card.json");
  const card = fs.existsSync(cardFile) ? (JSON.parse(fs.readFileSync(cardFile, "utf8")) as CheckpointCard) : undefined;
  return { checkpoint: directory, model_type: type, metrics, ...(card ? { card_metrics: card.metrics } : {}) };
}

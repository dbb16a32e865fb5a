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
import { pretrainBlip2, evaluateBlip2, loadBlip2Pipeline } from "./blip2";
import type { CheckpointCard } from "./common";

export const BACKBONES = ["vision", "language", "audio"] as const;
export type BackboneName = (typeof BACKBONES)[number];
/** What `npm run pretrain -- NAME` makes: the backbones, then the labs' models built on them. */
export const PRETRAINED = [...BACKBONES, "blip2"] as const;
export type PretrainedName = (typeof PRETRAINED)[number];

/** Trains one backbone and writes its checkpoint (config, weights, tokenizer, card). */
export async function pretrain(name: string, args: PretrainArgs): Promise<CheckpointCard> {
  if (!(PRETRAINED as readonly string[]).includes(name)) throw new Error(`pretrain: unknown model ${JSON.stringify(name)}; expected one of ${PRETRAINED.join(", ")}`);
  const run = { vision: pretrainVision, language: pretrainLanguage, audio: pretrainAudio, blip2: pretrainBlip2 }[name as PretrainedName];
  const { model, card } = await run(args);
  model.dispose();
  return card;
}

/** What an evaluator measures: the metrics and, for the labs' models, the same metrics of the baselines. */
interface Measured {
  readonly metrics: Record<string, number>;
  readonly baselines?: Record<string, Record<string, number>>;
}

/** model_type → how its checkpoint is loaded and measured (the model is disposed after). */
const EVALUATORS: Record<string, (directory: string, world: string) => Promise<Measured>> = {
  clip: (directory, world) => withModel(loadCLIP(directory), async (model) => ({ metrics: await evaluateVision(model, loadTokenizer(directory), world) })),
  llama: (directory, world) => withModel(loadLlama(directory), async (model) => ({ metrics: await evaluateLanguage(model, loadTokenizer(directory), world) })),
  mllm_audio_encoder: (directory, world) => withModel(loadAudioEncoder(directory), async (model) => ({ metrics: await evaluateAudio(model, world) })),
  // The labs' BLIP-2 bridge (config.json names its frozen backbones); a transformers BLIP-2 checkpoint is refused with a message.
  "blip-2": (directory, world) => withModel(loadBlip2Pipeline(directory), (pipeline) => evaluateBlip2(pipeline, world)),
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
  /** The same metrics for the baselines (blind, other image, chance), for the labs' models; absent for the backbones. */
  readonly baselines?: Record<string, Record<string, number>>;
  /** The card's metrics, when the folder has a card.json. */
  readonly card_metrics?: Record<string, number>;
}

/** Recomputes the metrics of a backbone checkpoint on the world's test split. */
export async function evaluateCheckpoint(directory: string, world: string): Promise<EvalResult> {
  if (!fs.existsSync(path.join(directory, "config.json"))) throw new Error(`eval: ${directory} is not a checkpoint folder (no config.json)`);
  const type = modelType(readHFConfig(directory));
  const evaluate = EVALUATORS[type];
  if (!evaluate) throw new Error(`eval: ${directory} has model_type ${JSON.stringify(type)}; eval knows ${Object.keys(EVALUATORS).join(", ")}`);
  const { metrics, baselines } = await evaluate(directory, world);
  const cardFile = path.join(directory, "card.json");
  const card = fs.existsSync(cardFile) ? (JSON.parse(fs.readFileSync(cardFile, "utf8")) as CheckpointCard) : undefined;
  return { checkpoint: directory, model_type: type, metrics, ...(baselines ? { baselines } : {}), ...(card ? { card_metrics: card.metrics } : {}) };
}

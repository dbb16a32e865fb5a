/**
 * A LLaVA model assembled from the project's two backbones, as LLaVA starts
 * (`initialize_vision_modules`): the CLIP image tower from
 * `data/checkpoints/vision`, the Llama language model from
 * `data/checkpoints/language`, and a freshly initialised projector between
 * them. The design choices the lab ablates are options: the tower layer the
 * features come from and the projector (linear or 2-layer MLP).
 *
 * Reference: haotian-liu/LLaVA `llava/model/llava_arch.py`
 * (`initialize_vision_modules`, `build_vision_projector`).
 */
import * as path from "node:path";
import { LlavaForConditionalGeneration, type LlavaConfig, type LlavaProjectorType } from "../models/llava";
import { loadCLIPVision, loadLlama } from "../io/pretrained";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer";
import type { Module } from "../nn/module";
import { IMAGE_PLACEHOLDER } from "../data/conversation";

/** Options of {@link llavaFromBackbones}. */
export interface LlavaFromBackbonesArgs {
  /** CLIP checkpoint folder (its image tower is used). Default `data/checkpoints/vision` under `root`. */
  readonly vision?: string;
  /** Llama checkpoint folder with the tokenizer. Default `data/checkpoints/language` under `root`. */
  readonly language?: string;
  /** Project folder the defaults are relative to. Default the current directory. */
  readonly root?: string;
  /** Tower hidden state the features come from: −1 (last layer) or −2 (LLaVA's penultimate). Default −2. */
  readonly visionFeatureLayer?: number;
  /** Default `mlp2x_gelu` (LLaVA-1.5); `linear` is LLaVA-1's. */
  readonly projectorType?: LlavaProjectorType;
  /** Each image token's projector reads its window × window patch neighbourhood (`LlavaConfig.projectorWindow`). Default 1 (off). */
  readonly projectorWindow?: number;
  /** Seed of the projector's initialisation. Default 0. */
  readonly seed?: number;
}

/** The backbones joined by a new projector; the tokenizer is the language backbone's. */
export function llavaFromBackbones(args: LlavaFromBackbonesArgs = {}): {
  model: LlavaForConditionalGeneration;
  tokenizer: TextTokenizer;
} {
  const root = args.root ?? ".";
  const visionDir = args.vision ?? path.join(root, "data/checkpoints/vision");
  const languageDir = args.language ?? path.join(root, "data/checkpoints/language");
  const layer = args.visionFeatureLayer ?? -2;
  if (!Number.isInteger(layer)) throw new Error(`llavaFromBackbones: visionFeatureLayer must be an integer, got ${layer}`);
  const tokenizer = loadTokenizer(languageDir);
  const vision = loadCLIPVision(visionDir);
  let language;
  try {
    language = loadLlama(languageDir);
  } catch (error) {
    vision.dispose();
    throw error;
  }
  try {
    if (language.config.vocabSize !== tokenizer.vocabSize)
      throw new Error(
        `llavaFromBackbones: ${languageDir} has vocab_size ${language.config.vocabSize} but its tokenizer ${tokenizer.vocabSize} tokens`,
      );
    const config: LlavaConfig = {
      vision: vision.config,
      text: language.config,
      imageTokenId: tokenizer.tokenId(IMAGE_PLACEHOLDER),
      visionFeatureLayers: [layer],
      visionFeatureSelectStrategy: "default",
      projectorHiddenAct: "gelu",
      projectorBias: true,
      projectorType: args.projectorType ?? "mlp2x_gelu",
      projectorWindow: args.projectorWindow ?? 1,
      seed: args.seed ?? 0,
    };
    const model = new LlavaForConditionalGeneration(config);
    try {
      copyParameters(vision, model.visionTower, visionDir);
      copyParameters(language, model.languageModel, languageDir);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return { model, tokenizer };
  } finally {
    vision.dispose();
    language.dispose();
  }
}

/** Copies every parameter of `source` into `target` (same names and shapes). */
function copyParameters(source: Module, target: Module, where: string): void {
  const state = source.stateDict();
  target.loadParameters((name) => state[name]?.clone(), where);
}

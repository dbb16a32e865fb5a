/**
 * `npm run pretrain -- storyteller`: lab 05's visual storyteller. Lab 02's
 * LLaVA (../llava: the tiny CLIP tower, the mlp2x_gelu projector, the 4-layer
 * Llama) is tuned to tell a five-frame story, one sentence per frame.
 *
 * - Five frames × 64 patch tokens would be 320 positions, over the LLM's 256.
 *   The model pools each frame's projected 8×8 token grid with stride 2
 *   (LLaVA-OneVision's `get_2dPool`, `LlavaConfig.imagePoolStride`): 16 tokens
 *   per frame, 80 for the story.
 * - The user turn is the multi-image prompt: "picture k: <image>" per frame
 *   (text separators, {@link STORYTELLER_PROMPT}), then the request; the
 *   assistant turn is the five reference sentences. Loss on the answer only.
 * - The tower stays frozen (its features are computed once per frame); the
 *   projector and the whole LLM learn, as in LLaVA's stage 2.
 * - Data: the stored train split and stories drawn fresh from the world's
 *   generator (`sampleStory`, rendered into a filmstrip as `make-data` renders
 *   them), seeded apart from the stored splits.
 *
 * {@link evaluateStoryteller} scores stories on the test split with the story
 * metrics (grounding, hallucination, repetition, order) and BLEU-4, CIDEr-D
 * and ROUGE-L, beside the issue's baselines: lab 02's LLaVA captioning each
 * frame alone, the storyteller given the frames shuffled, and its LLM with no
 * image.
 *
 * Papers: Huang et al., "Visual Storytelling" (VIST, 2016); Li et al.,
 * "LLaVA-OneVision" (2024) and Zhang et al., "LLaVA-NeXT-Video" (2024) for the
 * pooled image tokens; Liu et al., "Improved Baselines with Visual Instruction
 * Tuning" (2023). Reference: LLaVA-VL/LLaVA-NeXT `llava/model/llava_arch.py`
 * (`get_2dPool`), haotian-liu/LLaVA `llava/train/train.py`.
 */
import * as fs from "fs";
import * as path from "path";
import { LlavaForConditionalGeneration } from "../models/llava";
import { llavaConfigToHF } from "../models/llava_spec";
import { loadLlava as loadLlavaModel } from "../io/pretrained";
import { readHFConfig } from "../io/hf_config";
import { loadTokenizer, type ChatMessage, type TextTokenizer } from "../tokenizer/tokenizer";
import { tokenizeConversation, type ConversationTurn } from "../data/conversation";
import { multiImagePrompt, storyText } from "../data/story_prompt";
import { sampleStory, type Story } from "../data/story";
import { sceneSvg, filmstrip } from "../data/scene";
import { openSplit } from "../data/loaders";
import { decodeRgb } from "../preprocess/clip_image";
import { storyMetrics, frameAnnotations, type FrameAnnotation } from "../metrics/story";
import { chatBatch, type ChatDecodingOptions } from "../pipelines/llava_chat";
import { Random } from "../util/random";
import { LlavaTrainer, llavaBatch, type VisionFeatureCache } from "./llava_training";
import { ObjectMapHead, checkObjectMapObjective, objectMapTargets, tokenGridSide, type ObjectMapObjective } from "./object_map";
import { featureCache, loadLlava, runStage, type ImageSource, type LoadedLlava, type StageRun } from "./llava";
import { baselineTableMarkdown, machineRecord, writeCheckpoint, type CheckpointCard } from "./common";
import type { PretrainArgs } from "./vision";

/** Frames per story (the world's `stories` set). */
export const STORY_FRAMES = 5;
/** Side of a frame in pixels (the filmstrip is STORY_FRAMES × this wide). */
const FRAME_SIZE = 64;

/** Folders relative to the storyteller checkpoint: the LLaVA it starts from, which also captions frames for a baseline. */
export const STORYTELLER_NEIGHBOURS = { llava: "../llava" } as const;

/** The storyteller's prompt: the text before each frame's `<image>` (`{k}` = frame number) and the request after them. */
export interface StorytellerPrompt {
  readonly frameSeparator: string;
  readonly instruction: string;
}

/**
 * Text separators ("picture k: ") rather than bare placeholders: 80 image tokens in a row leave
 * the LLM only positions to tell where one frame ends, while "picture k" marks each boundary with
 * words the model already reads (the world's captions say "picture") and numbers the frame that
 * sentence k must tell; they cost 5 × 5 = 25 positions, and no parameter (frame-index embeddings
 * would be new weights, learned from 300 stories).
 */
export const STORYTELLER_PROMPT: StorytellerPrompt = {
  frameSeparator: "picture {k}: ",
  instruction: "tell the story of these pictures, one sentence per picture.",
};

/** The per-frame-caption baseline's request to lab 02's LLaVA (one of its brief-description prompts). */
export const CAPTION_PROMPT = "describe the image briefly.";

/** How the storyteller trains. */
export interface StorytellerPlan {
  readonly steps: number;
  readonly batchSize: number;
  /** Peak learning rate (linear warm-up, cosine to 0.1 of it). */
  readonly learningRate: number;
  /** Stories drawn fresh from the world's generator, added to the 300 stored training stories. */
  readonly freshStories: number;
  /** Image-token pooling stride (`LlavaConfig.imagePoolStride`): 2 → 16 tokens per frame. */
  readonly imagePoolStride: number;
  /** Stored training stories used (the first N; smoke tests). Default all. */
  readonly storedRecords?: number;
  /**
   * The object-map objective beside the story loss (`object_map.ts`: each pooled token asked which colour–shape pairs
   * are centred in its cell; the read-out is dropped after training). Default none.
   */
  readonly objectMap?: ObjectMapObjective;
  /**
   * A stage before the story training, on the object map alone (needs `objectMap`): the projector and the read-out learn
   * which pairs each pooled token's cell holds, the LLM is not run; the story training then starts from that projector
   * with the same read-out. Default none.
   */
  readonly objectMapStage?: ObjectMapStagePlan;
}

/** The object-map stage's schedule ({@link StorytellerPlan.objectMapStage}). */
export interface ObjectMapStagePlan {
  readonly steps: number;
  /** Peak learning rate (linear warm-up, cosine to 0.1 of it). */
  readonly learningRate: number;
}

/** Throws, quoting the value, unless the plan's object-map stage is usable. */
function checkObjectMapStage(plan: StorytellerPlan): void {
  const stage = plan.objectMapStage;
  if (!stage) return;
  if (!plan.objectMap)
    throw new Error(
      "pretrain storyteller: objectMapStage needs objectMap (the stage trains its read-out, the story training keeps it)",
    );
  if (!(Number.isInteger(stage.steps) && stage.steps > 0))
    throw new Error(`pretrain storyteller: objectMapStage.steps must be a positive integer, got ${String(stage.steps)}`);
  if (!(stage.learningRate > 0 && Number.isFinite(stage.learningRate)))
    throw new Error(
      `pretrain storyteller: objectMapStage.learningRate must be a positive number, got ${String(stage.learningRate)}`,
    );
}

/**
 * The card's run, sized for the 30 minutes on the shared 2-core machine. Without the object map a step of 16 stories
 * took about 1.0–1.3 s (one or two threads alike; that run took 1,101 s alone and 1,431 s beside a CI run), the 4,000
 * fresh stories and their tower features about 2 minutes. 1,000 steps of 16 = 16,000 stories, about 3.7 passes over
 * 300 stored + 4,000 fresh. Peak learning rate 1e-3, lab 02's stage-2 rate on this model. The earlier plan (240 steps,
 * 1,500 fresh stories; 270 s) stopped with the loss still falling (0.54); 1,000 steps end at 0.36 without the object
 * map and 0.33 with it.
 *
 * The object map (weight 4; docs/lab05-plan.md, "The object map"): grounding precision 0.801 → 0.863, hallucination
 * 0.291 → 0.173 on the test split (weight 1: 0.843 / 0.202; 16: 0.833 / 0.209); with the object-map stage first,
 * 0.932 / 0.043 (1,500 stage steps: 0.928 / 0.061; 5,000: 0.928 / 0.047). It runs the projector a second time
 * per step: 1.39 × the step's time (`node bench/storyteller_step.js`: 0.69 → 0.96 s at one thread, beside another run;
 * 1.27 × before the native Tile and PadV2 made the rest of the step faster). The object-map
 * stage before it (3,000 steps on the map alone, about 0.1 s a step: the LLM is not run) starts the story training from
 * a projector that already keeps each cell's shapes, and the story training keeps them (docs/lab05-plan.md, "The
 * object-map stage"). The card records its own run's time.
 */
export const STORYTELLER_PLAN: StorytellerPlan = {
  steps: 1000,
  batchSize: 16,
  learningRate: 1e-3,
  freshStories: 4000,
  imagePoolStride: 2,
  objectMap: { weight: 4 },
  objectMapStage: { steps: 3000, learningRate: 1e-3 },
};

/** Test stories of the card's quick eval (`quick_eval`, reproduced by test/storyteller.test.ts). */
export const STORYTELLER_QUICK_EVAL_LIMIT = 8;
/** New tokens at most per story (the references are 30–60 tokens) and per frame caption. */
export const STORY_TOKENS = 80;
const CAPTION_TOKENS = 24;
/** Seed of the fresh training stories: apart from the world's split seeds (derived from the world seed and the set's name). */
export const FRESH_STORY_SEED_OFFSET = 31;
/** Seed of the shuffled-frames baseline's permutations. */
export const SHUFFLE_SEED = 2028;
/** Seed of the object-map read-out (added to the run's seed). */
const OBJECT_MAP_SEED_OFFSET = 13;
/** Seed of the object-map stage's batch order (added to the run's seed; the story training's is 12). */
const OBJECT_MAP_STAGE_SEED_OFFSET = 14;

// ---------------------------------------------------------------------------------------------------------------
// Data

/** A story as training and evaluation use it: its five frames, sentences and annotations. */
export interface StoryExample {
  readonly id: string;
  /** One per frame, in order (RGB 64×64 pixels cut from the filmstrip). */
  readonly frames: readonly ImageSource[];
  readonly sentences: readonly string[];
  readonly annotations: readonly FrameAnnotation[];
}

/** Cuts a filmstrip (PNG path or bytes) into its frames' RGB pixels, checking its size. */
export async function filmstripFrames(
  source: string | Uint8Array,
  frames = STORY_FRAMES,
  size = FRAME_SIZE,
): Promise<Uint8Array[]> {
  const strip = await decodeRgb(source);
  const where = typeof source === "string" ? source : "the filmstrip";
  if (strip.width !== frames * size || strip.height !== size)
    throw new Error(
      `storyteller: ${where} is ${strip.width}×${strip.height}; expected ${frames} frames of ${size}×${size} side by side`,
    );
  return Array.from({ length: frames }, (_, f) => {
    const out = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++)
      out.set(strip.data.subarray((y * strip.width + f * size) * 3, (y * strip.width + (f + 1) * size) * 3), y * size * 3);
    return out;
  });
}

interface StoredStoryRecord {
  id: string;
  image: string;
  frames: { event: FrameAnnotation["event"]; sentence: string; objects: FrameAnnotation["objects"] }[];
}

/** The first `limit` stories of a stored split, frames decoded. */
export async function storedStories(world: string, split: "train" | "val" | "test", limit?: number): Promise<StoryExample[]> {
  const opened = openSplit<StoredStoryRecord>(world, "stories", split);
  const records = limit === undefined ? opened.records : opened.records.slice(0, limit);
  const out: StoryExample[] = [];
  for (const r of records) {
    if (r.frames.length !== STORY_FRAMES)
      throw new Error(`storyteller: story ${r.id} has ${r.frames.length} frames; expected ${STORY_FRAMES}`);
    const rgb = await filmstripFrames(path.join(opened.dir, r.image));
    out.push({
      id: `${split}/${r.id}`,
      frames: rgb.map((pixels, f) => ({ key: `stories/${split}/${r.id}/${f}`, rgb: pixels })),
      sentences: r.frames.map((f) => f.sentence),
      annotations: r.frames.map((f) => ({ event: f.event, objects: f.objects })),
    });
  }
  return out;
}

/** Stories drawn fresh from the generator, rendered as the world renders them (a filmstrip of the scenes' SVGs). */
export async function freshStories(count: number, seed: number): Promise<StoryExample[]> {
  const random = new Random(seed);
  const out: StoryExample[] = [];
  for (let k = 0; k < count; k++) {
    const story: Story = sampleStory(random, STORY_FRAMES, FRAME_SIZE);
    const rgb = await filmstripFrames(
      await filmstrip(
        story.frames.map((f) => sceneSvg(f.scene)),
        FRAME_SIZE,
      ),
    );
    out.push({
      id: `fresh/${k}`,
      frames: rgb.map((pixels, f) => ({ key: `fresh/stories/${seed}/${k}/${f}`, rgb: pixels })),
      sentences: story.frames.map((f) => f.sentence),
      annotations: frameAnnotations(story),
    });
  }
  return out;
}

/** The user turn of a story prompt (with or without the images). */
export function storytellerUserTurn(prompt: StorytellerPrompt = STORYTELLER_PROMPT, blind = false): string {
  // Blind: the request alone (no placeholders, no frame separators: nothing to separate).
  return blind ? prompt.instruction : multiImagePrompt(STORY_FRAMES, prompt);
}

/** A training conversation: the multi-image prompt, answered by the story's sentences. */
export function storytellerConversation(
  sentences: readonly string[],
  prompt: StorytellerPrompt = STORYTELLER_PROMPT,
): ConversationTurn[] {
  return [
    { from: "human", value: storytellerUserTurn(prompt) },
    { from: "gpt", value: storyText({ frames: sentences.map((sentence) => ({ sentence })) }) },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Model

/** Lab 02's LLaVA with image-token pooling: the same weights in a model whose config pools (a new model; `base` is kept). */
export function withImagePooling(base: LlavaForConditionalGeneration, stride: number): LlavaForConditionalGeneration {
  const model = new LlavaForConditionalGeneration({ ...base.config, imagePoolStride: stride });
  const weights = base.stateDict();
  model.loadParameters((name) => weights[name]?.clone(), "the base LLaVA");
  return model;
}

/** What config.json records under `mllm_labs.storyteller`: how to prompt the model, and its captioning baseline. */
export interface StorytellerMarker {
  readonly frames: number;
  readonly frame_separator: string;
  readonly instruction: string;
  readonly captioner: string;
}

/** A storyteller checkpoint: the model, its tokenizer and its prompt (from config.json), and where lab 02's LLaVA is. */
export interface LoadedStoryteller extends LoadedLlava {
  readonly prompt: StorytellerPrompt;
  /** The per-frame captioner's folder (absolute), when it exists. */
  readonly captioner?: string;
}

/** Whether a checkpoint folder is a storyteller (config.json `mllm_labs.storyteller`). */
export function isStoryteller(directory: string): boolean {
  return readHFConfig(directory).json.mllm_labs?.storyteller !== undefined;
}

/** Loads `data/checkpoints/storyteller`. */
export function loadStoryteller(directory: string): LoadedStoryteller {
  const config = readHFConfig(directory);
  const marker = config.json.mllm_labs?.storyteller as StorytellerMarker | undefined;
  if (config.json.model_type !== "llava" || !marker)
    throw new Error(
      `loadStoryteller: ${config.where} has model_type ${JSON.stringify(config.json.model_type)} and no mllm_labs.storyteller; expected a LLaVA storyteller (data/checkpoints/storyteller)`,
    );
  if (marker.frames !== STORY_FRAMES)
    throw new Error(`loadStoryteller: ${config.where} tells stories of ${marker.frames} frames; this code knows ${STORY_FRAMES}`);
  const captioner = path.resolve(directory, marker.captioner);
  return {
    model: loadLlavaModel(directory),
    tokenizer: loadTokenizer(directory),
    prompt: { frameSeparator: marker.frame_separator, instruction: marker.instruction },
    ...(fs.existsSync(path.join(captioner, "config.json")) ? { captioner } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Training

/** Options of {@link pretrainStoryteller} beyond the common ones. */
export interface StorytellerPretrainArgs extends PretrainArgs {
  /** Evaluate on the first N test stories only (smoke tests). Default all 50. */
  readonly evalLimit?: number;
  /** The LLaVA to start from. Default `../llava` beside `out`. */
  readonly llava?: string;
}

/** Trains the storyteller, evaluates it with its baselines and writes its checkpoint and card. */
export async function pretrainStoryteller(
  args: StorytellerPretrainArgs,
  planOverride?: StorytellerPlan,
): Promise<{ model: LlavaForConditionalGeneration; card: CheckpointCard & Record<string, unknown> }> {
  const log = args.log ?? console.log;
  const seed = args.seed ?? 0;
  let plan = planOverride ?? STORYTELLER_PLAN;
  if (plan.objectMap) checkObjectMapObjective(plan.objectMap);
  checkObjectMapStage(plan);
  if (args.steps !== undefined) {
    if (!(Number.isInteger(args.steps) && args.steps > 0))
      throw new Error(`pretrain storyteller: steps must be a positive integer, got ${args.steps}`);
    // --steps N sets the story steps, the object-map stage's in proportion (as `pretrain llava` scales stage 1)
    const stage = plan.objectMapStage;
    plan = {
      ...plan,
      steps: args.steps,
      ...(stage ? { objectMapStage: { ...stage, steps: Math.max(1, Math.round((stage.steps * args.steps) / plan.steps)) } } : {}),
    };
  }
  const batchSize = args.batchSize ?? plan.batchSize;
  const llavaDir = path.resolve(args.llava ?? path.resolve(args.out, STORYTELLER_NEIGHBOURS.llava));
  if (!fs.existsSync(path.join(llavaDir, "config.json")))
    throw new Error(
      `pretrain storyteller: the LLaVA to start from, ${llavaDir}, is missing (make it with npm run pretrain -- llava); the storyteller folder must sit beside it`,
    );
  const started = Date.now();
  const base = loadLlava(llavaDir);
  const model = withImagePooling(base.model, plan.imagePoolStride);
  const tokenizer = base.tokenizer;
  let trained = false;
  try {
    const imageTokens = model.imageTokensPerImage;
    const stored = await storedStories(args.world, "train", plan.storedRecords);
    const fresh = await freshStories(plan.freshStories, seed + FRESH_STORY_SEED_OFFSET);
    const stories = [...stored, ...fresh];
    log(
      `storyteller: ${stored.length} stored + ${fresh.length} fresh stories, ${imageTokens} tokens per frame (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
    const frames = stories.flatMap((s) => s.frames);
    const cache = featureCache(model, frames);
    await cache.precompute(frames.map((f) => f.key));
    log(`storyteller: tower features of ${cache.size} frames (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    const grid = tokenGridSide(imageTokens); // the pooled token grid (4×4 at stride 2)
    const head = plan.objectMap && new ObjectMapHead(model.config.text.hiddenSize, seed + OBJECT_MAP_SEED_OFFSET);
    let trainer: LlavaTrainer | undefined;
    let run: StageRun;
    let mapStage: StageRun | undefined;
    const storyBatch = async (batch: readonly StoryExample[]) => {
      // the targets first: they check the annotations, and nothing else of the batch exists yet if they throw
      const objectMaps = head
        ? objectMapTargets(
            batch.flatMap((s) => s.annotations.map((a) => a.objects)),
            grid,
            FRAME_SIZE,
          )
        : undefined;
      return {
        ...llavaBatch(
          batch.map((s) => tokenizeConversation(tokenizer, storytellerConversation(s.sentences), { imageTokens })),
          tokenizer.padTokenId,
          await cache.features(batch.flatMap((s) => s.frames.map((f) => f.key))),
        ),
        ...(objectMaps ? { objectMaps } : {}),
      };
    };
    try {
      if (plan.objectMapStage && head) {
        // the projector and the read-out alone, on the map alone (stage 1 freezes all but the projector)
        trainer = new LlavaTrainer(model, { stage: 1, objectMap: { weight: 1, head }, languageLoss: false });
        mapStage = await runStage(
          "storyteller object map",
          trainer,
          stories,
          plan.objectMapStage.steps,
          { batchSize, learningRate: plan.objectMapStage.learningRate, seed: seed + OBJECT_MAP_STAGE_SEED_OFFSET, log },
          storyBatch,
        );
        trainer.dispose();
        trainer = undefined;
      }
      // tower frozen; projector and LLM learn (and the object-map read-out, when on)
      trainer = new LlavaTrainer(model, {
        stage: 2,
        ...(plan.objectMap && head ? { objectMap: { ...plan.objectMap, head } } : {}),
      });
      run = await runStage(
        "storyteller",
        trainer,
        stories,
        plan.steps,
        { batchSize, learningRate: plan.learningRate, seed: seed + 12, log },
        storyBatch,
      );
    } finally {
      trainer?.dispose();
      head?.dispose();
      cache.clear();
    }
    const trainSeconds = (Date.now() - started) / 1000;
    log(`storyteller: trained in ${trainSeconds.toFixed(0)} s; evaluating`);
    const evaluated = Date.now();
    const evaluation = await evaluateStoryteller(model, tokenizer, args.world, {
      limit: args.evalLimit,
      captioner: base,
      log,
    });
    const quick =
      args.evalLimit === undefined
        ? await evaluateStoryteller(model, tokenizer, args.world, { limit: STORYTELLER_QUICK_EVAL_LIMIT, captioner: base })
        : undefined;
    const evalSeconds = (Date.now() - evaluated) / 1000;
    const card = storytellerCard({
      plan,
      batchSize,
      seed,
      model,
      stored: stored.length,
      fresh: fresh.length,
      run,
      ...(mapStage ? { mapStage } : {}),
      trainSeconds,
      evalSeconds,
      evaluation,
      quick,
    });
    if (!args.dryRun) {
      const config = {
        ...llavaConfigToHF(model.config),
        mllm_labs: {
          storyteller: {
            frames: STORY_FRAMES,
            frame_separator: STORYTELLER_PROMPT.frameSeparator,
            instruction: STORYTELLER_PROMPT.instruction,
            captioner: STORYTELLER_NEIGHBOURS.llava,
          } satisfies StorytellerMarker,
          note: "Lab 05's storyteller: lab 02's LLaVA with image-token pooling (mllm_labs_image_pool_stride), tuned on five-frame stories. Prompt: per frame frame_separator + <image>, then a newline and the instruction.",
        },
      };
      await writeCheckpoint(args.out, model, config, card, llavaDir);
      fs.appendFileSync(path.join(args.out, "README.md"), storytellerCardTables(card));
    }
    trained = true;
    return { model, card };
  } finally {
    base.model.dispose();
    if (!trained) model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

/** Decoding of the generated stories: greedy by default; beam search, repetition penalty, n-gram ban as `generate` defines them. */
export type StoryDecoding = ChatDecodingOptions;

/** Options of {@link evaluateStoryteller}. */
export interface EvaluateStorytellerOptions {
  /** The first `limit` test stories only. Default all 50. */
  readonly limit?: number;
  /** How the stories (the model's and the shuffled and blind baselines') are decoded. Default greedy. */
  readonly decoding?: StoryDecoding;
  /** Lab 02's LLaVA (unpooled), for the per-frame-caption baseline. Without it that baseline is left out. */
  readonly captioner?: LoadedLlava;
  /** The storyteller's prompt. Default {@link STORYTELLER_PROMPT}. */
  readonly prompt?: StorytellerPrompt;
  /** Stories told at once. Default 25. */
  readonly batchSize?: number;
  /** Progress lines. Default none. */
  readonly log?: (line: string) => void;
}

/** The model's metrics, the baselines' (same names), and a few stories side by side. */
export interface StorytellerEvaluation {
  readonly metrics: Record<string, number>;
  readonly baselines: Record<string, Record<string, number>>;
  /** The first stories: reference, the model's, and each baseline's. */
  readonly samples: { id: string; reference: string; stories: Record<string, string> }[];
}

/** Story metrics under the card's names (non-finite values, e.g. order with no two events matched, are left out). */
export function storytellerMetrics(stories: readonly string[], examples: readonly StoryExample[]): Record<string, number> {
  const m = storyMetrics(
    stories,
    examples.map((e) => e.annotations),
    { references: examples.map((e) => [storyText({ frames: e.sentences.map((sentence) => ({ sentence })) })]) },
  );
  const named: Record<string, number | undefined> = {
    grounding_precision: m.precision,
    grounding_recall: m.recall,
    object_precision: m.objectPrecision,
    object_recall: m.objectRecall,
    event_precision: m.eventPrecision,
    event_recall: m.eventRecall,
    hallucination_rate: m.hallucinationRate,
    repetition: m.repetition,
    order: m.order,
    bleu4: m.bleu4,
    cider_d: m.ciderD,
    rouge_l: m.rougeL,
  };
  return Object.fromEntries(
    Object.entries(named).filter((entry): entry is [string, number] => entry[1] !== undefined && Number.isFinite(entry[1])),
  );
}

/** A seeded permutation of the frames that is not the identity. */
function shuffledOrder(random: Random): number[] {
  for (;;) {
    const order = random.shuffle(Array.from({ length: STORY_FRAMES }, (_, k) => k));
    if (order.some((f, k) => f !== k)) return order;
  }
}

/** Tells the stories of `examples` (frames in `orders[i]` when given; no image when `blind`). */
async function tellStories(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  examples: readonly StoryExample[],
  cache: VisionFeatureCache | undefined,
  options: { prompt: StorytellerPrompt; decoding: StoryDecoding; batchSize: number; orders?: readonly number[][] },
): Promise<string[]> {
  const out: string[] = [];
  const messages: ChatMessage[] = [{ role: "user", content: storytellerUserTurn(options.prompt, cache === undefined) }];
  for (let start = 0; start < examples.length; start += options.batchSize) {
    const chunk = examples.slice(start, start + options.batchSize);
    const features =
      cache &&
      (await cache.features(
        chunk.flatMap((e, i) => (options.orders?.[start + i] ?? e.frames.map((_, f) => f)).map((f) => e.frames[f].key)),
      ));
    try {
      const replies = await chatBatch(
        model,
        tokenizer,
        chunk.map(() => messages),
        features ? { visionFeatures: features, framesPerRow: STORY_FRAMES } : {},
        { maxNewTokens: STORY_TOKENS, ...options.decoding },
      );
      out.push(...replies.map((r) => r.text.trim()));
    } finally {
      features?.dispose();
    }
  }
  return out;
}

/** Lab 02's LLaVA captions each frame alone; a story is its five captions in frame order. */
async function perFrameCaptionStories(captioner: LoadedLlava, examples: readonly StoryExample[]): Promise<string[]> {
  const frames = examples.flatMap((e) => e.frames);
  const cache = featureCache(captioner.model, frames);
  const captions: string[] = [];
  try {
    for (let start = 0; start < frames.length; start += 64) {
      const chunk = frames.slice(start, start + 64);
      const features = await cache.features(chunk.map((f) => f.key));
      try {
        const replies = await chatBatch(
          captioner.model,
          captioner.tokenizer,
          chunk.map(() => [{ role: "user", content: CAPTION_PROMPT }]),
          { visionFeatures: features },
          { maxNewTokens: CAPTION_TOKENS },
        );
        captions.push(...replies.map((r) => sentenceOf(r.text)));
      } finally {
        features.dispose();
      }
    }
  } finally {
    cache.clear();
  }
  return examples.map((_, i) => captions.slice(i * STORY_FRAMES, (i + 1) * STORY_FRAMES).join(" "));
}

/** A caption as one sentence (ends with a period, so the story parser splits the captions apart). */
function sentenceOf(text: string): string {
  const trimmed = text.trim();
  return trimmed.endsWith(".") ? trimmed : `${trimmed}.`;
}

/**
 * Tells a story for each test story and scores it ({@link storytellerMetrics}:
 * grounding, hallucination, repetition, order, BLEU-4, CIDEr-D, ROUGE-L against
 * the reference sentences), beside the baselines: `per_frame_captions` (lab
 * 02's LLaVA captioning each frame alone, captions concatenated; needs
 * `captioner`), `shuffled_frames` (the same model given the frames in a seeded
 * random order, scored against the true frames) and `blind` (the same model's
 * LLM with the prompt's placeholders and separators removed, no image).
 */
export async function evaluateStoryteller(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  world: string,
  options: EvaluateStorytellerOptions = {},
): Promise<StorytellerEvaluation> {
  const { limit } = options;
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
    throw new Error(`evaluateStoryteller: limit must be a positive integer (test stories), got ${limit}`);
  const batchSize = options.batchSize ?? 25;
  if (!(Number.isInteger(batchSize) && batchSize > 0))
    throw new Error(`evaluateStoryteller: batchSize must be a positive integer, got ${batchSize}`);
  const needed = STORY_FRAMES * model.imageTokensPerImage;
  if (needed > model.config.text.maxPositionEmbeddings / 2)
    throw new Error(
      `evaluateStoryteller: ${STORY_FRAMES} frames × ${model.imageTokensPerImage} image tokens = ${needed} positions leave too little of the LLM's ${model.config.text.maxPositionEmbeddings} for the story; use a model with imagePoolStride ≥ 2 (the storyteller), not lab 02's LLaVA`,
    );
  const log = options.log ?? (() => {});
  const started = Date.now();
  const examples = await storedStories(world, "test", limit);
  const tell = { prompt: options.prompt ?? STORYTELLER_PROMPT, decoding: options.decoding ?? {}, batchSize };
  const cache = featureCache(
    model,
    examples.flatMap((e) => e.frames),
  );
  const random = new Random(SHUFFLE_SEED);
  const orders = examples.map(() => shuffledOrder(random));
  let told: string[];
  let shuffled: string[];
  try {
    told = await tellStories(model, tokenizer, examples, cache, tell);
    log(`storyteller eval: ${examples.length} stories in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    shuffled = await tellStories(model, tokenizer, examples, cache, { ...tell, orders });
  } finally {
    cache.clear();
  }
  const blind = await tellStories(model, tokenizer, examples, undefined, tell);
  const stories: Record<string, string[]> = { shuffled_frames: shuffled, blind };
  if (options.captioner) stories.per_frame_captions = await perFrameCaptionStories(options.captioner, examples);
  log(`storyteller eval: baselines in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const baselines = Object.fromEntries(Object.entries(stories).map(([name, list]) => [name, storytellerMetrics(list, examples)]));
  return {
    metrics: storytellerMetrics(told, examples),
    baselines,
    samples: examples.slice(0, 3).map((e, i) => ({
      id: e.id,
      reference: e.sentences.join(" "),
      stories: { model: told[i], ...Object.fromEntries(Object.entries(stories).map(([name, list]) => [name, list[i]])) },
    })),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Card

export const STORYTELLER_METRIC_NOTES: Record<string, string> = {
  grounding_precision:
    "object and event mentions of sentence k that are in frame k (objects present or just gone, the frame's event) / all mentions; greedy decoding, ≤ 80 tokens, the 50 test stories",
  grounding_recall: "objects the frame's event is about and the event itself, named by sentence k / all of them",
  hallucination_rate: "object mentions of sentence k naming no object of frame k (CHAIR-i per frame)",
  repetition: "4-grams of a sentence already said in an earlier one / all 4-grams",
  order: "pairs of told events (matched to frames by event and actor) told in frame order (1 in order, ≈0.5 shuffled)",
  bleu4: "BLEU-4 of the story against the five reference sentences joined",
  cider_d: "CIDEr-D, same reference (one per story, so the idf comes from the 50 references)",
  rouge_l: "ROUGE-L F (β 1.2), same reference",
};

interface StorytellerCardInputs {
  readonly plan: StorytellerPlan;
  readonly batchSize: number;
  readonly seed: number;
  readonly model: LlavaForConditionalGeneration;
  readonly stored: number;
  readonly fresh: number;
  readonly run: StageRun;
  /** The object-map stage before the story training, when the plan has one. */
  readonly mapStage?: StageRun;
  readonly trainSeconds: number;
  readonly evalSeconds: number;
  readonly evaluation: StorytellerEvaluation;
  readonly quick?: StorytellerEvaluation;
}

function storytellerCard(c: StorytellerCardInputs): CheckpointCard & Record<string, unknown> {
  return {
    name: "storyteller",
    title: "mllm-labs storyteller: lab 02's LLaVA with pooled image tokens, tuned to tell five-frame stories",
    description:
      `Lab 02's LLaVA (${STORYTELLER_NEIGHBOURS.llava}) with image-token pooling (LLaVA-OneVision's get_2dPool, stride ${c.plan.imagePoolStride}: ${c.model.imageTokensPerImage} tokens per frame, ${STORY_FRAMES * c.model.imageTokensPerImage} per story) tuned on the world's five-frame stories: ` +
      `the user turn is "${STORYTELLER_PROMPT.frameSeparator}<image>" per frame and "${STORYTELLER_PROMPT.instruction}", the answer the five reference sentences (answer-only loss); the tower is frozen, the projector and the LLM learn (${c.plan.steps} steps of ${c.batchSize}, peak learning rate ${c.plan.learningRate}).${c.plan.objectMap ? ` Beside the story loss, an object-map objective (weight ${c.plan.objectMap.weight}): a linear read-out asks each pooled image token which colour–shape pairs have their centre in its cell, from the frames' annotations, so the bridge keeps each object's shape where the LLM reads it; the read-out is dropped after training.` : ""}${c.plan.objectMapStage ? ` Before the story training, ${c.plan.objectMapStage.steps} steps (peak learning rate ${c.plan.objectMapStage.learningRate}) on the object map alone: the projector and the read-out learn, the LLM is not run.` : ""} The folder holds the whole model in transformers' LLaVA layout; config.json adds mllm_labs_image_pool_stride (transformers would not pool) and mllm_labs.storyteller (the prompt).`,
    model_type: "llava",
    parameters: c.model.parameterCount(),
    steps: c.plan.steps,
    batch_size: c.batchSize,
    train_seconds: Math.round(c.trainSeconds),
    ...machineRecord(),
    seed: c.seed,
    data: `${c.stored} stored training stories + ${c.fresh} drawn fresh from the world's generator (seed ${c.seed + FRESH_STORY_SEED_OFFSET}, rendered into filmstrips as make-data renders them); tower features computed once per frame`,
    loss_curve: c.run.curve,
    loss_every: c.run.every,
    ...(c.run.objectMapCurve ? { object_map_loss_curve: c.run.objectMapCurve } : {}),
    ...(c.mapStage ? { object_map_stage_curve: c.mapStage.curve, object_map_stage_every: c.mapStage.every } : {}),
    metrics: c.evaluation.metrics,
    metric_notes: STORYTELLER_METRIC_NOTES,
    command: "npm run pretrain -- storyteller",
    plan: c.plan,
    prompt: STORYTELLER_PROMPT,
    baselines: c.evaluation.baselines,
    baseline_notes: {
      per_frame_captions: `lab 02's LLaVA (${STORYTELLER_NEIGHBOURS.llava}, unpooled) asked "${CAPTION_PROMPT}" about each frame alone (greedy, ≤ ${CAPTION_TOKENS} tokens), the five captions joined in frame order`,
      shuffled_frames: `the storyteller given each story's frames in a seeded random order (seed ${SHUFFLE_SEED}, never the identity), scored against the true frames and reference`,
      blind:
        "the storyteller's LLM with no image: the prompt with its placeholders and frame separators removed (no blind twin is trained)",
    },
    baseline_checkpoints: { per_frame_captions: STORYTELLER_NEIGHBOURS.llava },
    samples: c.evaluation.samples,
    stage_seconds: {
      ...(c.mapStage ? { object_map: Math.round(c.mapStage.seconds) } : {}),
      train: Math.round(c.run.seconds),
      eval: Math.round(c.evalSeconds),
    },
    ...(c.quick
      ? { quick_eval: { limit: STORYTELLER_QUICK_EVAL_LIMIT, metrics: c.quick.metrics, baselines: c.quick.baselines } }
      : {}),
  };
}

/** The README's object-map section: the stage's curve and the map's loss beside the story loss (none without the map). */
function objectMapLines(card: CheckpointCard & Record<string, unknown>): string[] {
  const points = (curve: unknown, every: unknown) =>
    (curve as number[]).map((v, k) => `${(k + 1) * (every as number)}: ${v.toFixed(4)}`).join(", ");
  const lines: string[] = [];
  if (card.object_map_stage_curve)
    lines.push("## Object-map stage (the map alone)", "", points(card.object_map_stage_curve, card.object_map_stage_every), "");
  if (card.object_map_loss_curve)
    lines.push("## Object-map loss beside the story loss", "", points(card.object_map_loss_curve, card.loss_every), "");
  return lines;
}

/** The README's tables: every metric beside its baselines; the object map's curves; sample stories. */
export function storytellerCardTables(card: CheckpointCard & Record<string, unknown>): string {
  const baselines = card.baselines as Record<string, Record<string, number>>;
  const notes = card.baseline_notes as Record<string, string>;
  const columns = Object.keys(baselines);
  const samples = card.samples as StorytellerEvaluation["samples"];
  const stage = (card.plan as StorytellerPlan).objectMapStage;
  return [
    "",
    "## Baselines",
    "",
    ...columns.map((c) => `- ${c}: ${notes[c]}`),
    "",
    ...baselineTableMarkdown(card.metrics, baselines),
    "",
    "## Sample stories",
    "",
    ...samples.flatMap((s) => [
      `**${s.id}**`,
      "",
      `- reference: ${s.reference}`,
      ...Object.entries(s.stories).map(([name, text]) => `- ${name}: ${text}`),
      "",
    ]),
    ...objectMapLines(card),
    `Training ${card.train_seconds} s (fresh stories, tower features${stage ? `, ${stage.steps} object-map stage steps` : ""} and ${card.steps} story steps) on ${card.device}, threads ${card.threads}.`,
    "",
  ].join("\n");
}

/**
 * `mllm-labs eval` of a storyteller folder: {@link evaluateStoryteller} on the whole test split with its
 * prompt, the per-frame captions of the LLaVA its config names (when that folder exists) among the baselines.
 */
export async function evaluateStorytellerCheckpoint(
  directory: string,
  world: string,
  options: Pick<EvaluateStorytellerOptions, "limit" | "decoding" | "log"> = {},
): Promise<StorytellerEvaluation> {
  const storyteller = loadStoryteller(directory);
  const captioner = storyteller.captioner ? loadLlava(storyteller.captioner) : undefined;
  try {
    return await evaluateStoryteller(storyteller.model, storyteller.tokenizer, world, {
      ...options,
      prompt: storyteller.prompt,
      captioner,
    });
  } finally {
    storyteller.model.dispose();
    captioner?.model.dispose();
  }
}

/**
 * `npm run pretrain -- llava-code` and `-- llava-code-blind`: lab 02's code-generation model. In lab 02's mixture a
 * drawing program is one answer among many, and the LLaVA (../llava) writes programs of the right shape whose
 * coordinates are a few pixels off: none of the code test images renders back to the same pixels. The tower keeps each
 * object's pixel (bench/llava_position_detector_probe.js reads the exact integer centre of 0.87 of fresh objects from
 * its tokens), so the missing part is the training signal: a drawing program's coordinates are learnt only by writing
 * many of them. This run tunes the whole projector and LLM (the tower frozen, as in stage 2) of ../llava on code
 * conversations alone: the stored code train split plus scenes drawn fresh as the world draws the code set (one to
 * three objects), each program written in reading order (objects by y, then x; the render does not depend on the order).
 * A LoRA adapter of rank 32 on the same layers did not learn the coordinates (docs/lab02-plan.md), so this is a full
 * tune and its folder a whole LLaVA.
 *
 * Its blind baseline, `llava-code-blind`, is the blind twin (../llava-blind) tuned the same way on the same
 * conversations with the image removed; `mllm-labs eval` measures both, with ../llava before tuning, on the code
 * test split (the card's `eval_options`).
 *
 * Papers: Liu et al., "Improved Baselines with Visual Instruction Tuning" (LLaVA-1.5, 2023), stage 2; Lab 02's
 * drawing language (src/data/drawing_language.ts). Reference: haotian-liu/LLaVA `scripts/v1_5/finetune.sh`.
 */
import * as path from "path";
import { openSplit } from "../data/loaders";
import { CODE_INSTRUCTIONS, conversationFromPairs } from "../data/llava_instructions";
import { sampleScene, sceneSvg, svgToRgb, type Scene } from "../data/scene";
import { parseProgram, sceneToProgram } from "../data/drawing_language";
import { Random } from "../util/random";
import { LLAVA_NEIGHBOURS, type ImageSource, type LlavaTestSet } from "./llava";
import { llavaDomainMarkdown } from "./llava_domain";
import { runLlavaFullTune, type LlavaFullTuneCard } from "./llava_full_tune";
import type { PretrainArgs } from "./vision";

/** How llava-code (and its blind twin) is tuned. */
export interface LlavaCodePlan {
  /** Optimiser steps. Default 8,000 (6,000 drew 0.40 of the test images to the same pixels, 9,000 0.80: docs/lab02-plan.md). */
  readonly steps: number;
  /** Conversations per step. Default 16. */
  readonly batchSize: number;
  /** Peak learning rate (warm-up over min(50, steps / 10) steps, cosine to 0.1 of it): stage 2's. Default 1e-3. */
  readonly learningRate: number;
  /** Scenes drawn fresh (seed + {@link CODE_FRESH_SEED_OFFSET}), added to the code train split's 300. Default 32,000. */
  readonly freshScenes: number;
  /** Most objects in a fresh scene: the world's code set draws one to three. Default 3. */
  readonly maxObjects: number;
  /** Stored training records used (the first N; smoke tests). Default all. */
  readonly storedRecords?: number;
  /** What `mllm-labs eval` of the folder measures (the card's `eval_options`): the code test split, all of it. */
  readonly evaluation: { readonly sets: readonly LlavaTestSet[]; readonly limit?: number };
}

/** The committed plan (`npm run pretrain -- llava-code`; `-- llava-code-blind` follows it without the image). */
export const LLAVA_CODE_PLAN: LlavaCodePlan = {
  steps: 8000,
  batchSize: 16,
  learningRate: 1e-3,
  freshScenes: 32000,
  maxObjects: 3,
  evaluation: { sets: ["code"] },
};

/** Added to the run's seed for the fresh scenes: apart from llava's draws (3, 61–75), the domain adapters' (47, 53) and lora-sweep's (41). */
export const CODE_FRESH_SEED_OFFSET = 83;
/** Added to the run's seed for the batch order and the instructions' phrasing. */
const CODE_STAGE_SEED_OFFSET = 84;

/** The folders beside llava-code: its base, its blind twin and the twin's base. */
export const LLAVA_CODE_NEIGHBOURS = {
  base: LLAVA_NEIGHBOURS.llava,
  blind: "../llava-code-blind",
  blindBase: LLAVA_NEIGHBOURS.blind,
  code: "../llava-code",
} as const;

/** A scene with its objects in reading order: by y, then x (the order a program is written and read in). */
export function inReadingOrder(scene: Scene): Scene {
  return { ...scene, objects: [...scene.objects].sort((a, b) => a.y - b.y || a.x - b.x) };
}

/** A training example: an image and the program that draws it. */
export interface CodeExample {
  readonly image: ImageSource;
  readonly program: string;
}

/**
 * The code conversations' images and programs: the stored train split (its programs re-written in reading order) and
 * `plan.freshScenes` scenes drawn fresh (seed + {@link CODE_FRESH_SEED_OFFSET}), rendered when `renderImages`.
 */
export async function codeTuningExamples(
  world: string,
  plan: LlavaCodePlan,
  seed: number,
  renderImages: boolean,
): Promise<CodeExample[]> {
  const split = openSplit(world, "code", "train");
  const stored = plan.storedRecords === undefined ? split.records : split.records.slice(0, plan.storedRecords);
  const examples: CodeExample[] = stored.map((record) => {
    if (typeof record.program !== "string")
      throw new Error(`llava-code: ${split.dir} record ${JSON.stringify(record.id)} has no program (expected a string)`);
    return {
      image: { key: path.join(split.dir, String(record.image)) },
      program: sceneToProgram(inReadingOrder(parseProgram(record.program))),
    };
  });
  const random = new Random(seed + CODE_FRESH_SEED_OFFSET);
  for (let k = 0; k < plan.freshScenes; k++) {
    const scene = inReadingOrder(sampleScene(random, { maxObjects: plan.maxObjects }));
    examples.push({
      image: { key: `fresh/code/${k}`, rgb: renderImages ? (await svgToRgb(sceneSvg(scene))).data : undefined },
      program: sceneToProgram(scene),
    });
  }
  return examples;
}

/** Checks a plan before any scene is drawn; each error quotes the bad value. */
export function checkCodePlan(plan: LlavaCodePlan): void {
  const positiveInteger = (name: string, value: number) => {
    if (!(Number.isInteger(value) && value > 0)) throw new Error(`llava-code: ${name} must be a positive integer, got ${value}`);
  };
  positiveInteger("steps", plan.steps);
  positiveInteger("batchSize", plan.batchSize);
  positiveInteger("maxObjects", plan.maxObjects);
  if (!(Number.isInteger(plan.freshScenes) && plan.freshScenes >= 0))
    throw new Error(`llava-code: freshScenes must be an integer ≥ 0, got ${plan.freshScenes}`);
  if (!(plan.learningRate > 0 && Number.isFinite(plan.learningRate)))
    throw new Error(`llava-code: learningRate must be a positive number, got ${plan.learningRate}`);
}

/** What the card records beyond the common fields. */
export interface LlavaCodeCard extends LlavaFullTuneCard {
  readonly plan: LlavaCodePlan;
  /** What `mllm-labs eval` measures. */
  readonly eval_options: LlavaCodePlan["evaluation"];
}

const BASELINE_NOTES: Record<string, string> = {
  before_tuning: "the model tuned, as it was before (../llava: lab 02's mixture; for the blind twin ../llava-blind)",
  blind:
    "../llava-code-blind: ../llava-blind tuned the same way on the same conversations with the image removed, answering with no image",
  empty_program: "only the reference's background line (the canvas as the program's first line paints it)",
};

const METRIC_NOTES: Record<string, string> = {
  code_runs: "generated programs of the code test images that parse and run",
  code_same_pixels:
    "generated programs that render ≥ 0.99 of the pixels as the reference (scoreProgram): issue 16's target, at least half",
  code_object_match: "objects of the reference matched by a generated object of the same colour and shape within 2 px",
  code_exact_program:
    "generated program equals the world's reference line for line (the world writes objects in drawing order, this model in reading order: a lower bound)",
  code_pixel_agreement: "mean fraction of pixels the generated program's render shares with the reference's",
};

/**
 * `npm run pretrain -- llava-code` (`blind` false) or `-- llava-code-blind` (`blind` true): tunes the base's projector
 * and LLM in full on the code conversations ({@link runLlavaFullTune}), writes the folder (a whole LLaVA; the twin a
 * Llama as llava-blind is), then measures it as `mllm-labs eval` does and writes the card with what it measured.
 */
export async function pretrainLlavaCode(
  args: PretrainArgs & { blind?: boolean },
  planOverride?: Partial<LlavaCodePlan>,
): Promise<{ card: LlavaCodeCard }> {
  const seed = args.seed ?? 0;
  const blind = args.blind ?? false;
  const name = blind ? "llava-code-blind" : "llava-code";
  let plan: LlavaCodePlan = { ...LLAVA_CODE_PLAN, ...planOverride };
  if (args.steps !== undefined) plan = { ...plan, steps: args.steps };
  if (args.batchSize !== undefined) plan = { ...plan, batchSize: args.batchSize };
  checkCodePlan(plan);
  const baseRelative = blind ? LLAVA_CODE_NEIGHBOURS.blindBase : LLAVA_CODE_NEIGHBOURS.base;
  return runLlavaFullTune<LlavaCodeCard>(args, {
    name,
    blind,
    baseRelative,
    neighbours: { sighted: LLAVA_CODE_NEIGHBOURS.code, blind: LLAVA_CODE_NEIGHBOURS.blind },
    examples: async (renderImages) =>
      (await codeTuningExamples(args.world, plan, seed, renderImages)).map((e) => ({
        image: e.image,
        // One code instruction, its phrasing drawn per batch, answered by the program.
        conversation: (random) =>
          conversationFromPairs([
            { instruction: CODE_INSTRUCTIONS[random.int(0, CODE_INSTRUCTIONS.length)], response: e.program },
          ]),
      })),
    steps: plan.steps,
    batchSize: plan.batchSize,
    learningRate: plan.learningRate,
    stageSeed: seed + CODE_STAGE_SEED_OFFSET,
    blindConfigNote:
      "../llava-blind tuned on llava-code's conversations with the image removed: the blind baseline of ../llava-code. mllm-labs eval measures it on the code test split with no image.",
    baselineNotes: BASELINE_NOTES,
    card: ({ examples, common }) => ({
      ...common,
      title: blind
        ? "mllm-labs llava-code blind twin: llava-blind tuned on the drawing programs without their images"
        : "mllm-labs llava-code: lab 02's LLaVA tuned in full to write the drawing program of an image",
      description: blind
        ? `The blind baseline of ../llava-code: ../llava-blind tuned the same way (${plan.steps} steps of ${plan.batchSize}, peak learning rate ${plan.learningRate}, the whole LLM) on the same code conversations with every <image> removed. It can learn the programs' form and their most likely objects, not where they are.`
        : `Lab 02's LLaVA (${baseRelative}) with its projector and LLM tuned in full (the tower frozen, as in stage 2) on code conversations alone: ${examples} images (the code train split + ${plan.freshScenes} scenes of 1–${plan.maxObjects} objects drawn fresh), each answered by its drawing program with the objects in reading order (y, then x), ${plan.steps} steps of ${plan.batchSize}, peak learning rate ${plan.learningRate} (warm-up, cosine). A LoRA adapter of rank 32 did not learn the coordinates, so the folder holds the whole model in transformers' layout.`,
      data: `the code train split (${examples - plan.freshScenes}) + ${plan.freshScenes} scenes drawn fresh (seed ${seed + CODE_FRESH_SEED_OFFSET}, 1–${plan.maxObjects} objects), programs in reading order${blind ? ", images removed" : ""}; eval: the code test split${plan.evaluation.limit ? `'s first ${plan.evaluation.limit}` : ""}`,
      metric_notes: METRIC_NOTES,
      plan,
      eval_options: plan.evaluation,
    }),
    markdown: llavaCodeMarkdown,
  });
}

/** The README: the card, the metrics beside every baseline, what the baselines are (the domain adapters' layout). */
export function llavaCodeMarkdown(card: LlavaCodeCard): string {
  return llavaDomainMarkdown(card);
}

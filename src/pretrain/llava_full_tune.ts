/**
 * Lab 02's full tunes of a committed LLaVA: the base's projector and LLM (the tower frozen, as in stage 2) trained
 * further on one kind of conversation, written as a whole LLaVA in transformers' layout beside the base, with a blind
 * twin tuned the same way from the blind twin's base. `llava-code` (drawing programs) and `llava-robust` (existence
 * questions, LRV-Instruction's negative instructions) are two of them; each file says what it trains on and this one
 * does the rest: the base checked, the tower's features cached once, the seeded batches, the folder written and measured
 * as `mllm-labs eval` measures it (`evaluateLlavaCheckpoint`: the folder, its base as `before_tuning`, the blind twin),
 * and renamed into place whole with the card.
 *
 * Papers: Liu et al., "Improved Baselines with Visual Instruction Tuning" (LLaVA-1.5, 2023), stage 2. Reference:
 * haotian-liu/LLaVA `scripts/v1_5/finetune.sh`.
 */
import * as fs from "fs";
import * as path from "path";
import { llavaConfigToHF } from "../models/llava_spec";
import { llamaConfigToHF } from "../models/llama_spec";
import { tokenizeConversation, type ConversationTurn } from "../data/conversation";
import { packBranches } from "../data/packed_branches";
import type { Random } from "../util/random";
import {
  disposeBatch,
  LlavaTrainer,
  llavaBatch,
  paddedPositions,
  splitByLength,
  type LlavaLossWeighting,
  type LlavaTrainingBatch,
} from "./llava_training";
import {
  evaluateLlavaCheckpoint,
  featureCache,
  LLAVA_NEIGHBOURS,
  loadLlava,
  runStage,
  SCENE_CANVAS,
  type ImageSource,
  type StageRun,
} from "./llava";
import { machineRecord, writeCheckpointFiles, type CheckpointCard } from "./common";
import { ObjectMapHead, objectMapTargets, tokenGridSide, type MappedObject, type ObjectMapObjective } from "./object_map";
import { refuseExistingCheckpoint, writeFolderAtomically } from "./checkpoint_folder";
import type { PretrainArgs } from "./vision";

/** One training example: an image and its conversation (phrasing drawn anew each time with `random`). */
export interface FullTuneExample {
  readonly image: ImageSource;
  /** The image's objects with their centres, the object-map objective's targets (undefined: none, the loss skips it). */
  readonly objects?: readonly MappedObject[];
  conversation(random: Random): ConversationTurn[];
  /**
   * One-question conversations about the image, trained packed after their shared prefix (`packBranches`: each sees
   * the image and its own question only, as if asked alone). Given, the batches use these instead of `conversation`.
   */
  branches?(random: Random): ConversationTurn[][];
}

/** What every full-tune card records beyond the common fields. */
export interface LlavaFullTuneCard extends CheckpointCard {
  readonly baselines: Record<string, Record<string, number>>;
  readonly baseline_notes: Record<string, string>;
  /** The model tuned, relative to the folder (../llava, or ../llava-blind for a twin). */
  readonly base_checkpoint: string;
  /** The tuned model's blind twin, which `mllm-labs eval` measures beside it. */
  readonly baseline_checkpoints?: { readonly blind: string };
  /** What `mllm-labs eval` measures ({@link evaluateLlavaCheckpoint}). */
  readonly eval_options: { readonly sets: readonly string[]; readonly limit?: number };
  readonly blind_twin_measured?: boolean;
  /** The object-map loss (unweighted) at the loss curve's points, when the tune has that objective. */
  readonly object_map_curve?: number[];
}

/** The card fields every full tune's run fills in; each tune adds its title, description, data, notes and eval options. */
export type FullTuneCommonFields = Omit<LlavaFullTuneCard, "title" | "description" | "data" | "metric_notes" | "eval_options">;

/** One full tune: which folder, from which base, on what, for how long, and the card's words. */
export interface LlavaFullTune<Card extends LlavaFullTuneCard> {
  /** The folder's name (`npm run pretrain -- NAME`). */
  readonly name: string;
  /** The blind twin: trained and measured with no image. */
  readonly blind: boolean;
  /** The base, relative to the folder (../llava, or ../llava-blind for a twin). */
  readonly baseRelative: string;
  /** The sighted folder and its blind twin, relative to either (the twin's config names the first; the first's card the twin). */
  readonly neighbours: { readonly sighted: string; readonly blind: string };
  /** Its examples, given whether the images are rendered (not for the twin). */
  examples(renderImages: boolean): Promise<readonly FullTuneExample[]>;
  readonly steps: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Seed of the batch order and of the conversations' phrasing. */
  readonly stageSeed: number;
  /** How the loss averages the supervised tokens ({@link LlavaLossWeighting}). Default `token`. */
  readonly lossWeighting?: LlavaLossWeighting;
  /**
   * An object-map objective beside the language loss (`object_map.ts`: each image token asked, through a linear
   * read-out dropped afterwards, which colour–shape pairs have their centre in its cell; images without `objects` add
   * nothing), its read-out seeded by `seed`. The blind twin has no image tokens and ignores it. Default none.
   */
  readonly objectMap?: { readonly objective: ObjectMapObjective; readonly seed: number };
  /**
   * Each step's rows in two parts of similar length ({@link splitByLength}), each padded to its own longest: the same
   * loss and gradient as the padded batch (up to the order of floating-point sums), for less work where a few long rows
   * would pad many short ones. Not with `objectMap`. Default false.
   */
  readonly splitByLength?: boolean;
  /** The twin's config note (mllm_labs.note). */
  readonly blindConfigNote: string;
  /** What each baseline `mllm-labs eval` reports is, for the card. */
  readonly baselineNotes: Record<string, string>;
  /** The card before anything is measured: the common fields come from the run, the rest (its words) from the tune. */
  card(run: { readonly examples: number; readonly common: FullTuneCommonFields }): Card;
  /** The folder's README from its measured card. */
  markdown(card: Card): string;
}

/**
 * Tunes `tune.baseRelative`'s projector and LLM in full on `tune.examples`, writes the folder (a whole LLaVA; a twin a
 * Llama as llava-blind is), then measures it as `mllm-labs eval` does and writes the card with what it measured.
 */
export async function runLlavaFullTune<Card extends LlavaFullTuneCard>(
  args: PretrainArgs,
  tune: LlavaFullTune<Card>,
): Promise<{ card: Card }> {
  const log = args.log ?? console.log;
  const seed = args.seed ?? 0;
  const { name, blind } = tune;
  if (tune.splitByLength && tune.objectMap && !blind)
    throw new Error(`pretrain ${name}: splitByLength takes no object-map objective (its loss reads the batch in one part)`);
  // Called directly (a notebook, a script), it must not replace a folder either: the CLI's --force is the only way.
  if (!args.dryRun) refuseExistingCheckpoint(args.out, (args as { force?: boolean }).force);
  const base = path.resolve(args.out, tune.baseRelative);
  if (!fs.existsSync(path.join(base, "config.json")))
    throw new Error(
      `pretrain ${name}: ${base} is missing (make it with npm run pretrain -- ${path.basename(base)}); the ${name} folder must sit beside it`,
    );
  const started = Date.now();
  const examples = await tune.examples(!blind);
  log(`${name}: ${examples.length} conversations (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  const { model, tokenizer } = loadLlava(base);
  try {
    const cache = blind
      ? undefined
      : featureCache(
          model,
          examples.map((e) => e.image),
        );
    let stage: StageRun;
    const padding = { whole: 0, parts: 0, splitSteps: 0 }; // with splitByLength: what the parts pad, against one batch
    // The object-map read-out (dropped at the end) and each batch's targets on the token grid, computed before the
    // batch's other tensors (they check the annotations; nothing is left to free if they throw).
    const objectMap =
      tune.objectMap && !blind
        ? { ...tune.objectMap.objective, head: new ObjectMapHead(model.config.text.hiddenSize, tune.objectMap.seed) }
        : undefined;
    const grid = objectMap ? tokenGridSide(model.imageTokensPerImage) : 0;
    // the projector and the LLM (with the read-out when there is one); the tower stays frozen
    const trainer = new LlavaTrainer(model, {
      stage: 2,
      lossWeighting: tune.lossWeighting, // the trainer's default (per token) when absent
      ...(objectMap ? { objectMap } : {}),
    });
    try {
      if (cache) {
        await cache.precompute([...new Set(examples.map((e) => e.image.key))]); // the tower is frozen: features once (pixels freed)
        log(`${name}: tower features of ${cache.size} images (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      }
      stage = await runStage(
        name,
        trainer,
        examples,
        tune.steps,
        { batchSize: tune.batchSize, learningRate: tune.learningRate, seed: tune.stageSeed, log },
        async (chosen, random) => {
          const maps = objectMap
            ? {
                objectMaps: objectMapTargets(
                  chosen.map((e) => e.objects),
                  grid,
                  SCENE_CANVAS,
                ),
              }
            : {};
          const tokenize = (turns: ConversationTurn[]) =>
            tokenizeConversation(tokenizer, turns, { imageTokens: model.imageTokensPerImage, blind });
          const rows = chosen.map((e) =>
            e.branches
              ? packBranches(e.branches(random).map(tokenize), model.config.imageTokenId)
              : tokenize(e.conversation(random)),
          );
          // each example holds one image (none for the twin): its features follow its row
          const batchOf = async (indices: readonly number[]) =>
            llavaBatch(
              indices.map((k) => rows[k]),
              tokenizer.padTokenId,
              cache ? await cache.features(indices.map((k) => chosen[k].image.key)) : undefined,
            );
          if (tune.splitByLength) {
            const lengths = rows.map((r) => r.inputIds.length);
            const cut = splitByLength(lengths);
            padding.whole += paddedPositions(lengths, [rows.map((_, k) => k)]);
            padding.parts += paddedPositions(lengths, cut);
            if (cut.length > 1) padding.splitSteps++;
            const parts: LlavaTrainingBatch[] = [];
            try {
              for (const indices of cut) parts.push(await batchOf(indices));
            } catch (error) {
              disposeBatch(parts); // the parts built before the one that failed
              throw error;
            }
            return parts;
          }
          return { ...(await batchOf(rows.map((_, k) => k))), ...maps };
        },
      );
    } finally {
      trainer.dispose();
      objectMap?.head.dispose();
      cache?.clear();
    }
    const trainSeconds = (Date.now() - started) / 1000;
    log(`${name}: trained in ${trainSeconds.toFixed(0)} s`);
    if (tune.splitByLength)
      log(
        `${name}: ${padding.splitSteps} of ${tune.steps} steps in two parts; padded positions ${padding.parts} against ${padding.whole} in one batch`,
      );
    const blindDir = path.resolve(args.out, tune.neighbours.blind);
    const hasBlindTwin = !blind && fs.existsSync(path.join(blindDir, "config.json"));
    const partial = tune.card({
      examples: examples.length,
      common: {
        name,
        model_type: blind ? "llama" : "llava",
        parameters: blind ? model.languageModel.parameterCount() : model.parameterCount(),
        steps: tune.steps,
        batch_size: tune.batchSize,
        train_seconds: Math.round(trainSeconds),
        ...machineRecord(),
        seed,
        loss_curve: stage.curve,
        loss_every: stage.every,
        ...(stage.objectMapCurve ? { object_map_curve: stage.objectMapCurve } : {}),
        metrics: {},
        command: `npm run pretrain -- ${name}`,
        baselines: {},
        baseline_notes: {},
        base_checkpoint: tune.baseRelative,
        ...(blind ? {} : { baseline_checkpoints: { blind: tune.neighbours.blind }, blind_twin_measured: hasBlindTwin }),
      },
    });
    if (args.dryRun) return { card: partial }; // trained, nothing written, so nothing measured
    const config = blind
      ? {
          ...llamaConfigToHF(model.languageModel.config),
          mllm_labs: {
            blind_twin_of: tune.neighbours.sighted,
            vision_checkpoint: LLAVA_NEIGHBOURS.vision,
            note: tune.blindConfigNote,
          },
        }
      : llavaConfigToHF(model.config);
    const languageDir = path.resolve(args.out, LLAVA_NEIGHBOURS.language);
    const tokenizerDir = fs.existsSync(path.join(languageDir, "tokenizer.json")) ? languageDir : base;
    let card: Card = partial;
    // Written into a temporary folder beside the target, measured there as `mllm-labs eval` measures it (its neighbours
    // resolve the same), and renamed into place whole with the card that records what the eval recomputes.
    await writeFolderAtomically(args.out, async (folder) => {
      await writeCheckpointFiles(folder, blind ? model.languageModel : model, config, partial, tokenizerDir);
      const evaluated = await evaluateLlavaCheckpoint(folder, args.world, { log });
      const baselines = evaluated.baselines ?? {};
      card = {
        ...partial,
        metrics: evaluated.metrics,
        baselines,
        baseline_notes: Object.fromEntries(Object.entries(tune.baselineNotes).filter(([key]) => key in baselines)),
      };
      fs.writeFileSync(path.join(folder, "card.json"), JSON.stringify(card, null, 2) + "\n");
      fs.writeFileSync(path.join(folder, "README.md"), tune.markdown(card));
    });
    log(`${name}: written in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return { card };
  } finally {
    model.dispose();
  }
}

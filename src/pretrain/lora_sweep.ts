/**
 * `npm run pretrain -- lora-sweep`: lab 04's measurement. Lab 02's LLaVA
 * (../llava) is tuned on one domain set, the medical scans, five ways on the
 * same batches, steps and seed: full fine-tuning of the LLM, LoRA at ranks 2,
 * 8 and 32 on every linear layer of the LLM, and QLoRA at rank 8 (the LLM's
 * linear layers in NF4 with double quantization, adapters in float32 on top).
 * The tower and the projector stay frozen in every run, so each run tunes the
 * same part of the model, fully or through adapters.
 *
 * Each run records what the tutorial's question needs: trainable parameters,
 * bits per base weight, peak training memory (the engine's buffer accounting,
 * src/engine/memory.ts: weights + gradients + optimizer state + activations of
 * one step), the median step time, the loss curve, the domain metric (lesion
 * findings on the medical test split plus fresh scans) and what the tuning
 * costs elsewhere (VQA on the test scenes: forgetting).
 *
 * The folder holds the rank-8 LoRA adapter in peft's format
 * (`adapter_config.json`, `adapter_model.safetensors`, base `../llava`) and a
 * card with the whole table; `mllm-labs eval` loads the base, applies the
 * adapter and recomputes the adapter's row.
 *
 * Papers: Hu et al., "LoRA" (2021); Dettmers et al., "QLoRA" (2023);
 * Biderman et al., "LoRA Learns Less and Forgets Less" (2024). Reference:
 * haotian-liu/LLaVA `scripts/v1_5/finetune_lora.sh` (LoRA on every linear
 * layer of the LLM, α = 2r), peft `tuners/lora`, bitsandbytes `Linear4bit`.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import type { LlavaForConditionalGeneration } from "../models/llava";
import { Linear } from "../nn/linear";
import { getLoraModel, isAdapterPath, readAdapterConfig, LoraModel } from "../peft/lora";
import { quantize } from "../peft/quantize";
import { QuantizedWeight4bit } from "../peft/quantized_weight";
import { bufferBytes, measurePeakBytes, startMemoryMeter } from "../engine/memory";
import { openSplit, recordBatches } from "../data/loaders";
import { tokenizeConversation, type ConversationTurn } from "../data/conversation";
import { conversationFromPairs, storedConversation } from "../data/llava_instructions";
import { sampleScan, scanInstructions } from "../data/medical";
import { Random } from "../util/random";
import { LlavaTrainer, llavaBatch, disposeBatch } from "./llava_training";
import {
  blindTwinOf,
  evaluateLlava,
  featureCache,
  loadLlava,
  rgbOfGray,
  LLAVA_NEIGHBOURS,
  type ImageSource,
  type LlavaEvaluation,
  type LlavaTestSet,
  type LoadedLlava,
} from "./llava";
import { learningRateAt, machineRecord, mean, type CheckpointCard } from "./common";
import { writeFolderAtomically } from "./checkpoint_folder";
import type { PretrainArgs } from "./vision";

/** How one row of the sweep tunes the LLM. */
export interface LoraSweepRunSpec {
  /** The row's name (`full`, `lora-r8`, …). */
  readonly name: string;
  readonly method: "full" | "lora" | "qlora";
  /** Adapter rank (LoRA and QLoRA). */
  readonly r?: number;
}

/** The sweep's settings. */
export interface LoraSweepPlan {
  /** Optimiser steps of every run. */
  readonly steps: number;
  readonly batchSize: number;
  /** Peak learning rates (linear warm-up, cosine to 0.1): full fine-tuning, and adapters (higher, as LLaVA's LoRA script). */
  readonly learningRates: { readonly full: number; readonly adapter: number };
  /** Scans drawn fresh from the world's generator, added to the 300 stored medical training conversations. */
  readonly freshScans: number;
  /** α = alphaOverRank · r (LLaVA's finetune_lora.sh: r 128, α 256). */
  readonly alphaOverRank: number;
  /** The LoRA targets: every linear layer of the LLM (a regex over module paths, as peft reads one string). */
  readonly targetModules: string;
  readonly runs: readonly LoraSweepRunSpec[];
  /** The run whose adapter the folder keeps (and `mllm-labs eval` recomputes). */
  readonly savedRun: string;
  /** Test sets evaluated and how: medical (the domain) and VQA (forgetting), first `limit` test records, fresh scans added. */
  readonly evaluation: { readonly sets: readonly LlavaTestSet[]; readonly limit: number; readonly freshMedicalScans: number };
  /** Stored training records used (the first N; smoke tests). Default all. */
  readonly storedRecords?: number;
}

export const LORA_SWEEP_PLAN: LoraSweepPlan = {
  steps: 300,
  batchSize: 16,
  learningRates: { full: 3e-4, adapter: 3e-3 },
  freshScans: 1200,
  alphaOverRank: 2,
  targetModules: "language_model\\.model\\.layers\\.\\d+\\.(self_attn\\.(q|k|v|o)_proj|mlp\\.(gate|up|down)_proj)",
  runs: [
    { name: "full", method: "full" },
    { name: "lora-r2", method: "lora", r: 2 },
    { name: "lora-r8", method: "lora", r: 8 },
    { name: "lora-r32", method: "lora", r: 32 },
    { name: "qlora-r8", method: "qlora", r: 8 },
  ],
  savedRun: "lora-r8",
  evaluation: { sets: ["medical", "vqa"], limit: 100, freshMedicalScans: 200 },
};

/** One row of the sweep's table. */
export interface LoraSweepRow {
  readonly name: string;
  readonly method: LoraSweepRunSpec["method"];
  readonly r: number | null;
  readonly alpha: number | null;
  /** Parameters the optimiser updates. */
  readonly trainable_params: number;
  /** … as a fraction of the LLM's parameters. */
  readonly trainable_fraction: number;
  /** Storage of the LLM's linear weights per weight (32 float32, ≈4.127 NF4 + double quantization). */
  readonly bits_per_base_param: number;
  /** Peak bytes of one training step (weights, gradients, optimizer state, activations), the engine's buffer accounting. */
  readonly peak_bytes: number;
  readonly peak_ratio_to_full: number;
  /** Median milliseconds per step (steps 3 on), this machine under its load of the moment. */
  readonly step_ms: number;
  readonly step_ratio_to_full: number;
  readonly loss_curve: number[];
  readonly train_seconds: number;
  readonly metrics: Record<string, number>;
}

/** The medical training conversations: the stored train split and scans drawn fresh (seeded apart from the splits). */
function medicalExamples(
  world: string,
  plan: LoraSweepPlan,
  seed: number,
): { image: ImageSource; conversation: ConversationTurn[] }[] {
  const split = openSplit(world, "medical", "train");
  const stored = plan.storedRecords === undefined ? split.records : split.records.slice(0, plan.storedRecords);
  const examples: { image: ImageSource; conversation: ConversationTurn[] }[] = stored.map((r) => ({
    image: { key: path.join(split.dir, r.image) },
    conversation: storedConversation("medical", r),
  }));
  const random = new Random(seed + 41); // apart from llava's draws (seed + 3), the domain adapters' (+ 47, + 53) and the evals' (2026, 2027)
  for (let k = 0; k < plan.freshScans; k++) {
    const scan = sampleScan(random, 64);
    examples.push({
      image: { key: `fresh/medical/${k}`, rgb: rgbOfGray(scan.pixels) },
      conversation: conversationFromPairs(scanInstructions(scan, random)),
    });
  }
  return examples;
}

/** Bits per weight of the LLM's linear layers as stored (packed NF4 + constants, or float32). */
function bitsPerBaseParam(model: LlavaForConditionalGeneration): number {
  let bits = 0;
  let weights = 0;
  for (const [name, module] of model.languageModel.namedModules()) {
    if (!(module instanceof Linear) || isAdapterPath(name) || name === "lm_head") continue;
    const count = module.inFeatures * module.outFeatures;
    bits += module.quantizedWeight instanceof QuantizedWeight4bit ? module.quantizedWeight.bytes * 8 : count * 32;
    weights += count;
  }
  return bits / weights;
}

/** Sets a run up on a fresh copy of the base: what trains, and the LoRA wrapper when there is one. */
async function prepareRun(
  base: string,
  spec: LoraSweepRunSpec,
  plan: LoraSweepPlan,
  seed: number,
): Promise<{ llava: LoadedLlava; lora?: LoraModel<LlavaForConditionalGeneration>; variables: tf.Variable[] }> {
  const llava = loadLlava(base);
  const { model } = llava;
  if (spec.method === "full") {
    model.visionTower.setTrainable(false);
    model.projector.setTrainable(false);
    model.languageModel.setTrainable(true);
    return { llava, variables: model.trainableParameters() };
  }
  if (!(Number.isInteger(spec.r) && spec.r! > 0))
    throw new Error(`lora-sweep: run ${spec.name} needs a positive integer r, got ${spec.r}`);
  // QLoRA: the LLM's linear layers become NF4 (double quantization, blocks of 64); lm_head stays float, as transformers keeps it.
  if (spec.method === "qlora") await quantize(model.languageModel, { type: "nf4", doubleQuant: true });
  const lora = getLoraModel(model, {
    r: spec.r,
    alpha: plan.alphaOverRank * spec.r!,
    targetModules: plan.targetModules,
    seed: seed + 7,
  }); // freezes everything but the adapters
  return { llava, lora, variables: lora.trainableParameters() };
}

/** Options of {@link pretrainLoraSweep} beyond the common ones. */
export interface LoraSweepArgs extends PretrainArgs {
  /** Only these runs (by name; smoke tests). Default all of the plan's. */
  readonly runs?: readonly string[];
}

/** Runs the sweep, evaluates every row and writes the folder (the saved run's adapter + the card). */
export async function pretrainLoraSweep(
  args: LoraSweepArgs,
  planOverride?: Partial<LoraSweepPlan>,
): Promise<{ card: CheckpointCard }> {
  const log = args.log ?? console.log;
  const seed = args.seed ?? 0;
  let plan: LoraSweepPlan = { ...LORA_SWEEP_PLAN, ...planOverride };
  if (args.steps !== undefined) plan = { ...plan, steps: args.steps };
  if (args.batchSize !== undefined) plan = { ...plan, batchSize: args.batchSize };
  const specs = args.runs ? plan.runs.filter((r) => args.runs!.includes(r.name)) : plan.runs;
  for (const name of args.runs ?? [])
    if (!plan.runs.some((r) => r.name === name))
      throw new Error(
        `lora-sweep: unknown run ${JSON.stringify(name)}; expected some of ${plan.runs.map((r) => r.name).join(", ")}`,
      );
  const base = path.resolve(args.out, LLAVA_NEIGHBOURS.llava);
  const blindDir = path.resolve(args.out, LLAVA_NEIGHBOURS.blind);
  for (const dir of [base, blindDir])
    if (!fs.existsSync(path.join(dir, "config.json")))
      throw new Error(
        `pretrain lora-sweep: ${dir} is missing (make it with npm run pretrain -- ${path.basename(dir)}); the lora-sweep folder must sit beside it`,
      );
  const started = Date.now();
  const examples = medicalExamples(args.world, plan, seed);
  const evalOptions = { ...plan.evaluation, log };

  // The base before tuning and the blind twin: the rows' baselines (and the rules: majority findings, chance VQA).
  const baseline = loadLlava(base);
  const cache = featureCache(
    baseline.model,
    examples.map((e) => e.image),
  );
  await cache.precompute(examples.map((e) => e.image.key)); // the tower is frozen and shared: features once for every run
  log(`lora-sweep: ${examples.length} medical conversations, tower features in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const before = await evaluateLlava(baseline.model, baseline.tokenizer, args.world, evalOptions);
  const blindTwin = loadLlava(blindDir);
  let blind: LlavaEvaluation;
  try {
    blind = await evaluateLlava(blindTwin.model, blindTwin.tokenizer, args.world, { ...evalOptions, blind: true });
  } finally {
    blindTwin.model.dispose();
  }
  const tokenizer = baseline.tokenizer;
  const imageTokens = baseline.model.imageTokensPerImage;
  const llmParams = baseline.model.languageModel.parameterCount();
  baseline.model.dispose();

  startMemoryMeter();
  const rows: LoraSweepRow[] = [];
  let savedAdapter: ((folder: string) => Promise<void>) | undefined;
  let keepAlive: { dispose(): void } | undefined;
  for (const spec of specs) {
    const outside = bufferBytes(); // what lives outside this run (the feature cache holds plain arrays, not tensors)
    const runStarted = Date.now();
    const { llava, lora, variables } = await prepareRun(base, spec, plan, seed);
    const trainer = new LlavaTrainer(llava.model, { stage: 2, variables });
    const peakLearningRate = spec.method === "full" ? plan.learningRates.full : plan.learningRates.adapter;
    const every = Math.max(1, Math.floor(plan.steps / 40));
    const curve: number[] = [];
    const pending: number[] = [];
    const times: number[] = [];
    let peak = 0;
    let order: (typeof examples)[number][][] = [];
    let epoch = 0;
    try {
      for (let index = 0; index < plan.steps; index++) {
        if (order.length === 0)
          order = [...recordBatches(examples, plan.batchSize, { seed: seed + 13, epoch: epoch++, dropLast: true })];
        trainer.learningRate = learningRateAt(index, plan.steps, peakLearningRate, Math.min(20, Math.floor(plan.steps / 10)));
        const chosen = order.shift()!;
        const batch = llavaBatch(
          chosen.map((e) => tokenizeConversation(tokenizer, e.conversation, { imageTokens })),
          tokenizer.padTokenId,
          await cache.features(chosen.map((e) => e.image.key)),
        );
        const t0 = performance.now();
        // Step 3 (the optimizer's moments exist from step 1 on) is measured: the peak of a steady-state step.
        const { result: loss, peakBytes } = await measurePeakBytes(async () => {
          const value = trainer.step(batch);
          const read = (await value.data())[0];
          value.dispose();
          return read;
        });
        times.push(performance.now() - t0);
        if (index === 2) peak = peakBytes - outside;
        disposeBatch(batch);
        pending.push(loss);
        if ((index + 1) % every === 0 || index + 1 === plan.steps) {
          curve.push(Number(mean(pending.splice(0)).toFixed(5)));
          log(
            `lora-sweep ${spec.name} step ${index + 1}/${plan.steps}: loss ${curve[curve.length - 1].toFixed(4)} (${((Date.now() - runStarted) / 1000).toFixed(0)} s)`,
          );
        }
      }
    } finally {
      trainer.dispose();
    }
    const trainSeconds = (Date.now() - runStarted) / 1000;
    const evaluation = await evaluateLlava(llava.model, tokenizer, args.world, evalOptions);
    const sorted = times.slice(2).sort((a, b) => a - b);
    const stepMs = sorted[Math.floor(sorted.length / 2)] ?? times[times.length - 1];
    const full = rows.find((r) => r.method === "full");
    rows.push({
      name: spec.name,
      method: spec.method,
      r: spec.r ?? null,
      alpha: spec.r ? plan.alphaOverRank * spec.r : null,
      trainable_params: variables.reduce((sum, v) => sum + v.size, 0),
      trainable_fraction: Number((variables.reduce((sum, v) => sum + v.size, 0) / llmParams).toFixed(5)),
      bits_per_base_param: Number(bitsPerBaseParam(llava.model).toFixed(3)),
      peak_bytes: peak,
      peak_ratio_to_full: full ? Number((peak / full.peak_bytes).toFixed(3)) : 1,
      step_ms: Number(stepMs.toFixed(1)),
      step_ratio_to_full: full ? Number((stepMs / full.step_ms).toFixed(3)) : 1,
      loss_curve: curve,
      train_seconds: Math.round(trainSeconds),
      metrics: evaluation.metrics,
    });
    log(`lora-sweep ${spec.name}: ${JSON.stringify(rows[rows.length - 1].metrics)}`);
    if (spec.name === plan.savedRun && lora) {
      savedAdapter = (folder) => lora.save(folder, "default", { baseModelNameOrPath: LLAVA_NEIGHBOURS.llava });
      keepAlive = llava.model; // disposed after the folder is written
    } else {
      llava.model.dispose();
    }
  }
  cache.clear();
  const saved = rows.find((r) => r.name === plan.savedRun);
  const card = sweepCard({
    plan,
    seed,
    rows,
    before,
    blind,
    saved,
    seconds: (Date.now() - started) / 1000,
    examples: examples.length,
  });
  try {
    if (!args.dryRun) {
      if (!savedAdapter)
        throw new Error(`lora-sweep: the run ${plan.savedRun} (whose adapter the folder keeps) was not among the runs`);
      await writeFolderAtomically(args.out, async (folder) => {
        await savedAdapter!(folder);
        fs.writeFileSync(path.join(folder, "card.json"), JSON.stringify(card, null, 2) + "\n");
        fs.writeFileSync(path.join(folder, "README.md"), sweepMarkdown(card));
      });
    }
  } finally {
    keepAlive?.dispose();
  }
  return { card }; // the runs' models are disposed as they end
}

/** What the card records beyond the common fields. */
export interface LoraSweepCard extends CheckpointCard {
  readonly plan: LoraSweepPlan;
  readonly rows: readonly LoraSweepRow[];
  readonly baselines: Record<string, Record<string, number>>;
  readonly base_checkpoint: string;
  readonly eval_options: LoraSweepPlan["evaluation"];
  /** The whole sweep's seconds, evaluations included. */
  readonly sweep_seconds: number;
}

function sweepCard(c: {
  plan: LoraSweepPlan;
  seed: number;
  rows: readonly LoraSweepRow[];
  before: LlavaEvaluation;
  blind: LlavaEvaluation;
  saved?: LoraSweepRow;
  seconds: number;
  examples: number;
}): LoraSweepCard {
  const { plan } = c;
  return {
    name: "lora-sweep",
    title: "mllm-labs LoRA / QLoRA sweep: lab 02's LLaVA tuned on the medical scans five ways",
    description:
      `Lab 02's LLaVA (${LLAVA_NEIGHBOURS.llava}) tuned on the medical conversations (${c.examples}: the 300 stored + ${plan.freshScans} fresh scans) with ${plan.steps} steps of ${plan.batchSize}, the same batches and seed in every run: ` +
      `full fine-tuning of the LLM (peak learning rate ${plan.learningRates.full}); LoRA on every linear layer of the LLM at ranks ${plan.runs
        .filter((r) => r.method === "lora")
        .map((r) => r.r)
        .join(
          ", ",
        )} (α = ${plan.alphaOverRank}r, learning rate ${plan.learningRates.adapter}); QLoRA at rank ${plan.runs.find((r) => r.method === "qlora")?.r} (the LLM's linear layers NF4 with double quantization, blocks of 64). ` +
      `Tower and projector frozen in every run. The folder keeps the ${plan.savedRun} adapter in peft's format (base ${LLAVA_NEIGHBOURS.llava}); rows holds every run.`,
    model_type: "lora",
    parameters: c.saved?.trainable_params ?? 0,
    steps: plan.steps,
    batch_size: plan.batchSize,
    train_seconds: Math.round(c.rows.reduce((sum, r) => sum + r.train_seconds, 0)),
    ...machineRecord(),
    seed: c.seed,
    data: `medical train split (300 conversations) + ${plan.freshScans} scans drawn fresh (seed ${c.seed + 41}); eval: the medical test split (50) + ${plan.evaluation.freshMedicalScans} fresh scans (seed 2027), and the first ${plan.evaluation.limit} test scenes' VQA questions (forgetting)`,
    loss_curve: c.saved?.loss_curve ?? [],
    loss_every: Math.max(1, Math.floor(plan.steps / 40)),
    metrics: c.saved?.metrics ?? {},
    metric_notes: {
      medical_lesion_f1:
        "findings ('describe the findings in this scan.') parsed into lesions; a lesion right in quadrant, size and appearance (micro P/R/F1), over the 50 test scans and the fresh ones",
      medical_location_f1: "same, a lesion right in quadrant",
      medical_count_accuracy: "findings stating the right number of lesions",
      vqa_accuracy: "VQA soft accuracy on the first test scenes' questions (what domain tuning may make the model forget)",
    },
    command: "npm run pretrain -- lora-sweep",
    plan,
    rows: c.rows,
    baselines: { before_tuning: c.before.metrics, blind: c.blind.metrics, ...(c.before.baselines ?? {}) },
    base_checkpoint: LLAVA_NEIGHBOURS.llava,
    eval_options: plan.evaluation,
    sweep_seconds: Math.round(c.seconds),
  };
}

const SWEEP_COLUMNS = [
  "medical_lesion_f1",
  "medical_location_f1",
  "medical_count_accuracy",
  "vqa_accuracy",
  "vqa_color_accuracy",
] as const;

/** An adapter folder's base checkpoint (adapter_config.json's `base_model_name_or_path`, relative to the folder), checked. */
function adapterBase(directory: string): string {
  const baseName = (
    JSON.parse(fs.readFileSync(path.join(directory, "adapter_config.json"), "utf8")) as { base_model_name_or_path?: string }
  ).base_model_name_or_path;
  if (!baseName)
    throw new Error(`eval: ${directory}/adapter_config.json names no base_model_name_or_path; the adapter's base is unknown`);
  const base = path.resolve(directory, baseName);
  if (!fs.existsSync(path.join(base, "config.json")))
    throw new Error(
      `eval: the adapter's base ${base} (base_model_name_or_path ${JSON.stringify(baseName)}) is not a checkpoint folder`,
    );
  return base;
}

/**
 * Measures an adapter folder as the sweep measured its row: the base (adapter_config.json's
 * `base_model_name_or_path`, relative to the folder) with the adapter applied; beside it the base with the
 * adapter disabled, the blind baseline (the adapter the card names in `blind_adapter` on its base, as
 * llava-sentiment and llava-medical keep in `blind/`, else the base's blind twin) and the rules. The card's `eval_options` say which test sets.
 */
export async function evaluateLoraAdapter(directory: string, world: string): Promise<LlavaEvaluation> {
  const config = readAdapterConfig(directory); // validates the folder
  const base = adapterBase(directory);
  const cardFile = path.join(directory, "card.json");
  const card = fs.existsSync(cardFile)
    ? (JSON.parse(fs.readFileSync(cardFile, "utf8")) as Partial<LoraSweepCard> & { blind_adapter?: string })
    : undefined;
  const options = card?.eval_options ?? LORA_SWEEP_PLAN.evaluation;
  const llava = loadLlava(base);
  try {
    const lora = new LoraModel(llava.model).loadAdapter(directory);
    if (!lora.layers.size)
      throw new Error(`eval: the adapter ${directory} (targets ${JSON.stringify(config.targetModules)}) wraps no layer`);
    const tuned = await evaluateLlava(llava.model, llava.tokenizer, world, options);
    lora.setAdaptersEnabled(false);
    const before = await evaluateLlava(llava.model, llava.tokenizer, world, options);
    const baselines: Record<string, Record<string, number>> = { before_tuning: before.metrics };
    // The blind baseline: the adapter the card names as its blind twin (`blind_adapter`: the domain adapters' `blind/`,
    // tuned like this one on the blind twin with the image removed) when it names one, else the base's blind twin as
    // lab 02 left it (lora-sweep).
    const blindAdapter = card?.blind_adapter ? path.join(directory, card.blind_adapter) : undefined;
    if (blindAdapter) readAdapterConfig(blindAdapter); // validates it, naming the folder
    const twinDir = blindAdapter ? adapterBase(blindAdapter) : blindTwinOf(base);
    if (twinDir) {
      const twin = loadLlava(twinDir);
      try {
        if (blindAdapter) new LoraModel(twin.model).loadAdapter(blindAdapter); // refuses an adapter that wraps no layer
        baselines.blind = (await evaluateLlava(twin.model, twin.tokenizer, world, { ...options, blind: true })).metrics;
      } finally {
        twin.model.dispose();
      }
    }
    return { metrics: tuned.metrics, baselines: { ...baselines, ...(before.baselines ?? {}) } };
  } finally {
    llava.model.dispose();
  }
}

/** The README: the sweep's table, its baselines and what the columns mean. */
export function sweepMarkdown(card: LoraSweepCard): string {
  const f = (value: number | undefined, digits = 3) => (value === undefined ? "" : value.toFixed(digits));
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  return [
    `# ${card.name}`,
    "",
    card.title,
    "",
    card.description,
    "",
    `Made by \`${card.command}\` in ${card.train_seconds} s of training on ${card.device} (${card.threads}), backend ${card.backend}, seed ${card.seed}.`,
    "",
    "## The sweep",
    "",
    `| run | trainable | of LLM | bits / base weight | peak MiB | × full | ms / step | × full | ${SWEEP_COLUMNS.join(" | ")} |`,
    `|---|---|---|---|---|---|---|---|${SWEEP_COLUMNS.map(() => "---").join("|")}|`,
    ...card.rows.map(
      (r) =>
        `| ${r.name} | ${r.trainable_params} | ${f(r.trainable_fraction)} | ${f(r.bits_per_base_param, 2)} | ${mib(r.peak_bytes)} | ${f(r.peak_ratio_to_full, 2)} | ${f(r.step_ms, 0)} | ${f(r.step_ratio_to_full, 2)} | ${SWEEP_COLUMNS.map((c) => f(r.metrics[c])).join(" | ")} |`,
    ),
    ...Object.entries(card.baselines).map(
      ([name, metrics]) => `| *${name}* | | | | | | | | ${SWEEP_COLUMNS.map((c) => f(metrics[c])).join(" | ")} |`,
    ),
    "",
    "before_tuning: ../llava as lab 02 left it. blind: ../llava-blind answering without the image. majority: the train split's most frequent findings and answers. chance: a uniform guess among each VQA question type's answers.",
    "",
    "Peak memory is one steady-state step's peak of the engine's buffer accounting (weights of the whole LLaVA, gradients, optimizer state, activations). On a model this small the activations of a batch of 16 dominate it; `npm run bench -- peft` measures the same on a 100M-parameter Llama, where the weights do. Step times were measured on a shared 2-core machine: compare them as ratios within this run.",
    "",
  ].join("\n");
}

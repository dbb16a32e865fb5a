/**
 * What the three backbone pretrainings share: the learning-rate schedule, soft
 * cross-entropy, the checkpoint writer (HF layout + card) and the card's
 * record of how it was made.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { saveCheckpoint } from "../io/safetensors";
import { writeFolderAtomically } from "./checkpoint_folder";
import { engineInfo } from "../engine/init";
import type { AdamW } from "../train/adamw";

/** Linear warm-up to `peak`, then cosine decay to `peak · floor` at `total`. */
export function learningRateAt(step: number, total: number, peak: number, warmup = 50, floor = 0.1): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Mean over rows of −Σ targets · log softmax(logits): cross-entropy with soft (e.g. multi-positive) targets. logits, targets: [N, C]. */
export function softCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.logSoftmax(logits).mul(targets).sum(1).neg().mean() as tf.Scalar);
}

/** What a checkpoint's card records (also `card.json`). */
export interface CheckpointCard {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly model_type: string;
  readonly parameters: number;
  readonly steps: number;
  readonly batch_size: number;
  readonly train_seconds: number;
  readonly backend: string;
  readonly device: string;
  readonly threads: string;
  readonly seed: number;
  readonly data: string;
  /** Loss every `loss_every` steps (mean over those steps). */
  readonly loss_curve: number[];
  readonly loss_every: number;
  /** What `mllm-labs eval` recomputes. */
  readonly metrics: Record<string, number>;
  readonly metric_notes: Record<string, string>;
  readonly command: string;
}

/** The engine and machine in one record, for the card. */
export function machineRecord(): { backend: string; device: string; threads: string } {
  const info = engineInfo();
  return {
    backend: info?.backend ?? "unknown",
    device: info?.device ?? "unknown",
    threads: process.env.MLLM_THREADS ?? `${os.cpus().length} (all cores)`,
  };
}

/** Writes config.json, model.safetensors, card.json and README.md (the model card); copies tokenizer files when given. */
export async function writeCheckpoint(
  directory: string,
  model: Module,
  config: Record<string, unknown>,
  card: CheckpointCard,
  tokenizerDir?: string,
): Promise<void> {
  // Written into a temporary folder and renamed into place whole (pretrain/checkpoint_folder).
  await writeFolderAtomically(directory, (folder) => writeCheckpointFiles(folder, model, config, card, tokenizerDir));
}

/** {@link writeCheckpoint}'s files, written into `folder` as it is (a temporary folder of `writeFolderAtomically`). */
export async function writeCheckpointFiles(
  folder: string,
  model: Module,
  config: Record<string, unknown>,
  card: CheckpointCard,
  tokenizerDir?: string,
): Promise<void> {
  const write = (name: string, text: string) => fs.writeFileSync(path.join(folder, name), text);
  await saveCheckpoint(folder, model.stateDict());
  write("config.json", JSON.stringify(config, null, 2) + "\n");
  if (tokenizerDir)
    for (const name of ["tokenizer.json", "tokenizer_config.json"])
      fs.copyFileSync(path.join(tokenizerDir, name), path.join(folder, name));
  write("card.json", JSON.stringify(card, null, 2) + "\n");
  write("README.md", cardMarkdown(card));
}

export function cardMarkdown(card: CheckpointCard): string {
  const curve = card.loss_curve.map((l, k) => `${(k + 1) * card.loss_every}: ${l.toFixed(4)}`).join(", ");
  return [
    `# ${card.title}`,
    "",
    card.description,
    "",
    "Trained by mllm-labs on its own synthetic world (no downloaded data or weights).",
    "",
    "| | |",
    "|---|---|",
    `| model_type | \`${card.model_type}\` |`,
    `| parameters | ${card.parameters.toLocaleString("en-US")} |`,
    `| steps × batch | ${card.steps} × ${card.batch_size} |`,
    `| training time | ${card.train_seconds.toFixed(0)} s |`,
    `| backend | ${card.backend} on ${card.device}, threads ${card.threads} |`,
    `| seed | ${card.seed} |`,
    `| data | ${card.data} |`,
    "",
    "## Metrics (`mllm-labs eval <this folder>` recomputes them)",
    "",
    ...Object.entries(card.metrics).map(
      ([name, value]) =>
        `- **${name}**: ${Number.isInteger(value) ? value : value.toFixed(4)}${card.metric_notes[name] ? ` (${card.metric_notes[name]})` : ""}`,
    ),
    "",
    "## Training loss",
    "",
    curve,
    "",
    "## Reproduce",
    "",
    `\`${card.command}\` gives the same numbers on the same backend and thread count.`,
    "",
  ].join("\n");
}

/** A card's metrics as a markdown table, one column per baseline (blank where a baseline has no such metric). */
export function baselineTableMarkdown(
  metrics: Record<string, number>,
  baselines: Record<string, Record<string, number>>,
): string[] {
  const columns = Object.keys(baselines);
  const cell = (value: number | undefined) => (value === undefined ? "" : value.toFixed(3));
  return [
    `| metric | model | ${columns.join(" | ")} |`,
    `|---|---|${columns.map(() => "---").join("|")}|`,
    ...Object.entries(metrics).map(
      ([name, value]) => `| ${name} | ${cell(value)} | ${columns.map((c) => cell(baselines[c][name])).join(" | ")} |`,
    ),
  ];
}

export interface TrainingRun {
  /** Mean loss over each `every` steps. */
  readonly curve: number[];
  readonly every: number;
  readonly seconds: number;
}

/**
 * Runs `steps` optimiser steps: sets the scheduled learning rate, calls `step`
 * (which returns the step's loss and disposes its own inputs), reads the loss
 * after the step, and logs the mean loss 40 times over the run.
 */
export async function runTraining(
  name: string,
  steps: number,
  optimizer: AdamW,
  peakLearningRate: number,
  step: (index: number) => tf.Scalar,
  log: (line: string) => void,
): Promise<TrainingRun> {
  const started = Date.now();
  const losses: number[] = [];
  const curve: number[] = [];
  const every = Math.max(1, Math.floor(steps / 40));
  for (let index = 0; index < steps; index++) {
    optimizer.learningRate = learningRateAt(index, steps, peakLearningRate);
    const loss = step(index);
    losses.push((await loss.data())[0]);
    loss.dispose();
    if ((index + 1) % every === 0) {
      curve.push(Number(mean(losses.splice(0)).toFixed(5)));
      log(
        `${name} step ${index + 1}/${steps}: loss ${curve[curve.length - 1].toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }
  return { curve, every, seconds: (Date.now() - started) / 1000 };
}

/** Mean of a list of numbers. */
export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

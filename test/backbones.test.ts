/**
 * The pretrained backbones in data/checkpoints: each loads through the
 * library's HF loaders, is within the size budget, clears its bar far above
 * chance, and `mllm-labs eval` reproduces its card's metrics. Pretraining is
 * deterministic (same seed, same backend → same numbers).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { evaluateCheckpoint } from "../src/pretrain/run";
import { pretrainLanguage } from "../src/pretrain/language";
import { loadPretrained } from "../src/io/pretrained";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const ROOT = path.join(__dirname, "..");
const WORLD = path.join(ROOT, "data", "world");
const CHECKPOINTS = path.join(ROOT, "data", "checkpoints");

/** What each backbone must reach (chance in brackets): the labs need something real to align. */
const BARS: Record<string, [metric: string, compare: "min" | "max", bar: number][]> = {
  vision: [
    ["zero_shot_color_accuracy", "min", 0.9],
    ["zero_shot_shape_accuracy", "min", 0.9],
    ["image_to_text_recall_at_5", "min", 0.5],
  ], // chance 1/6, 1/5, ≈ 5/280
  language: [["test_perplexity", "max", 6]], // a uniform guess: the vocabulary, 851
  audio: [
    ["test_accuracy", "min", 0.8],
    ["event_color_accuracy", "min", 0.9],
  ], // chance 1/41, 1/6
};

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

describe.each(["vision", "language", "audio"])("%s backbone", (name) => {
  const dir = path.join(CHECKPOINTS, name);
  const card = JSON.parse(fs.readFileSync(path.join(dir, "card.json"), "utf8"));

  it("is a complete HF-layout checkpoint within the size budget", () => {
    for (const file of [
      "config.json",
      "model.safetensors",
      "card.json",
      "README.md",
      ...(name === "audio" ? [] : ["tokenizer.json", "tokenizer_config.json"]),
    ]) {
      expect(fs.existsSync(path.join(dir, file)), `${name}/${file}`).toBe(true);
    }
    const { model } = loadPretrained(dir);
    expect(model.parameterCount()).toBe(card.parameters);
    expect(card.parameters).toBeLessThanOrEqual(5_000_000);
    expect(card.train_seconds).toBeLessThanOrEqual(15 * 60);
    model.dispose();
  });

  it("clears its bar and `eval` reproduces the card's metrics", async () => {
    const before = tf.memory().numTensors;
    const result = await evaluateCheckpoint(dir, WORLD);
    expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
    expect(Object.keys(result.metrics).sort()).toEqual(Object.keys(card.metrics).sort());
    for (const [metric, value] of Object.entries(result.metrics)) {
      const tolerance = metric.includes("perplexity") ? 1e-3 * card.metrics[metric] : 0.01; // accuracies: ±1 % (a clip or two)
      expect(
        Math.abs(value - card.metrics[metric]),
        `${metric}: eval ${value}, card ${card.metrics[metric]}`,
      ).toBeLessThanOrEqual(tolerance);
    }
    for (const [metric, compare, bar] of BARS[name]) {
      if (compare === "min") expect(result.metrics[metric], metric).toBeGreaterThanOrEqual(bar);
      else expect(result.metrics[metric], metric).toBeLessThanOrEqual(bar);
    }
  }, 180_000);
});

describe("mllm-labs eval", () => {
  it("prints one JSON object with the metrics and the card's", () => {
    const run = spawnSync(
      process.execPath,
      [path.join(ROOT, "bin", "mllm-labs.js"), "eval", path.join(CHECKPOINTS, "audio"), "--backend", "native"],
      { encoding: "utf8", cwd: ROOT },
    );
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.trim().split("\n").pop()!);
    expect(result).toMatchObject({
      checkpoint: path.join(CHECKPOINTS, "audio"),
      model_type: "mllm_audio_encoder",
      backend: "native",
    });
    expect(result.metrics.test_accuracy).toBeCloseTo(result.card_metrics.test_accuracy, 2);
  }, 120_000);

  it("exits 1 naming a folder that is not a checkpoint", () => {
    const empty = scratch("eval-");
    const run = spawnSync(process.execPath, [path.join(ROOT, "bin", "mllm-labs.js"), "eval", empty, "--backend", "cpu"], {
      encoding: "utf8",
      cwd: ROOT,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/is not a checkpoint folder \(no config.json, nor a peft adapter's adapter_config.json\)/);
  }, 60_000);
});

describe("pretraining", () => {
  it("gives the same losses and metrics on a second run with the same seed", async () => {
    const short = { world: WORLD, out: "", steps: 3, batchSize: 4, dryRun: true, log: () => {} };
    const first = await pretrainLanguage(short);
    const second = await pretrainLanguage(short);
    expect(second.card.loss_curve).toEqual(first.card.loss_curve);
    expect(second.card.metrics).toEqual(first.card.metrics);
    const other = await pretrainLanguage({ ...short, seed: 1 });
    expect(other.card.loss_curve).not.toEqual(first.card.loss_curve);
    for (const run of [first, second, other]) run.model.dispose();
  }, 120_000);
});

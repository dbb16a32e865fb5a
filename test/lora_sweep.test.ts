/**
 * Lab 04's sweep (`npm run pretrain -- lora-sweep`): a tiny run of three rows
 * end to end (what each row records, the saved adapter in peft's format, and
 * `mllm-labs eval` of that folder reproducing the card), the refusals, and,
 * when the folder is committed, its card's adapter row recomputed by the eval.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { pretrainLoraSweep, evaluateLoraAdapter, LORA_SWEEP_PLAN, type LoraSweepCard } from "../src/pretrain/lora_sweep";
import { evaluateCheckpoint } from "../src/pretrain/run";
import { loadLlava } from "../src/pretrain/llava";
import { scratchFolders, scratchCheckpoints } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const ROOT = path.join(__dirname, "..");
const WORLD = path.join(ROOT, "data", "world");
const CHECKPOINTS = path.join(ROOT, "data", "checkpoints");
const SWEEP = path.join(CHECKPOINTS, "lora-sweep");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A folder beside links to the committed llava and llava-blind, as the sweep expects its neighbours. */
const sweepCheckpoints = () => scratchCheckpoints(scratch, "mllm-labs-sweep-", ["llava", "llava-blind", "vision", "language"]);

const TINY = {
  steps: 4,
  batchSize: 4,
  freshScans: 4,
  storedRecords: 8,
  evaluation: { sets: ["medical", "vqa"] as const, limit: 3, freshMedicalScans: 2 },
};

describe("pretrainLoraSweep (tiny schedule)", () => {
  it("records every row's cost and metrics, saves the adapter in peft's format, and eval reproduces the card", async () => {
    const dir = sweepCheckpoints();
    try {
      const out = path.join(dir, "lora-sweep");
      const before = tf.memory().numTensors;
      const lines: string[] = [];
      const { card } = await pretrainLoraSweep(
        { world: WORLD, out, log: (l) => lines.push(l), runs: ["full", "lora-r2", "lora-r8", "qlora-r8"] },
        TINY,
      );
      expect(tf.memory().numTensors, "tensors leaked").toBe(before);
      const sweep = card as LoraSweepCard;
      expect(sweep.rows.map((r) => r.name)).toEqual(["full", "lora-r2", "lora-r8", "qlora-r8"]);
      const [full, r2, r8, qlora] = sweep.rows;
      // The LLM: 896,512 parameters (embedding tied to the head). LoRA on its 28 linear layers: r · Σ (in + out).
      expect(full.trainable_params).toBe(896_512);
      const perRank = 4 * (2 * (128 + 128) + 2 * (128 + 64) + 3 * (128 + 384));
      expect(r2.trainable_params).toBe(2 * perRank);
      expect(r8.trainable_params).toBe(8 * perRank);
      expect(qlora.trainable_params).toBe(8 * perRank);
      expect(full.bits_per_base_param).toBe(32);
      expect(r8.bits_per_base_param).toBe(32);
      // NF4 + double quantization: 4 + 8/64 + 32/(64·256) bits per weight, plus the second-level constants' rounding.
      expect(qlora.bits_per_base_param).toBeGreaterThan(4.12);
      expect(qlora.bits_per_base_param).toBeLessThan(4.14);
      for (const row of sweep.rows) {
        expect(row.peak_bytes, row.name).toBeGreaterThan(0);
        expect(row.loss_curve.every(Number.isFinite), row.name).toBe(true);
        expect(Number.isFinite(row.metrics.medical_lesion_f1), row.name).toBe(true);
        expect(Number.isFinite(row.metrics.vqa_accuracy), row.name).toBe(true);
      }
      // Full fine-tuning keeps gradients and two Adam moments for every LLM weight: more than any adapter run holds.
      expect(full.peak_bytes).toBeGreaterThan(r8.peak_bytes);
      expect(Object.keys(sweep.baselines)).toEqual(expect.arrayContaining(["before_tuning", "blind", "majority", "chance"]));
      expect(lines.some((l) => l.includes("lora-sweep qlora-r8 step 4/4"))).toBe(true);

      // The folder: the r8 adapter in peft's format on ../llava, the card and its README.
      const config = JSON.parse(fs.readFileSync(path.join(out, "adapter_config.json"), "utf8"));
      expect(config).toMatchObject({ peft_type: "LORA", r: 8, lora_alpha: 16, base_model_name_or_path: "../llava" });
      expect(fs.readFileSync(path.join(out, "README.md"), "utf8")).toMatch(/\| qlora-r8 \| 77824 \|/);
      // mllm-labs eval: the base with the adapter applied reproduces the card's metrics exactly (same backend, same inputs).
      const evaluated = await evaluateCheckpoint(out, WORLD);
      expect(evaluated.model_type).toBe("lora");
      expect(evaluated.metrics).toEqual(card.metrics);
      expect(evaluated.card_metrics).toEqual(card.metrics);
      expect(evaluated.baselines!.before_tuning).toEqual(sweep.baselines.before_tuning);
      expect(evaluated.baselines!.blind).toEqual(sweep.baselines.blind);
      expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);

  it("refuses an unknown run and a missing base, naming what it expected", async () => {
    await expect(
      pretrainLoraSweep({ world: WORLD, out: "/tmp/none/lora-sweep", dryRun: true, runs: ["lora-r4"] }),
    ).rejects.toThrow(/unknown run "lora-r4"; expected some of full, lora-r2, lora-r8, lora-r32, qlora-r8/);
    await expect(pretrainLoraSweep({ world: WORLD, out: "/tmp/none/lora-sweep", dryRun: true })).rejects.toThrow(
      /\/tmp\/none\/llava is missing \(make it with npm run pretrain -- llava\)/,
    );
  });

  it("refuses an adapter folder whose base is not a checkpoint", async () => {
    const dir = scratch("mllm-labs-adapter-");
    try {
      fs.writeFileSync(
        path.join(dir, "adapter_config.json"),
        JSON.stringify({
          peft_type: "LORA",
          r: 8,
          lora_alpha: 16,
          target_modules: ["q_proj"],
          base_model_name_or_path: "../nowhere",
        }),
      );
      await expect(evaluateLoraAdapter(dir, WORLD)).rejects.toThrow(/the adapter's base .*nowhere .* is not a checkpoint folder/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the committed sweep (data/checkpoints/lora-sweep)", () => {
  const hasSweep = fs.existsSync(path.join(SWEEP, "card.json"));
  const card = hasSweep ? (JSON.parse(fs.readFileSync(path.join(SWEEP, "card.json"), "utf8")) as LoraSweepCard) : undefined;

  it.runIf(hasSweep)("holds every run of the plan, and the saved adapter is small", () => {
    expect(card!.rows.map((r) => r.name)).toEqual(LORA_SWEEP_PLAN.runs.map((r) => r.name));
    expect(card!.steps).toBe(LORA_SWEEP_PLAN.steps);
    expect(fs.statSync(path.join(SWEEP, "adapter_model.safetensors")).size).toBeLessThan(1e6);
  });

  // What lab 04 reads from the table (its markdown quotes these): every run learns the lesions from the image (count,
  // location and whole lesions above the base before tuning and above the blind twin, which writes "no lesions are seen"),
  // rank 2 keeps the scenes' colours, QLoRA stores the base in ≈4.13 bits. (On the llava before 2026-12-03 rank 32 also
  // forgot the colours, 0.17; on this one it keeps most of them, 0.75: no longer asserted.)
  it.runIf(hasSweep)("every run learns the domain; rank 2 keeps the scenes' colours; QLoRA's base is 4-bit", () => {
    const row = (name: string) => card!.rows.find((r) => r.name === name)!;
    const { before_tuning: before, blind } = card!.baselines;
    for (const r of card!.rows) {
      expect(r.metrics.medical_count_accuracy, r.name).toBeGreaterThan(before.medical_count_accuracy + 0.04);
      expect(r.metrics.medical_count_accuracy, r.name).toBeGreaterThan(blind.medical_count_accuracy + 0.08);
      expect(r.metrics.medical_location_f1, r.name).toBeGreaterThan(before.medical_location_f1 + 0.1);
      expect(r.metrics.medical_location_f1, r.name).toBeGreaterThan(blind.medical_location_f1);
      expect(r.metrics.medical_lesion_f1, r.name).toBeGreaterThan(before.medical_lesion_f1 + 0.04);
      if (r.name !== "full") expect(r.peak_bytes, r.name).toBeLessThan(row("full").peak_bytes);
    }
    expect(Math.abs(row("lora-r2").metrics.vqa_color_accuracy - before.vqa_color_accuracy)).toBeLessThan(0.05);
    expect(row("qlora-r8").bits_per_base_param).toBeCloseTo(4.127, 2);
  });

  it.runIf(hasSweep)(
    "the adapter row is recomputed by evaluateLlava on the base with the adapter (the eval's first part)",
    async () => {
      const llava = loadLlava(path.join(CHECKPOINTS, "llava"));
      try {
        const { LoraModel } = await import("../src/peft/lora");
        new LoraModel(llava.model).loadAdapter(SWEEP);
        const { evaluateLlava } = await import("../src/pretrain/llava");
        const result = await evaluateLlava(llava.model, llava.tokenizer, WORLD, card!.eval_options);
        expect(result.metrics).toEqual(card!.metrics);
      } finally {
        llava.model.dispose();
      }
    },
    600_000,
  );
});

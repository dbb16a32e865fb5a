/**
 * Lab 02's checkpoints (`npm run pretrain -- llava`, `llava-blind`): a dry run
 * of both recipes on a few records (fast), `loadLlava`'s refusal of other
 * folders, and, when the checkpoints are committed, the card's quick eval
 * reproduced by `evaluateLlava` and issue 16's targets checked on the card's
 * full eval against the blind twin and the rule baselines.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import {
  pretrainLlava,
  loadLlava,
  evaluateLlava,
  blindTwinOf,
  LLAVA_PLAN,
  LLAVA_ABLATIONS,
  LLAVA_ABLATION_METRICS,
  QUICK_EVAL_LIMIT,
  llavaPlanFor,
  llavaPlanDifference,
  recordLlavaAblations,
  llavaTrainingData,
  type LlavaPlan,
} from "../src/pretrain/llava";
import { Random } from "../src/util/random";
import { IMAGE_PLACEHOLDER } from "../src/data/conversation";
import { scratchFolders } from "./helpers/scratch";
import { POPE_NEGATIVES } from "../src/metrics/pope";

const ROOT = path.join(__dirname, "..");
const WORLD = path.join(ROOT, "data", "world");
const CHECKPOINT = path.join(ROOT, "data", "checkpoints", "llava");
const BLIND = path.join(ROOT, "data", "checkpoints", "llava-blind");

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A few records and steps: the recipe end to end in seconds. */
const TINY: LlavaPlan = {
  ...LLAVA_PLAN,
  steps: { stage1: 2, stage2: 3 },
  batchSize: 4,
  freshScenes: 4,
  freshPerDomain: 2,
  storedRecords: 6,
};

/** Every metric issue 16 names, as evaluateLlava spells it. */
const ISSUE_METRICS = [
  ...["color", "shape", "count", "exist", "relation"].map((t) => `vqa_${t}_accuracy`),
  ...POPE_NEGATIVES.flatMap((n) => ["accuracy", "precision", "recall", "f1", "yes_ratio"].map((m) => `pope_${n}_${m}`)),
  ...["location", "size", "appearance", "lesion"].flatMap((f) => ["precision", "recall", "f1"].map((m) => `medical_${f}_${m}`)),
  "medical_count_accuracy",
  "code_runs",
  "code_same_pixels",
  "code_exact_program",
  "sentiment_accuracy",
  "sentiment_macro_f1",
  "sentiment_disagree_accuracy",
  "sentiment_disagree_macro_f1",
  "sentiment_fresh_disagree_accuracy",
];

describe("pretrainLlava (dry run, tiny schedule)", () => {
  /** The blind twin's dry run of `plan` beside the committed llava-blind (nothing written). */
  const blindDryRun = (plan: LlavaPlan, evalLimit: number) =>
    pretrainLlava(
      { world: WORLD, out: path.join(ROOT, "data/checkpoints/llava-blind"), dryRun: true, evalLimit, blind: true, log: () => {} },
      plan,
    );

  it("trains both stages, evaluates every metric with its baselines, and leaks no tensors", async () => {
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const { model, card } = await pretrainLlava(
      { world: WORLD, out: path.join(ROOT, "data/checkpoints/llava"), dryRun: true, evalLimit: 8, log: (l) => lines.push(l) },
      TINY,
    );
    const projector = model.projector.parameterCount();
    model.dispose();
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    expect(projector).toBeGreaterThan(0);
    expect(card.model_type).toBe("llava");
    expect(card.steps).toBe(5);
    expect(card.loss_curve.every(Number.isFinite)).toBe(true);
    expect(lines.some((l) => l.includes("stage 1 step 2/2"))).toBe(true);
    expect(lines.some((l) => l.includes("stage 2 step 3/3"))).toBe(true);
    for (const name of ISSUE_METRICS) expect(Number.isFinite(card.metrics[name]), name).toBe(true);
    const baselines = (card as unknown as { baselines: Record<string, Record<string, number>> }).baselines;
    // The blind twin is measured when a llava-blind folder sits beside --out (as the committed one does).
    expect(Object.keys(baselines).sort()).toEqual([
      ...(fs.existsSync(path.join(BLIND, "config.json")) ? ["blind"] : []),
      "chance",
      "empty_program",
      "face_only",
      "majority",
      "text_only",
    ]);
    // Always "yes" on balanced questions: accuracy 1/2, recall 1, F1 2/3.
    for (const negatives of POPE_NEGATIVES) {
      expect(baselines.chance[`pope_${negatives}_accuracy`]).toBeCloseTo(0.5, 10);
      expect(baselines.chance[`pope_${negatives}_f1`]).toBeCloseTo(2 / 3, 10);
    }
    // The single-side rules: the text rule is right wherever the face is neutral or agrees, so never below its disagreeing subset.
    expect(baselines.text_only.sentiment_accuracy).toBeGreaterThanOrEqual(baselines.text_only.sentiment_disagree_accuracy);
    expect(baselines.empty_program.code_runs).toBe(1);
    expect(baselines.empty_program.code_same_pixels).toBe(0);
  }, 240_000);

  it("the blind twin trains the LLM on the same conversations without images (no stage 1)", async () => {
    const { model, card } = await blindDryRun(TINY, 3);
    model.dispose();
    expect(card.model_type).toBe("llama");
    expect(card.steps).toBe(3);
    expect(card.parameters).toBe(896_512);
    expect((card as unknown as Record<string, unknown>).baseline_checkpoints).toBeUndefined();
  }, 120_000);

  it("the existence stage asks fresh scenes about present and absent pairs, trains after stage 2 with the mixture replayed, and the blind twin takes it too", async () => {
    const stage = { steps: 2, scenes: 6, learningRate: 5e-4 };
    const plan: LlavaPlan = { ...TINY, existenceStage: stage };
    const data = await llavaTrainingData(WORLD, plan, 0, false);
    expect(data.existence).toHaveLength(6);
    expect((await llavaTrainingData(WORLD, TINY, 0, false)).existence).toHaveLength(0);
    for (const example of data.existence) {
      const present = new Set(example.objects!.map((o) => `${o.color} ${o.shape}`));
      const rounds = example.conversation(new Random(1));
      const asked: string[] = [];
      for (let k = 0; k < rounds.length; k += 2) {
        const pair = /^(?:<image>\n)?is there an? (\w+ \w+) in the image\?$/.exec(rounds[k].value);
        expect(pair, rounds[k].value).not.toBeNull();
        asked.push(pair![1]);
        // Every answer is the scene's truth.
        expect(rounds[k + 1].value).toBe(present.has(pair![1]) ? "yes" : "no");
      }
      expect(new Set(asked).size, "each pair asked once").toBe(asked.length);
      const yes = asked.filter((p) => present.has(p)).length;
      expect(yes).toBe(Math.min(3, present.size));
      expect(asked.length - yes, "absent pairs: one to three per present pair").toBeGreaterThanOrEqual(yes);
      expect(asked.length - yes).toBeLessThanOrEqual(3 * yes);
    }
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const { model, card } = await pretrainLlava(
      { world: WORLD, out: path.join(ROOT, "data/checkpoints/llava"), dryRun: true, evalLimit: 2, log: (l) => lines.push(l) },
      plan,
    );
    model.dispose();
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    const losses = (card as unknown as { stage_losses: Record<string, number[]> }).stage_losses;
    expect(losses.existence).toHaveLength(2);
    expect(losses.existence.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    expect(card.steps).toBe(7);
    expect(card.description).toContain("an existence stage (2 steps, learning rate 0.0005, projector + LLM): 6 fresh scenes");
    expect(lines.some((l) => l.includes("existence stage step 2/2"))).toBe(true);
    const blindRun = await blindDryRun(plan, 1);
    blindRun.model.dispose();
    expect((blindRun.card as unknown as { stage_losses: Record<string, number[]> }).stage_losses.existence).toHaveLength(2);
    expect(blindRun.card.description).toContain("and its existence stage (2 steps, the same conversations)");
    for (const [bad, message] of [
      [{ ...stage, steps: 0 }, /existenceStage.steps must be a positive integer, got 0/],
      [{ ...stage, scenes: 1.5 }, /existenceStage.scenes must be a positive integer, got 1.5/],
      [{ ...stage, learningRate: Number.NaN }, /existenceStage.learningRate must be a positive number, got NaN/],
      [{ ...stage, presentPerScene: 0 }, /existenceStage.presentPerScene must be a positive integer, got 0/],
    ] as const)
      await expect(
        pretrainLlava({ world: WORLD, out: "/tmp/x", dryRun: true }, { ...TINY, existenceStage: bad }),
      ).rejects.toThrow(message);
  }, 240_000);

  it("groups stage 2's and the existence stage's batches by length when the plan asks, and says so on the card", async () => {
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const plan: LlavaPlan = { ...TINY, groupByLength: true, existenceStage: { steps: 2, scenes: 6, learningRate: 5e-4 } };
    const { model, card } = await pretrainLlava(
      { world: WORLD, out: path.join(ROOT, "data/checkpoints/llava"), dryRun: true, evalLimit: 2, log: (l) => lines.push(l) },
      plan,
    );
    model.dispose();
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    expect(card.description).toContain("grouped by length");
    expect(lines.some((l) => l.includes("stage 2 step 3/3"))).toBe(true);
    expect(lines.some((l) => l.includes("existence stage step 2/2"))).toBe(true);
    expect(LLAVA_ABLATIONS["existence-stage-grouped"]).toEqual({
      groupByLength: true,
      existenceStage: LLAVA_ABLATIONS["existence-stage"].existenceStage,
    });
    const blindRun = await blindDryRun(plan, 1);
    blindRun.model.dispose();
    expect((blindRun.card as unknown as { plan: LlavaPlan }).plan.groupByLength).toBe(true);
  }, 240_000);

  it("the object-map objective runs beside both stages' losses and is named by the card; the blind twin skips it", async () => {
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const withMap: LlavaPlan = { ...TINY, objectMap: { weight: 4 } };
    const { model, card } = await pretrainLlava(
      { world: WORLD, out: path.join(ROOT, "data/checkpoints/llava"), dryRun: true, evalLimit: 2, log: (l) => lines.push(l) },
      withMap,
    );
    model.dispose();
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    const losses = (card as unknown as { stage_losses: Record<string, number[]> }).stage_losses;
    expect(losses.stage1_object_map).toHaveLength(2);
    expect(losses.stage2_object_map).toHaveLength(3);
    expect([...losses.stage1_object_map, ...losses.stage2_object_map].every((v) => v > 0 && v < 5)).toBe(true);
    expect(card.description).toContain("object-map objective (weight 4)");
    expect(lines.some((l) => /stage 2 step 3\/3: loss \d+\.\d{4} \(object map \d\.\d{4}\)/.test(l))).toBe(true);
    const blindRun = await blindDryRun(withMap, 1);
    blindRun.model.dispose();
    expect(
      (blindRun.card as unknown as { stage_losses: Record<string, number[]> }).stage_losses.stage2_object_map,
    ).toBeUndefined();
    await expect(
      pretrainLlava({ world: WORLD, out: "/tmp/x", dryRun: true }, { ...TINY, objectMap: { weight: Number.NaN } }),
    ).rejects.toThrow(/object map: weight must be a positive number, got NaN/);
  }, 240_000);

  it("refuses an unknown ablation and a blind ablation, naming the choices", async () => {
    await expect(pretrainLlava({ world: WORLD, out: "/tmp/x", dryRun: true, ablation: "nope" })).rejects.toThrow(
      /unknown ablation "nope"; expected one of default, layer-2, existence-1, previous-plan, layer-1, linear, no-stage1, code-only, window-1/,
    );
    await expect(pretrainLlava({ world: WORLD, out: "/tmp/x", dryRun: true, ablation: "linear", blind: true })).rejects.toThrow(
      /ablations apply to llava/,
    );
  });
});

describe("stage 2's scene conversations (llavaTrainingData)", () => {
  const sceneConversations = async (plan: LlavaPlan) => {
    const data = await llavaTrainingData(WORLD, plan, 0, false);
    const random = new Random(1);
    return data.stage2
      .filter((e) => e.kind === "scene")
      .map((e) => {
        const turns = e.conversation(random);
        // Rounds as [question, answer] pairs, the image placeholder taken off the first question.
        return Array.from({ length: turns.length / 2 }, (_, k) => [
          turns[2 * k].value.replace(`${IMAGE_PLACEHOLDER}\n`, ""),
          turns[2 * k + 1].value,
        ]);
      });
  };
  const isExistence = ([question]: string[]) => /^is there an? .+ in the image\?$/.test(question);

  it("asks one present and one absent object per scene with existencePerScene 1 (plans written before it), rounds in any order", async () => {
    const conversations = await sceneConversations({ ...TINY, existencePerScene: 1 });
    expect(conversations).toHaveLength(6 + 4);
    for (const rounds of conversations) {
      const existence = rounds.filter(isExistence);
      expect(existence.map(([, answer]) => answer).sort()).toEqual(["no", "yes"]);
    }
    // Shuffled: some conversation does not open with its existence questions.
    expect(conversations.some((rounds) => !isExistence(rounds[0]) || !isExistence(rounds[1]))).toBe(true);
  });

  it("perception-first: existence questions open the conversation and the description closes it; existence-3 asks up to 3 objects of each kind", async () => {
    const conversations = await sceneConversations({ ...TINY, roundOrder: "perception-first", existencePerScene: 3 });
    const records = (await llavaTrainingData(WORLD, TINY, 0, false)).scenes;
    conversations.forEach((rounds, k) => {
      const present = new Set(records[k].objects.map((o) => `${o.color} ${o.shape}`)).size;
      const asked = Math.min(3, present);
      const existence = rounds.slice(0, 2 * asked);
      expect(existence.every(isExistence)).toBe(true);
      expect(existence.filter(([, answer]) => answer === "yes")).toHaveLength(asked);
      expect(rounds.slice(2 * asked).some(isExistence)).toBe(false);
      expect(records[k].captions).toContain(rounds[rounds.length - 1][1]);
    });
  });

  it("refuses a round order or an existence count it does not know, naming the plan field", async () => {
    await expect(llavaTrainingData(WORLD, { ...TINY, roundOrder: "perception_first" as never }, 0, false)).rejects.toThrow(
      /roundOrder must be one of shuffled, perception-first, got "perception_first"/,
    );
    await expect(llavaTrainingData(WORLD, { ...TINY, existencePerScene: 0 }, 0, false)).rejects.toThrow(
      /existencePerScene must be a positive integer, got 0/,
    );
  });
});

describe("the ablation table (recordLlavaAblations)", () => {
  it("ablations run the card's plan with one change", () => {
    expect(llavaPlanFor("default")).toEqual(LLAVA_PLAN);
    expect(llavaPlanFor("linear")).toEqual({ ...LLAVA_PLAN, projectorType: "linear" });
    expect(llavaPlanFor("no-stage1").steps).toEqual({ stage1: 0, stage2: LLAVA_PLAN.steps.stage2 });
    expect(llavaPlanFor("conversation-loss").lossWeighting).toBe("conversation");
    expect(llavaPlanFor("perception-first").roundOrder).toBe("perception-first");
    expect(llavaPlanFor("existence-1").existencePerScene).toBe(1);
    expect(llavaPlanFor("layer-2").visionFeatureLayer).toBe(-2);
    // The plan before 2026-12-03, whose default row the earlier ablations are compared with.
    expect(llavaPlanDifference(llavaPlanFor("previous-plan"), LLAVA_PLAN)).toEqual({
      steps: { stage1: 150, stage2: 800 },
      visionFeatureLayer: -2,
      existencePerScene: 1,
    });
  });

  it("gathers the ablation cards beside llava into its card and README, replacing the section when run again", () => {
    const root = scratch("mllm-llava-ablations-");
    const metrics = (base: number) => Object.fromEntries(LLAVA_ABLATION_METRICS.map((key, k) => [key, base + k / 100]));
    const write = (folder: string, card: object) => {
      fs.mkdirSync(path.join(root, folder), { recursive: true });
      fs.writeFileSync(path.join(root, folder, "card.json"), JSON.stringify(card));
    };
    write("llava", {
      name: "llava",
      plan: LLAVA_PLAN,
      command: "npm run pretrain -- llava",
      train_seconds: 100,
      metrics: { ...metrics(0.5), vqa_count_accuracy: 0.9 },
      baselines: { blind: metrics(0.1) },
    });
    fs.writeFileSync(path.join(root, "llava", "README.md"), "# llava\n\nthe card's text\n");
    write("llava-ablation-linear", {
      name: "llava-ablation-linear",
      plan: { ...LLAVA_PLAN, projectorType: "linear" },
      command: "npm run pretrain -- llava --ablation linear --out <dir>",
      train_seconds: 90,
      metrics: metrics(0.3),
    });
    const logged: string[] = [];
    const rows = recordLlavaAblations(path.join(root, "llava"), (line) => logged.push(line));
    expect(logged).toEqual([]);
    expect(rows.map((r) => [r.name, r.change, r.metrics.vqa_shape_accuracy])).toEqual([
      ["linear", { projectorType: "linear" }, 0.31],
    ]);
    const card = JSON.parse(fs.readFileSync(path.join(root, "llava", "card.json"), "utf8"));
    expect(card.metrics.vqa_count_accuracy).toBe(0.9); // the rest of the card is kept
    expect(card.ablations.rows.map((r: { name: string }) => r.name)).toEqual(["llava (the card)", "linear"]);
    expect(card.ablations.blind.vqa_color_accuracy).toBe(0.1);
    write("llava-ablation-layer-2", {
      name: "llava-ablation-layer-2",
      plan: { ...LLAVA_PLAN, visionFeatureLayer: -2 },
      command: "npm run pretrain -- llava --ablation layer-2 --out <dir>",
      train_seconds: 95,
      metrics: metrics(0.4),
    });
    // A row made on an earlier plan (before the card's plan changed) shows that plan's difference as well, after the others.
    write("llava-ablation-no-stage1", {
      name: "llava-ablation-no-stage1",
      plan: { ...LLAVA_PLAN, projectorWindow: 5, steps: { stage1: 0, stage2: LLAVA_PLAN.steps.stage2 } },
      command: "npm run pretrain -- llava --ablation no-stage1 --out <dir>",
      train_seconds: 80,
      metrics: metrics(0.2),
    });
    const all = recordLlavaAblations(path.join(root, "llava"), (line) => logged.push(line));
    expect(all.map((r) => [r.name, r.change])).toEqual([
      ["layer-2", { visionFeatureLayer: -2 }],
      ["linear", { projectorType: "linear" }],
      ["no-stage1", { steps: { stage1: 0, stage2: LLAVA_PLAN.steps.stage2 }, projectorWindow: 5 }],
    ]);
    expect(logged).toEqual([
      expect.stringMatching(/llava-ablation-no-stage1\/card.json ran another plan than llava's .*rerun it/),
    ]);
    // Key order does not make a difference; a plan written before the projector window existed means window 1.
    expect(
      llavaPlanDifference(
        { ...LLAVA_PLAN, steps: { stage2: LLAVA_PLAN.steps.stage2, stage1: LLAVA_PLAN.steps.stage1 } },
        LLAVA_PLAN,
      ),
    ).toEqual({});
    const before: { projectorWindow?: number } = { ...LLAVA_PLAN };
    delete before.projectorWindow;
    expect(llavaPlanDifference(before, { ...LLAVA_PLAN, projectorWindow: 1 })).toEqual({});
    expect(llavaPlanDifference(before, { ...LLAVA_PLAN, projectorWindow: 3 })).toEqual({ projectorWindow: 1 });
    const readme = fs.readFileSync(path.join(root, "llava", "README.md"), "utf8");
    expect(readme.startsWith("# llava\n\nthe card's text\n")).toBe(true);
    expect(readme.match(/## Ablations/g)).toHaveLength(1);
    expect(readme).toContain('| layer-2 | {"visionFeatureLayer":-2} | 0.400 | 0.410 |');
    expect(readme).toContain("| blind twin | no image | 0.100 |");
    write("llava-ablation-linear", { name: "llava", metrics: metrics(0) });
    expect(() => recordLlavaAblations(path.join(root, "llava"), () => {})).toThrow(
      /llava-ablation-linear\/card.json is the card of "llava", expected llava-ablation-linear/,
    );
    expect(() => recordLlavaAblations(path.join(root, "nowhere"))).toThrow(/nowhere\/card.json is missing \(train llava first\)/);
  });
});

describe("loadLlava", () => {
  it("refuses a plain Llama folder (the language backbone), saying what it loads", () => {
    expect(() => loadLlava(path.join(ROOT, "data/checkpoints/language"))).toThrow(
      /has model_type "llama"; expected "llava", or "llama" with mllm_labs.blind_twin_of/,
    );
  });
});

describe("the committed checkpoints (data/checkpoints/llava, llava-blind)", () => {
  const hasCheckpoint = fs.existsSync(path.join(CHECKPOINT, "card.json")) && fs.existsSync(path.join(BLIND, "card.json"));
  const card = hasCheckpoint ? JSON.parse(fs.readFileSync(path.join(CHECKPOINT, "card.json"), "utf8")) : undefined;

  it.runIf(hasCheckpoint)(
    "fit the size budget, and evaluateLlava reproduces the card's quick eval (blind twin included) without leaks",
    async () => {
      const size = ["llava", "llava-blind"].reduce(
        (sum, name) => sum + fs.statSync(path.join(ROOT, "data/checkpoints", name, "model.safetensors")).size,
        0,
      );
      expect(size).toBeLessThanOrEqual(10e6);
      expect(blindTwinOf(CHECKPOINT)).toBe(BLIND);
      const llava = loadLlava(CHECKPOINT);
      const blind = loadLlava(BLIND);
      expect(llava.model.parameterCount()).toBe(card.parameters);
      const before = tf.memory().numTensors;
      const result = await evaluateLlava(llava.model, llava.tokenizer, WORLD, { limit: QUICK_EVAL_LIMIT, blindModel: blind });
      expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
      llava.model.dispose();
      blind.model.dispose();
      const quick = card.quick_eval;
      expect(quick.limit).toBe(QUICK_EVAL_LIMIT);
      const close = (value: number, stored: number, what: string) =>
        expect(Math.abs(value - stored), `${what}: eval ${value}, card ${stored}`).toBeLessThanOrEqual(0.01);
      expect(Object.keys(result.metrics).sort()).toEqual(Object.keys(quick.metrics).sort());
      for (const [name, value] of Object.entries(result.metrics)) close(value, quick.metrics[name], name);
      expect(Object.keys(result.baselines!).sort()).toEqual(Object.keys(quick.baselines).sort());
      for (const [baseline, values] of Object.entries(result.baselines!))
        for (const [name, value] of Object.entries(values)) close(value, quick.baselines[baseline][name], `${baseline} ${name}`);
    },
    300_000,
  );

  it.runIf(hasCheckpoint)("trained in under 30 minutes on the 2-core machine (the issue's budget)", () => {
    // 1,490 s alone on the machine (two threads); the same plan on one thread beside its blind twin's run took 1,903 s and
    // wrote the same weights byte for byte.
    expect(card.train_seconds).toBeLessThanOrEqual(30 * 60);
  });

  it.runIf(hasCheckpoint)("the card's full eval measured the blind twin and every metric of the issue", () => {
    expect(card.blind_twin_measured).toBe(true);
    for (const name of ISSUE_METRICS) {
      expect(Number.isFinite(card.metrics[name]), name).toBe(true);
      if (!name.startsWith("medical_") && !name.startsWith("code_"))
        expect(Number.isFinite(card.baselines.blind[name]), `blind ${name}`).toBe(true);
    }
  });

  // Issue 16's targets, on the card's full eval (stored test splits; sentiment also on 600 fresh items).
  it.runIf(hasCheckpoint)(
    "VQA color and shape at least 0.3 above the blind twin (issue 16), and above the majority answer",
    () => {
      for (const type of ["color", "shape"]) {
        const accuracy = card.metrics[`vqa_${type}_accuracy`];
        expect(accuracy - card.baselines.blind[`vqa_${type}_accuracy`], `${type} over blind`).toBeGreaterThanOrEqual(0.3);
        // …and well above the train split's most frequent answer (seed 7's world: shape +0.25 over it, +0.37 over blind).
        expect(accuracy - card.baselines.majority[`vqa_${type}_accuracy`], `${type} over majority`).toBeGreaterThanOrEqual(0.2);
      }
    },
  );

  // KNOWN MISSES of issue 16, kept visible as expected failures (each fails this test file the day it is met: then turn
  // it into a plain assertion): docs/lab02-plan.md. llava-robust, llava tuned on negative instructions, is nearer
  // (F1 0.82–0.85: test/llava_robust.test.ts).
  it.runIf(hasCheckpoint).fails("KNOWN MISS: POPE F1 at least 0.85 with random, popular and adversarial negatives", () => {
    for (const negatives of POPE_NEGATIVES) expect(card.metrics[`pope_${negatives}_f1`], negatives).toBeGreaterThanOrEqual(0.85);
  });

  // Code is its own checkpoint's (test/llava_code.test.ts): llava's mixture writes programs of the right form with
  // coordinates a few pixels off (same pixels 0 on the card); llava-code, llava tuned in full on programs, draws 0.80 of
  // the test images to the same pixels.

  // The domains are their adapters' (test/llava_domain.test.ts): in the mixture llava writes "no lesions are seen" or one
  // lesion for most scans (location F1 0.16), and answers sentiment from the text exactly as the text-only rule and its
  // blind twin do (0.783 on the stored items). llava-medical reads the scans; llava-sentiment (a LoRA adapter on this
  // model, the issue's "checkpoints or adapters" per domain) reads face and text where they disagree: the issue's target.
});

/**
 * Lab 02's LLaVA tuned against object hallucination (`npm run pretrain -- llava-robust`, its blind twin
 * `-- llava-robust-blind`): the plan's refusals, the conversations (llava's existence stage and its mixture), a tiny run
 * of both end to end (the folders, the cards, `mllm-labs eval` reproducing them), and, when the folders are committed,
 * issue 16's POPE and VQA targets on the card and the eval recomputed.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import {
  pretrainLlavaRobust,
  checkRobustPlan,
  robustExistencePairs,
  robustExistenceExamples,
  LLAVA_ROBUST_PLAN,
  type LlavaRobustCard,
  type LlavaRobustPlan,
} from "../src/pretrain/llava_robust";
import { evaluateCheckpoint } from "../src/pretrain/run";
import { LLAVA_PLAN, loadLlava } from "../src/pretrain/llava";
import { POPE_NEGATIVES, popeQuestion } from "../src/metrics/pope";
import { sampleScene } from "../src/data/scene";
import { SCENE_COUNT_WEIGHTS } from "../src/data/world";
import { Random } from "../src/util/random";
import { scratchFolders, scratchCheckpoints } from "./helpers/scratch";
import { committedFullTune } from "./helpers/full_tune";

const scratch = scratchFolders();

const ROOT = path.join(__dirname, "..");
const WORLD = path.join(ROOT, "data", "world");
const CHECKPOINTS = path.join(ROOT, "data", "checkpoints");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A few scenes and steps, llava's mixture cut to a few records: the recipe end to end in seconds. */
const TINY: Partial<LlavaRobustPlan> = {
  steps: 3,
  batchSize: 4,
  existenceScenes: 4,
  replay: { ...LLAVA_PLAN, freshScenes: 2, freshPerDomain: 1, storedRecords: 2 },
  evaluation: { sets: ["vqa", "pope"], limit: 3 },
  // the plan's options exercised: the object map, questions asked alone and packed, the loss per conversation
  // (questionsPerConversation builds ordinary conversations: "llava-robust's existence conversations" checks them)
  objectMap: { weight: 1 },
  packQuestions: true,
  lossWeighting: "conversation",
};

describe("llava-robust's plan", () => {
  it("refuses a bad plan, quoting the value", () => {
    const bad = (override: Partial<LlavaRobustPlan>) => () => checkRobustPlan({ ...LLAVA_ROBUST_PLAN, ...override });
    expect(bad({ steps: 0 })).toThrow("llava-robust: steps must be a positive integer, got 0");
    expect(bad({ existenceScenes: 2.5 })).toThrow("llava-robust: existenceScenes must be a positive integer, got 2.5");
    expect(bad({ negatives: ["popular" as never] })).toThrow(
      'llava-robust: negatives must be a non-empty list of random, adversarial, binding, got ["popular"]',
    );
    expect(bad({ negatives: [] })).toThrow("llava-robust: negatives must be a non-empty list");
    expect(bad({ learningRate: Number.NaN })).toThrow("llava-robust: learningRate must be a positive number, got NaN");
    expect(bad({ presentPerScene: -1 })).toThrow("llava-robust: presentPerScene must be a positive integer, got -1");
    expect(bad({ batchSize: 0 })).toThrow("llava-robust: batchSize must be a positive integer, got 0");
    expect(bad({ objectMap: { weight: 0 } })).toThrow("object map: weight must be a positive number, got 0");
    expect(bad({ questionsPerConversation: 0 })).toThrow(
      "llava-robust: questionsPerConversation must be a positive integer, got 0",
    );
    expect(bad({ packQuestions: "yes" as never })).toThrow('llava-robust: packQuestions must be true or false, got "yes"');
    expect(bad({ packQuestions: true, questionsPerConversation: 2 })).toThrow(
      "llava-robust: packQuestions asks every question alone; it excludes questionsPerConversation (got 2)",
    );
    expect(bad({ lossWeighting: "answer" as never })).toThrow(
      'llava-robust: lossWeighting must be "token" or "conversation", got "answer"',
    );
    expect(bad({ splitByLength: 1 as never })).toThrow("llava-robust: splitByLength must be true or false, got 1");
    expect(() => checkRobustPlan(LLAVA_ROBUST_PLAN)).not.toThrow();
    expect(() => checkRobustPlan({ ...LLAVA_ROBUST_PLAN, splitByLength: true })).not.toThrow();
  });
});

describe("llava-robust's existence rounds", () => {
  it("match each present pair with one absent pair of the plan's kind, every answer the scene's truth", () => {
    const random = new Random(5);
    const counts = { yes: 0, no: 0, binding: 0, bindingAsked: 0 };
    for (let k = 0; k < 400; k++) {
      const scene = sampleScene(random, { countWeights: SCENE_COUNT_WEIGHTS });
      const present = new Set(scene.objects.map((o) => popeQuestion(o.color, o.shape)));
      const rounds = robustExistencePairs(scene.objects, LLAVA_ROBUST_PLAN, random);
      expect(new Set(rounds.map((r) => r.instruction)).size, "each pair asked once").toBe(rounds.length);
      for (const round of rounds) {
        expect(round.instruction, "the question asks the round's pair").toBe(popeQuestion(round.color, round.shape));
        expect(round.response, round.instruction).toBe(present.has(round.instruction) ? "yes" : "no");
      }
      const yes = rounds.filter((r) => r.response === "yes");
      const no = rounds.filter((r) => r.response === "no");
      expect(yes.length).toBe(Math.min(present.size, LLAVA_ROBUST_PLAN.presentPerScene));
      expect(no.length, "one absent pair per present one").toBe(yes.length);
      counts.yes += yes.length;
      counts.no += no.length;
      // The first absent pair is a binding pair whenever the scene has one: a colour and a shape both in it, apart.
      const colors = new Set(scene.objects.map((o) => o.color));
      const shapes = new Set(scene.objects.map((o) => o.shape));
      const hasBinding = [...colors].some((c) =>
        [...shapes].some((s) => !scene.objects.some((o) => o.color === c && o.shape === s)),
      );
      if (hasBinding) {
        counts.bindingAsked++;
        expect(no[0].negative).toBe("binding");
        const { color, shape } = no[0];
        expect(colors.has(color as never) && shapes.has(shape as never)).toBe(true);
      } else expect(no[0].negative).not.toBe("binding");
      if (no[0].negative === "binding") counts.binding++;
    }
    expect(counts.yes).toBe(counts.no);
    expect(counts.binding).toBe(counts.bindingAsked);
    expect(counts.bindingAsked).toBeGreaterThan(100); // most scenes of two or more objects have one
  });
});

describe("llava-robust's existence conversations", () => {
  it("ask every round of a scene in one conversation, or with questionsPerConversation 1 one question drawn anew", async () => {
    const plan = { ...LLAVA_ROBUST_PLAN, existenceScenes: 40, packQuestions: false }; // rounds in one conversation
    const whole = await robustExistenceExamples(plan, 0, false);
    const alone = await robustExistenceExamples({ ...plan, questionsPerConversation: 1 }, 0, false);
    const random = new Random(3);
    let asked = 0;
    alone.forEach((example, k) => {
      // the same scenes and rounds either way (the pairs' draws do not depend on how many are asked)
      const rounds = whole[k]
        .conversation(new Random(k))
        .filter((turn) => turn.from === "human")
        .map((t) => t.value.replace("<image>\n", ""));
      expect(example.objects, "the scene's objects travel with it").toEqual(whole[k].objects);
      const questions = new Set<string>();
      for (let draw = 0; draw < 8; draw++) {
        const turns = example.conversation(random);
        expect(turns.map((t) => t.from)).toEqual(["human", "gpt"]);
        expect(turns[0].value.startsWith("<image>\n")).toBe(true);
        const question = turns[0].value.replace("<image>\n", "");
        expect(rounds).toContain(question);
        questions.add(question);
      }
      if (rounds.length > 1 && questions.size > 1) asked++;
    });
    expect(asked, "different draws ask different questions of a scene").toBeGreaterThan(20);
  });

  it("with packQuestions, give every round of a scene as its own one-question conversation, in a new order each draw", async () => {
    const plan = { ...LLAVA_ROBUST_PLAN, existenceScenes: 40, packQuestions: false }; // rounds in one conversation
    const whole = await robustExistenceExamples(plan, 0, false);
    const packed = await robustExistenceExamples({ ...plan, packQuestions: true }, 0, false);
    expect(whole.every((example) => example.branches === undefined)).toBe(true);
    const random = new Random(4);
    let reordered = 0;
    packed.forEach((example, k) => {
      const rounds = whole[k].conversation(new Random(k));
      const branches = example.branches!(random);
      expect(branches.every((turns) => turns.length === 2 && turns[0].value.startsWith("<image>\n"))).toBe(true);
      // the same questions and answers as the whole conversation, each asked alone
      const asPairs = (turns: { value: string }[]) => turns.map((t) => t.value.replace("<image>\n", "")).join(" → ");
      const pairsOf = (turns: typeof rounds) => turns.flatMap((turn, t) => (t % 2 === 0 ? [asPairs([turn, turns[t + 1]])] : []));
      expect(branches.map(asPairs).sort()).toEqual(pairsOf(rounds).sort());
      if (branches.map(asPairs).join() !== example.branches!(random).map(asPairs).join()) reordered++;
    });
    expect(reordered, "the order changes between draws").toBeGreaterThan(20);
  });
});

describe("llava-robust end to end", () => {
  it("tunes llava and its blind twin in full and writes folders whose cards eval reproduces", async () => {
    const dir = scratchCheckpoints(scratch, "mllm-labs-robust-", ["llava", "llava-blind", "vision", "language"]);
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    const blind = (await pretrainLlavaRobust({ world: WORLD, out: path.join(dir, "llava-robust-blind"), blind: true, log }, TINY))
      .card;
    const robust = (await pretrainLlavaRobust({ world: WORLD, out: path.join(dir, "llava-robust"), log }, TINY)).card;
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    // 4 existence conversations + llava's mixture cut to 2 stored and 2 fresh scenes, 2 + 1 of each domain.
    expect(lines.some((l) => l.startsWith("llava-robust: 17 conversations ("))).toBe(true);
    expect(lines.some((l) => l.startsWith("llava-robust-blind step 3/3"))).toBe(true);
    const config = JSON.parse(fs.readFileSync(path.join(dir, "llava-robust-blind", "config.json"), "utf8"));
    expect(config.model_type).toBe("llama");
    expect(config.mllm_labs).toMatchObject({ blind_twin_of: "../llava-robust", vision_checkpoint: "../vision" });
    const llava = loadLlava(path.join(CHECKPOINTS, "llava"));
    expect(robust.parameters).toBe(llava.model.parameterCount());
    llava.model.dispose();
    expect(robust).toMatchObject({
      model_type: "llava",
      base_checkpoint: "../llava",
      baseline_checkpoints: { blind: "../llava-robust-blind" },
      blind_twin_measured: true,
      command: "npm run pretrain -- llava-robust",
      eval_options: { sets: ["vqa", "pope"], limit: 3 },
    });
    expect(blind).toMatchObject({ model_type: "llama", base_checkpoint: "../llava-blind" });
    // The object map trains beside the language loss on the sighted run only (the twin has no image tokens).
    expect(robust.object_map_curve).toHaveLength(robust.loss_curve.length);
    expect(robust.object_map_curve!.every((loss) => Number.isFinite(loss) && loss > 0)).toBe(true);
    expect(blind.object_map_curve).toBeUndefined();
    expect(robust.data).toBe(
      "4 existence conversations of fresh scenes (seed 71) + llava's stage-2 mixture replayed (scenes 4, medical 3, code 3, sentiment 3; 17 conversations in all); eval: vqa and pope, the first 3 of each",
    );
    expect(Object.keys(robust.metrics).every((key) => key.startsWith("vqa_") || key.startsWith("pope_"))).toBe(true);
    for (const negatives of POPE_NEGATIVES) expect(robust.metrics).toHaveProperty(`pope_${negatives}_f1`);
    expect(Object.keys(robust.baselines)).toEqual(expect.arrayContaining(["before_tuning", "blind"]));
    expect(Object.keys(blind.baselines)).not.toContain("blind");
    expect(Object.keys(robust.baseline_notes).sort()).toEqual(Object.keys(robust.baselines).sort());
    // The blind twin's card metrics are the baseline llava-robust's eval measured for it.
    expect(robust.baselines.blind).toEqual(blind.metrics);
    expect(fs.readFileSync(path.join(dir, "llava-robust", "README.md"), "utf8")).toMatch(/\| pope_adversarial_f1 \|/);
    for (const [name, card] of [
      ["llava-robust", robust],
      ["llava-robust-blind", blind],
    ] as const) {
      const evaluated = await evaluateCheckpoint(path.join(dir, name), WORLD);
      expect(evaluated.metrics, name).toEqual(card.metrics);
      expect(evaluated.baselines, name).toEqual(card.baselines);
    }
    expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
    // Only --force replaces a folder; nothing is written when the base is missing.
    await expect(pretrainLlavaRobust({ world: WORLD, out: path.join(dir, "llava-robust") }, TINY)).rejects.toThrow(
      /already exists \(.*\); pass --force/,
    );
    await expect(pretrainLlavaRobust({ world: WORLD, out: "/tmp/none/llava-robust" }, TINY)).rejects.toThrow(
      /pretrain llava-robust: \/tmp\/none\/llava is missing \(make it with npm run pretrain -- llava\)/,
    );
  }, 600_000);
});

describe("llava-robust with each step's rows in parts of similar length", () => {
  it("follows the one-batch run's loss curve, sighted and blind, and writes nothing in a dry run", async () => {
    const dir = scratchCheckpoints(scratch, "mllm-labs-robust-split-", ["llava", "llava-blind", "vision", "language"]);
    const before = tf.memory().numTensors;
    // more steps and rows than TINY, so that batches mix packed, scene and domain rows; no object map (it takes one part)
    const plan: Partial<LlavaRobustPlan> = { ...TINY, objectMap: undefined, steps: 6, batchSize: 6, existenceScenes: 8 };
    for (const blind of [false, true]) {
      const out = path.join(dir, blind ? "llava-robust-blind" : "llava-robust");
      const lines: string[] = [];
      const run = async (splitByLength: boolean) =>
        (
          await pretrainLlavaRobust(
            { world: WORLD, out, blind, dryRun: true, log: (l) => lines.push(l) },
            { ...plan, splitByLength },
          )
        ).card;
      const [one, parts] = [await run(false), await run(true)];
      const name = blind ? "llava-robust-blind" : "llava-robust";
      const split = lines
        .map((l) =>
          l.match(new RegExp(`^${name}: (\\d+) of 6 steps in two parts; padded positions (\\d+) against (\\d+) in one batch$`)),
        )
        .find(Boolean);
      expect(split, lines.join("\n")).toBeTruthy();
      expect(Number(split![1]), "steps split").toBeGreaterThan(0);
      expect(Number(split![2])).toBeLessThan(Number(split![3]));
      expect(parts.plan.splitByLength).toBe(true);
      expect(parts.loss_curve).toHaveLength(one.loss_curve.length);
      parts.loss_curve.forEach((loss, k) =>
        expect(Math.abs(loss - one.loss_curve[k]), `blind ${blind}, point ${k}`).toBeLessThan(1e-3),
      );
      expect(fs.existsSync(out)).toBe(false);
    }
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    // the object map reads the batch in one part: the sighted run refuses both before it draws anything
    await expect(
      pretrainLlavaRobust(
        { world: WORLD, out: path.join(dir, "llava-robust"), dryRun: true },
        { ...plan, splitByLength: true, objectMap: { weight: 1 } },
      ),
    ).rejects.toThrow(
      "pretrain llava-robust: splitByLength takes no object-map objective (its loss reads the batch in one part)",
    );
  }, 600_000);
});

const robust = committedFullTune<LlavaRobustCard>("llava-robust", LLAVA_ROBUST_PLAN, ["before_tuning"], 900_000);
committedFullTune<LlavaRobustCard>("llava-robust-blind", LLAVA_ROBUST_PLAN, ["before_tuning"], 900_000);

describe("issue 16's POPE and VQA targets (committed llava-robust, the full test sets)", () => {
  it.runIf(robust.has)("POPE F1 and accuracy above llava's and the blind twin's on every kind, the yes-bias gone", () => {
    const { metrics, baselines } = robust.card;
    expect(robust.card.blind_twin_measured).toBe(true);
    for (const negatives of POPE_NEGATIVES) {
      const [f1, accuracy] = [`pope_${negatives}_f1`, `pope_${negatives}_accuracy`];
      expect(metrics[f1] - baselines.before_tuning[f1], f1).toBeGreaterThanOrEqual(0.02);
      expect(metrics[accuracy] - baselines.before_tuning[accuracy], accuracy).toBeGreaterThanOrEqual(0.04);
      expect(metrics[f1] - baselines.blind[f1], f1).toBeGreaterThanOrEqual(0.15);
      // Not by saying yes: the answers stay balanced (POPE's questions are half present, half absent).
      expect(Math.abs(metrics[`pope_${negatives}_yes_ratio`] - 0.5), negatives).toBeLessThan(0.05);
    }
  });

  // KNOWN MISS of issue 16, kept visible as an expected failure (it fails this file the day it is met: then make it a
  // plain assertion): F1 0.857 / 0.859 / 0.833, random and popular met, adversarial 0.017 short; what is left is binding
  // (docs/lab02-plan.md, "Adopted: packed questions").
  it.runIf(robust.has).fails("KNOWN MISS: POPE F1 at least 0.85 on all three negative kinds", () => {
    for (const negatives of POPE_NEGATIVES)
      expect(robust.card.metrics[`pope_${negatives}_f1`], negatives).toBeGreaterThanOrEqual(0.85);
  });

  it.runIf(robust.has)("VQA colour and shape at least 0.3 above the blind twin, as llava's", () => {
    const { metrics, baselines } = robust.card;
    for (const type of ["color", "shape"]) {
      const key = `vqa_${type}_accuracy`;
      expect(metrics[key] - baselines.blind[key], key).toBeGreaterThanOrEqual(0.3);
    }
  });
});

/**
 * LLaVA's object-presence stage (src/pretrain/llava_presence.ts): the targets, the multiple-instance head's shapes, a
 * tiny run that reads the images (its loss falls below what any image-blind prediction reaches), trains only the
 * projector, repeats itself under the same seed and leaks no tensor, and the plan's `presence` ablation.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { loadTokenizer } from "../src/tokenizer/tokenizer";
import { LlavaForConditionalGeneration, type LlavaConfig } from "../src/models/llava";
import { VisionFeatureCache } from "../src/pretrain/llava_training";
import {
  PRESENCE_PAIRS,
  checkPresencePlan,
  presenceLogits,
  presenceScenes,
  presenceTargets,
  trainProjectorPresence,
  type LlavaPresencePlan,
} from "../src/pretrain/llava_presence";
import { LLAVA_PLAN, llavaPlanDifference, llavaPlanFor } from "../src/pretrain/llava";

const tokenizer = loadTokenizer(path.join(__dirname, "../data/world/tokenizer"));

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A tiny LLaVA: 16×16 images in 8×8 patches → 4 image tokens of 32. */
const TINY: LlavaConfig = {
  vision: { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 },
  text: {
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 1,
    numHeads: 4,
    numKeyValueHeads: 2,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 64,
    eosTokenIds: [tokenizer.eosTokenId],
    padTokenId: tokenizer.padTokenId,
  },
  imageTokenId: tokenizer.tokenId("<image>"),
  visionFeatureLayers: [-2],
  visionFeatureSelectStrategy: "default",
  seed: 3,
};

/** Image k: noise seeded by k (each scene its own picture, so its objects can be read from it). */
const imagesOf = (keys: readonly string[]) =>
  tf.tidy(() => tf.concat(keys.map((key) => tf.randomNormal([1, 3, 16, 16], 0, 1, "float32", Number(key.split("/").pop()) + 1))));

/** The lowest loss a prediction that ignores the image reaches: each pair's presence rate over the scenes. */
function blindLoss(targets: number[][]): number {
  let total = 0;
  for (let pair = 0; pair < PRESENCE_PAIRS.length; pair++) {
    const rate = targets.reduce((sum, row) => sum + row[pair], 0) / targets.length;
    if (rate > 0 && rate < 1) total += -(rate * Math.log(rate) + (1 - rate) * Math.log(1 - rate));
  }
  return total / PRESENCE_PAIRS.length;
}

async function snapshot(variables: readonly tf.Variable[]): Promise<Float32Array[]> {
  return Promise.all(variables.map(async (v) => (await v.data()) as Float32Array));
}
const differs = (a: readonly Float32Array[], b: readonly Float32Array[]) => a.some((x, k) => x.some((v, i) => v !== b[k][i]));

describe("LLaVA's presence stage", () => {
  it("presenceTargets marks each colour–shape pair a scene holds, and names an unknown one", () => {
    expect(PRESENCE_PAIRS).toHaveLength(30);
    const row = presenceTargets([
      { color: "red", shape: "star" },
      { color: "blue", shape: "circle" },
      { color: "red", shape: "star" },
    ]);
    expect(row.reduce((a, b) => a + b, 0)).toBe(2);
    expect(row[PRESENCE_PAIRS.indexOf("red star")]).toBe(1);
    expect(row[PRESENCE_PAIRS.indexOf("blue circle")]).toBe(1);
    expect(() => presenceTargets([{ color: "teal", shape: "star" } as never])).toThrow(/unknown object "teal star"/);
  });

  it("reads the images: the loss falls below the image-blind optimum, only the projector moves, same seed same run, no leaks", async () => {
    const scenes = await presenceScenes(8, 11, undefined);
    expect(scenes.map((s) => s.key)).toEqual(Array.from({ length: 8 }, (_, k) => `fresh/presence/${k}`));
    expect(scenes.every((s) => s.rgb === undefined && s.objects.length >= 1)).toBe(true);
    const targets = scenes.map((s) => presenceTargets(s.objects));
    const plan: LlavaPresencePlan = { steps: 80, scenes: 8, learningRate: 1e-2, batchSize: 8 };
    const run = async () => {
      const model = new LlavaForConditionalGeneration(TINY);
      const cache = new VisionFeatureCache(model, async (keys) => imagesOf(keys) as tf.Tensor4D);
      const before = tf.memory().numTensors;
      const projector = await snapshot(model.projector.namedParameters().map(([, v]) => v));
      const frozen = await snapshot([
        ...model.visionTower.namedParameters().map(([, v]) => v),
        ...model.languageModel.namedParameters().map(([, v]) => v),
      ]);
      const lines: string[] = [];
      const result = await trainProjectorPresence(model, scenes, cache, plan, {
        seed: 4,
        log: (l) => lines.push(l),
        name: "tiny",
      });
      expect(tf.memory().numTensors, "tensors leaked by the presence stage").toBe(before);
      expect(differs(projector, await snapshot(model.projector.namedParameters().map(([, v]) => v)))).toBe(true);
      const after = await snapshot([
        ...model.visionTower.namedParameters().map(([, v]) => v),
        ...model.languageModel.namedParameters().map(([, v]) => v),
      ]);
      expect(differs(frozen, after), "the tower or the LLM moved").toBe(false);
      expect(lines[lines.length - 1]).toMatch(/^tiny presence step 80\/80: loss /);
      model.dispose();
      return result;
    };
    const first = await run();
    expect(first.curve).toHaveLength(40);
    // Under the image-blind optimum (each pair at its presence rate), reachable only by telling the scenes apart.
    expect(first.curve[first.curve.length - 1]).toBeLessThan(0.5 * blindLoss(targets));
    const second = await run();
    expect(second.curve).toEqual(first.curve);
  });

  it("presenceLogits is the maximum over image tokens of the head's read-out; the stage refuses a bad plan", async () => {
    const model = new LlavaForConditionalGeneration(TINY);
    const head = {
      weight: tf.randomNormal([32, PRESENCE_PAIRS.length], 0, 1, "float32", 7),
      bias: tf.linspace(-1, 1, PRESENCE_PAIRS.length),
    };
    const features = tf.randomNormal([3, 4, 32], 0, 1, "float32", 8);
    const logits = presenceLogits(model, features, head);
    expect(logits.shape).toEqual([3, PRESENCE_PAIRS.length]);
    // By hand: every image token's read-out, then the largest per image and pair.
    const tokens = (await model.projectFeatures(features).array()) as number[][][]; // [3, 4, 32]
    const [weight, bias] = [(await head.weight.array()) as number[][], (await head.bias.array()) as number[]];
    const expected = tokens.map((image) =>
      PRESENCE_PAIRS.map((_, pair) =>
        Math.max(...image.map((token) => token.reduce((sum, x, d) => sum + x * weight[d][pair], bias[pair]))),
      ),
    );
    const got = (await logits.array()) as number[][];
    got.forEach((row, b) => row.forEach((value, pair) => expect(value).toBeCloseTo(expected[b][pair], 4)));
    // A different token wins for different pairs: not the mean, not one fixed token.
    const winners = new Set(
      PRESENCE_PAIRS.map((_, pair) => {
        const scores = tokens[0].map((token) => token.reduce((sum, x, d) => sum + x * weight[d][pair], 0));
        return scores.indexOf(Math.max(...scores));
      }),
    );
    expect(winners.size).toBeGreaterThan(1);
    tf.dispose([logits, features, head.weight, head.bias]);
    const cache = new VisionFeatureCache(model, async (keys) => imagesOf(keys) as tf.Tensor4D);
    const scenes = await presenceScenes(2, 1, undefined);
    const args = { seed: 0, log: () => {}, name: "tiny" };
    const good: LlavaPresencePlan = { steps: 1, scenes: 2, learningRate: 1e-3, batchSize: 2 };
    await expect(trainProjectorPresence(model, scenes, cache, { ...good, steps: 0 }, args)).rejects.toThrow(
      /steps must be a positive integer, got 0/,
    );
    await expect(trainProjectorPresence(model, scenes, cache, { ...good, batchSize: 4 }, args)).rejects.toThrow(
      /2 scenes make no batch of 4/,
    );
    await expect(trainProjectorPresence(model, scenes, cache, { ...good, learningRate: -1 }, args)).rejects.toThrow(
      /learningRate must be a positive number, got -1/,
    );
    expect(() => checkPresencePlan({ ...good, scenes: 1.5 })).toThrow(/scenes must be a positive integer, got 1.5/);
    await expect(presenceScenes(0, 1, undefined)).rejects.toThrow(/count must be a positive integer, got 0/);
    model.dispose();
  });

  it("the `presence` ablation is the card's plan with a presence stage, and nothing else", () => {
    const plan = llavaPlanFor("presence");
    expect(plan.presence).toEqual({ steps: 3000, scenes: 16000, learningRate: 2e-3, batchSize: 64 });
    expect(llavaPlanDifference(plan, LLAVA_PLAN)).toEqual({ presence: plan.presence });
    expect(LLAVA_PLAN.presence).toBeUndefined();
  });
});

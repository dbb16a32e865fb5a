/**
 * Multi-image prompts for the LLaVA-style model (lab 05): F frames per row as
 * [B·F, 3, S, S], per-row placeholder checks that quote both numbers,
 * learned frame-index embeddings (off by default, zero at the start), and
 * generation with beams over a story prompt.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { LlavaForConditionalGeneration, type LlavaConfig } from "../src/models/llava";
import { llavaConfigFromHF, llavaConfigToHF } from "../src/models/llava_spec";
import { multiImagePrompt, countImagePlaceholders, storyText } from "../src/data/story_prompt";
import { expandImageTokens } from "../src/data/conversation";
import { maxDifference } from "./helpers/max_difference";

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const IMAGE = 40; // placeholder id, outside the text vocabulary
const CONFIG: LlavaConfig = {
  vision: { hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 },
  text: { vocabSize: 32, hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2 },
  imageTokenId: IMAGE,
  seed: 4,
};

/** A row: text 1 2, then `frames` placeholders of `n` tokens each separated by token 3, then 5. */
const row = (frames: number, n: number) => [
  1,
  2,
  ...expandImageTokens(Array.from({ length: frames }, () => [3, IMAGE]).flat(), IMAGE, n),
  5,
];

describe("multi-image prompt text", () => {
  it("puts one placeholder per frame after its separator, then the instruction", () => {
    expect(multiImagePrompt(2, { frameSeparator: "frame {k}: ", instruction: "tell the story." })).toBe(
      "frame 1: <image>frame 2: <image>\ntell the story.",
    );
    expect(multiImagePrompt(3)).toBe("<image><image><image>\n");
    expect(countImagePlaceholders(multiImagePrompt(5))).toBe(5);
    expect(storyText({ frames: [{ sentence: "a." }, { sentence: "b." }] })).toBe("a. b.");
    expect(() => multiImagePrompt(0)).toThrow(/frames must be a positive integer, got 0/);
  });
});

describe("LLaVA with F frames per row", () => {
  it("rows of a [B·F] batch equal each row alone; per-row checks quote the counts", async () => {
    const model = new LlavaForConditionalGeneration(CONFIG);
    const n = model.imageTokensPerImage; // (16/8)² = 4
    const F = 3;
    const pixels = tf.randomNormal([2 * F, 3, 16, 16], 0, 1, "float32", 2);
    const ids = tf.tensor2d([row(F, n), row(F, n)], [2, row(F, n).length], "int32");
    const before = tf.memory().numTensors;
    const batch = model.forward({ inputIds: ids, pixelValues: pixels, framesPerRow: F }).logits; // [2, T, V]
    const second = tf.tidy(() => {
      const alone = model.forward({
        inputIds: ids.slice([1, 0], [1, -1]),
        pixelValues: pixels.slice([F], [F]),
        framesPerRow: F,
      }).logits;
      return alone
        .sub(batch.slice([1], [1]))
        .abs()
        .max();
    });
    expect((await second.data())[0]).toBeLessThan(1e-5);
    // Swapping two frames of row 1 changes its logits (the frames are read in order).
    const swapped = tf.tidy(() => tf.concat([pixels.slice([0], [4]), pixels.slice([5], [1]), pixels.slice([4], [1])]));
    const changed = model.forward({ inputIds: ids, pixelValues: swapped, framesPerRow: F }).logits;
    expect(await maxDifference(changed, batch)).toBeGreaterThan(1e-4);
    tf.dispose([batch, second, swapped, changed]);
    expect(tf.memory().numTensors).toBe(before);

    // Row 0 holds 4 frames' placeholders and row 1 two: the batch total (6 · n) matches, each row does not.
    const uneven = tf.tensor2d([row(4, n), [...row(2, n), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], [2, row(4, n).length], "int32");
    expect(() => model.forward({ inputIds: uneven, pixelValues: pixels, framesPerRow: F })).toThrow(
      /a row holds (16|8) image token\(s\) \(id 40\) but 3 frames per row need 3 × 4 = 12/,
    );
    await expect(model.generate({ inputIds: uneven, pixelValues: pixels, framesPerRow: F })).rejects.toThrow(
      /row 0 holds 16 image token\(s\) \(4 <image> placeholder\(s\) of 4 tokens\) but 3 frames per row need 12/,
    );
    expect(() => model.forward({ inputIds: ids, pixelValues: pixels.slice([0], [5]), framesPerRow: F })).toThrow(
      /2 row\(s\) × 3 frames per row need 6 images, got 5/,
    );
    tf.dispose([pixels, ids, uneven]);
    model.dispose();
  });

  it("frame embeddings: off adds no parameter; on starts at zero, is saved in the config, and moves the logits once learned", async () => {
    const plain = new LlavaForConditionalGeneration(CONFIG);
    const framed = new LlavaForConditionalGeneration({ ...CONFIG, frameEmbeddings: 5 });
    const names = (model: LlavaForConditionalGeneration) => [...model.namedParameters()].map(([name]) => name);
    expect(names(framed).filter((name) => !names(plain).includes(name))).toEqual(["frame_embeddings.weight"]);
    expect(llavaConfigToHF(plain.config)).not.toHaveProperty("frame_embeddings");
    expect(llavaConfigToHF(framed.config).frame_embeddings).toBe(5);
    const n = plain.imageTokensPerImage;
    const pixels = tf.randomNormal([5, 3, 16, 16], 0, 1, "float32", 3);
    const ids = tf.tensor2d([row(5, n)], [1, row(5, n).length], "int32");
    const a = plain.forward({ inputIds: ids, pixelValues: pixels, framesPerRow: 5 }).logits;
    const b = framed.forward({ inputIds: ids, pixelValues: pixels, framesPerRow: 5 }).logits;
    expect(await maxDifference(a, b)).toBe(0); // same weights otherwise, zero frame vectors
    framed.frameEmbedding!.weight.assign(tf.randomNormal([5, 16], 0, 1, "float32", 9));
    const c = framed.forward({ inputIds: ids, pixelValues: pixels, framesPerRow: 5 }).logits;
    expect(await maxDifference(a, c)).toBeGreaterThan(1e-3);
    const six = tf.tidy(() => tf.concat([pixels, pixels.slice([0], [1])]));
    const sixIds = tf.tensor2d([row(6, n)], [1, row(6, n).length], "int32");
    expect(() => framed.forward({ inputIds: sixIds, pixelValues: six, framesPerRow: 6 })).toThrow(
      /6 frames per row but the model has 5 frame embeddings/,
    );
    tf.dispose([pixels, ids, a, b, c, six, sixIds]);
    plain.dispose();
    framed.dispose();
  });

  it("the config round-trips frame_embeddings; a bad value is quoted", () => {
    const document = llavaConfigToHF({ ...CONFIG, frameEmbeddings: 5 });
    expect(llavaConfigFromHF({ json: document, where: "config.json" } as never).frameEmbeddings).toBe(5);
    expect(() => new LlavaForConditionalGeneration({ ...CONFIG, frameEmbeddings: 1.5 })).toThrow(
      /frameEmbeddings must be an integer ≥ 0.*1.5/,
    );
  });

  it("generates a story from F frames with beams, the cache agreeing with full recomputation", async () => {
    const model = new LlavaForConditionalGeneration({ ...CONFIG, frameEmbeddings: 3 });
    const n = model.imageTokensPerImage;
    const pixels = tf.randomNormal([6, 3, 16, 16], 0, 1, "float32", 5);
    const ids = tf.tensor2d([row(3, n), row(3, n)], [2, row(3, n).length], "int32");
    const before = tf.memory().numTensors;
    const options = { numBeams: 3, maxNewTokens: 5, stopTokens: [7], noRepeatNgramSize: 2 };
    const cached = await model.generate({ inputIds: ids, pixelValues: pixels, framesPerRow: 3 }, options);
    const uncached = await model.generate(
      { inputIds: ids, pixelValues: pixels, framesPerRow: 3 },
      { ...options, useCache: false },
    );
    expect(cached).toEqual(uncached);
    expect(cached).toHaveLength(2);
    const greedy = await model.generate(
      { inputIds: ids, pixelValues: pixels, framesPerRow: 3 },
      { maxNewTokens: 5, stopTokens: [] },
    );
    expect(greedy[0]).toHaveLength(5);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([pixels, ids]);
    model.dispose();
  });
});

describe("image-token pooling (LLaVA-OneVision's get_2dPool)", () => {
  // A 32×32 image in 8×8 patches: a 4×4 grid of 16 tokens, pooled with stride 2 to 2×2 = 4.
  const POOLED: LlavaConfig = { ...CONFIG, vision: { ...CONFIG.vision, imageSize: 32 }, imagePoolStride: 2 };

  it("pooled features equal a hand average of each 2×2 window of the projected grid", async () => {
    const model = new LlavaForConditionalGeneration(POOLED);
    expect(model.imageTokensPerImage).toBe(4);
    const pixels = tf.randomNormal([2, 3, 32, 32], 0, 1, "float32", 6);
    const before = tf.memory().numTensors;
    const projected = tf.tidy(() => model.projector.apply(model.visionFeatures(pixels))); // [2, 16, D]
    const pooled = model.imageFeatures(pixels); // [2, 4, D]
    expect(pooled.shape).toEqual([2, 4, 16]);
    const grid = (await projected.array()) as number[][][];
    const got = (await pooled.array()) as number[][][];
    let worst = 0;
    for (let b = 0; b < 2; b++)
      for (let py = 0; py < 2; py++)
        for (let px = 0; px < 2; px++)
          for (let d = 0; d < 16; d++) {
            // tokens are row-major over the 4×4 grid: (y, x) is token 4y + x
            const window = [0, 1].flatMap((dy) => [0, 1].map((dx) => grid[b][4 * (2 * py + dy) + 2 * px + dx][d]));
            const hand = window.reduce((a, c) => a + c, 0) / 4;
            worst = Math.max(worst, Math.abs(hand - got[b][2 * py + px][d]));
          }
    expect(worst).toBeLessThan(1e-6);
    tf.dispose([projected, pooled]);
    expect(tf.memory().numTensors).toBe(before);
    // The same weights unpooled (stride 1, the default) give the 16 projected tokens themselves.
    const plain = new LlavaForConditionalGeneration({ ...POOLED, imagePoolStride: undefined });
    expect(plain.imageTokensPerImage).toBe(16);
    expect([...plain.namedParameters()].map(([name]) => name)).toEqual([...model.namedParameters()].map(([name]) => name));
    const unpooled = plain.imageFeatures(pixels);
    const again = model.projector.apply(model.visionFeatures(pixels));
    expect(await maxDifference(unpooled, again)).toBe(0);
    tf.dispose([pixels, unpooled, again]);
    model.dispose();
    plain.dispose();
  });

  it("a 5-frame story prompt takes 5 × 4 placeholders; cached tower features pool the same way as pixels", async () => {
    const model = new LlavaForConditionalGeneration(POOLED);
    const n = model.imageTokensPerImage;
    const pixels = tf.randomNormal([5, 3, 32, 32], 0, 1, "float32", 7);
    const features = model.visionFeatures(pixels); // [5, 16, Dv]: unpooled, as the feature cache keeps them
    const ids = tf.tensor2d([row(5, n)], [1, row(5, n).length], "int32");
    const before = tf.memory().numTensors;
    const fromPixels = model.forward({ inputIds: ids, pixelValues: pixels, framesPerRow: 5 }).logits;
    const fromFeatures = model.forward({ inputIds: ids, visionFeatures: features, framesPerRow: 5 }).logits;
    expect(await maxDifference(fromPixels, fromFeatures)).toBeLessThan(1e-5);
    tf.dispose([fromPixels, fromFeatures]);
    expect(tf.memory().numTensors).toBe(before);
    const unpooledIds = tf.tensor2d([row(5, 16)], [1, row(5, 16).length], "int32");
    expect(() => model.forward({ inputIds: unpooledIds, pixelValues: pixels, framesPerRow: 5 })).toThrow(
      /5 frames per row need 5 × 4 = 20/,
    );
    tf.dispose([pixels, features, ids, unpooledIds]);
    model.dispose();
  });

  it("config.json: mllm_labs_image_pool_stride written only when on and read back; bad strides refused with the value", () => {
    expect(llavaConfigToHF(CONFIG)).not.toHaveProperty("mllm_labs_image_pool_stride");
    const document = llavaConfigToHF(POOLED);
    expect(document.mllm_labs_image_pool_stride).toBe(2);
    expect(llavaConfigFromHF({ json: document, where: "config.json" } as never).imagePoolStride).toBe(2);
    expect(llavaConfigFromHF({ json: llavaConfigToHF(CONFIG), where: "config.json" } as never).imagePoolStride).toBe(1);
    expect(() => new LlavaForConditionalGeneration({ ...POOLED, imagePoolStride: 0 })).toThrow(
      /imagePoolStride must be an integer ≥ 1.*got 0/,
    );
    expect(() => new LlavaForConditionalGeneration({ ...POOLED, imagePoolStride: 3 })).toThrow(
      /imagePoolStride 3 does not divide the 4×4 patch grid/,
    );
    expect(() => new LlavaForConditionalGeneration({ ...POOLED, visionFeatureSelectStrategy: "full" })).toThrow(
      /needs visionFeatureSelectStrategy "default".*got "full"/,
    );
  });
});

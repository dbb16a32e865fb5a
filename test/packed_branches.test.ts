/**
 * Shared-prefix packing (src/data/packed_branches.ts, `branchMask` in src/nn/masks.ts): one-question conversations
 * about the same image packed after their shared prefix compute exactly what each computes alone (logits and loss), in
 * a batch beside an ordinary conversation; the packing's rows, and its refusals.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { loadTokenizer } from "../src/tokenizer/tokenizer";
import { IGNORE_INDEX, tokenizeConversation, type ConversationTurn } from "../src/data/conversation";
import { conversationFromPairs } from "../src/data/llava_instructions";
import { packBranches } from "../src/data/packed_branches";
import { LlavaForConditionalGeneration } from "../src/models/llava";
import { disposeBatch, llavaBatch, llavaLoss } from "../src/pretrain/llava_training";
import { attentionMask, branchMask, disposeMask } from "../src/nn/masks";
import { maxDifference } from "./helpers/max_difference";
import { tinyLlavaConfig } from "./helpers/tiny_llava";

const WORLD = path.join(__dirname, "../data/world");
const tokenizer = loadTokenizer(path.join(WORLD, "tokenizer"));
const IMAGE = tokenizer.tokenId("<image>");
const IMAGE_TOKENS = 4;

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A tiny LLaVA over the world tokenizer: 16×16 images in 8×8 patches → 4 image tokens. */
const CONFIG = tinyLlavaConfig(tokenizer);

const QUESTIONS: ConversationTurn[][] = [
  conversationFromPairs([{ instruction: "is there a red star in the image?", response: "yes" }]),
  conversationFromPairs([{ instruction: "is there a blue circle in the image?", response: "no" }]),
  conversationFromPairs([{ instruction: "what color is the star?", response: "red" }]),
];
const tokenize = (turns: ConversationTurn[], blind = false) =>
  tokenizeConversation(tokenizer, turns, { imageTokens: IMAGE_TOKENS, blind });

describe("packBranches", () => {
  it("keeps the shared prefix once (cut before the first answer), then each conversation's rest at the prefix's next positions", () => {
    const alone = QUESTIONS.map((q) => tokenize(q));
    const packed = packBranches(alone, IMAGE);
    const prefix = packed.branchIds.indexOf(1);
    // "is there a" is shared by the first two only, so the prefix ends where the third question begins
    expect(alone[0].inputIds.slice(0, prefix)).toEqual(alone[2].inputIds.slice(0, prefix));
    expect(alone[0].inputIds[prefix]).not.toBe(alone[2].inputIds[prefix]);
    expect(packed.inputIds.length).toBe(prefix + alone.reduce((sum, c) => sum + c.inputIds.length - prefix, 0));
    expect(packed.images).toBe(1);
    let at = prefix;
    alone.forEach((c, k) => {
      const rest = c.inputIds.length - prefix;
      expect(packed.inputIds.slice(at, at + rest)).toEqual(c.inputIds.slice(prefix));
      expect(packed.labels.slice(at, at + rest)).toEqual(c.labels.slice(prefix));
      expect(packed.positionIds.slice(at, at + rest)).toEqual(Array.from({ length: rest }, (_, t) => prefix + t));
      expect(new Set(packed.branchIds.slice(at, at + rest))).toEqual(new Set([k + 1]));
      expect(packed.labels[at]).toBe(IGNORE_INDEX); // a branch's first token is never supervised
      at += rest;
    });
    expect(packed.labels.slice(0, prefix).every((label) => label === IGNORE_INDEX)).toBe(true);
  });

  it("stops the prefix one token before an answer that every conversation shares", () => {
    const same = [QUESTIONS[0], QUESTIONS[0]].map((q) => tokenize(q));
    const packed = packBranches(same, IMAGE);
    const firstAnswer = same[0].labels.findIndex((label) => label !== IGNORE_INDEX);
    expect(packed.branchIds.indexOf(1)).toBe(firstAnswer - 1);
    // both answers are supervised, once each
    expect(packed.labels.filter((label) => label !== IGNORE_INDEX).length).toBe(
      2 * same[0].labels.filter((label) => label !== IGNORE_INDEX).length,
    );
  });

  it("refuses no conversations, different images, an image after the prefix and conversations that share nothing", () => {
    expect(() => packBranches([], IMAGE)).toThrow(/no conversations/);
    const sighted = tokenize(QUESTIONS[0]);
    const blind = tokenize(QUESTIONS[1], true);
    expect(() => packBranches([sighted, { ...blind, images: 1 }], IMAGE)).toThrow(/image token at \d+, after the shared prefix/);
    expect(() => packBranches([sighted, blind], IMAGE)).toThrow(/holds 0 image\(s\) but conversation 0 holds 1/);
    const other = { inputIds: [7, ...sighted.inputIds.slice(1)], labels: sighted.labels, images: 1, droppedRounds: 0 };
    expect(() => packBranches([sighted, other], IMAGE)).toThrow(/share no prefix/);
    expect(() => packBranches([{ ...sighted, labels: [] }], IMAGE)).toThrow(/conversation 0 has \d+ ids but 0 labels/);
  });
});

describe("branchMask and attentionMask with branches", () => {
  it("lets a query see the prefix and its own branch, with causality and padding", () => {
    const branches = tf.tensor2d([[0, 0, 1, 1, 2, 2]], [1, 6], "int32");
    const padding = tf.tensor2d([[1, 1, 1, 1, 1, 0]], [1, 6], "int32");
    const mask = attentionMask({ queries: 6, keys: 6, causal: true, padding, branches });
    const allowed = tf.tidy(() => mask.bias!.equal(0).toInt().reshape([6, 6]).arraySync());
    expect(allowed).toEqual([
      [1, 0, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [1, 1, 1, 0, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [1, 1, 0, 0, 1, 0],
      [1, 1, 0, 0, 1, 0],
    ]);
    const plain = tf.tidy(() => branchMask(branches).reshape([6, 6]).arraySync());
    expect(plain[5]).toEqual([1, 1, 0, 0, 1, 1]);
    disposeMask(mask);
    tf.dispose([branches, padding]);
  });

  it("equals the comparison it stands for, 1 exactly where the key is in the prefix or the query's branch", async () => {
    const [B, T] = [3, 40];
    const ids = Array.from({ length: B * T }, (_, k) => [0, 0, 1, 2, 3, 7, 12][(k * 7919) % 7]);
    const branches = tf.tensor2d(ids, [B, T], "int32");
    const mask = branchMask(branches);
    const values = await mask.data();
    let checked = 0;
    for (let b = 0; b < B; b++)
      for (let q = 0; q < T; q++)
        for (let k = 0; k < T; k++) {
          const [query, key] = [ids[b * T + q], ids[b * T + k]];
          expect(values[(b * T + q) * T + k]).toBe(key === 0 || key === query ? 1 : 0);
          checked++;
        }
    expect(checked).toBe(B * T * T);
    tf.dispose([branches, mask]);
  });

  it("refuses branches with a cache or of the wrong shape", () => {
    const branches = tf.zeros([1, 4], "int32");
    expect(() => attentionMask({ queries: 2, keys: 4, causal: true, branches })).toThrow(/queries = keys/);
    expect(() => attentionMask({ queries: 3, keys: 3, causal: true, branches })).toThrow(/int32 \[B, 3\], got int32 \[1,4\]/);
    branches.dispose();
  });
});

describe("packed conversations compute what each computes alone", () => {
  it("gives every branch token the logits it has alone, and the same loss, beside an ordinary row, with no tensor leaks", async () => {
    const model = new LlavaForConditionalGeneration(CONFIG);
    const before = tf.memory().numTensors;
    const alone = QUESTIONS.map((q) => tokenize(q));
    const packed = packBranches(alone, IMAGE);
    const ordinary = tokenize(conversationFromPairs([{ instruction: "how many objects are there?", response: "3" }]));
    const pixels = tf.randomUniform([2, 3, 16, 16], -1, 1, "float32", 3);
    const features = model.visionFeatures(pixels); // [2, Nimg, Dv]
    const repeat = tf.tidy(() =>
      tf.concat([features.slice([0, 0, 0], [1, -1, -1]).tile([3, 1, 1]), features.slice([1, 0, 0], [1, -1, -1])]),
    );
    const packedBatch = llavaBatch([packed, ordinary], tokenizer.padTokenId, features);
    const separateBatch = llavaBatch([...alone, ordinary], tokenizer.padTokenId, repeat);
    expect(packedBatch.positionIds).toBeDefined();
    expect(separateBatch.positionIds).toBeUndefined();

    const packedLoss = llavaLoss(model, packedBatch);
    const separateLoss = llavaLoss(model, separateBatch);
    expect(Math.abs((await packedLoss.data())[0] - (await separateLoss.data())[0])).toBeLessThan(1e-5);

    const packedLogits = tf.tidy(() => model.forward(packedBatch).logits);
    const separateLogits = tf.tidy(() => model.forward(separateBatch).logits);
    const prefix = packed.branchIds.indexOf(1);
    let at = prefix;
    for (const [k, c] of alone.entries()) {
      const rest = c.inputIds.length - prefix;
      const fromPacked = tf.tidy(() => packedLogits.slice([0, at, 0], [1, rest, -1]));
      const fromAlone = tf.tidy(() => separateLogits.slice([k, prefix, 0], [1, rest, -1]));
      expect(await maxDifference(fromPacked, fromAlone)).toBeLessThan(1e-4);
      tf.dispose([fromPacked, fromAlone]);
      at += rest;
    }
    // the ordinary row is untouched by its neighbour's packing
    const T = ordinary.inputIds.length;
    const ordinaryPacked = tf.tidy(() => packedLogits.slice([1, 0, 0], [1, T, -1]));
    const ordinaryAlone = tf.tidy(() => separateLogits.slice([3, 0, 0], [1, T, -1]));
    expect(await maxDifference(ordinaryPacked, ordinaryAlone)).toBeLessThan(1e-4);

    tf.dispose([packedLoss, separateLoss, packedLogits, separateLogits, ordinaryPacked, ordinaryAlone, pixels]);
    disposeBatch(packedBatch);
    disposeBatch(separateBatch);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

/**
 * A step's rows in parts of similar length (`splitByLength`, `LlavaStepBatch` in src/pretrain/llava_training.ts): where
 * the cut falls, and that the parts' loss and gradients are the padded batch's, per token and per conversation, with
 * packed rows among them, with no tensor leaks; the object-map trainer refuses parts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { loadTokenizer } from "../src/tokenizer/tokenizer";
import { tokenizeConversation, type ConversationTurn } from "../src/data/conversation";
import { conversationFromPairs } from "../src/data/llava_instructions";
import { packBranches } from "../src/data/packed_branches";
import { LlavaForConditionalGeneration } from "../src/models/llava";
import {
  disposeBatch,
  LlavaTrainer,
  llavaBatch,
  llavaLoss,
  paddedPositions,
  splitByLength,
  type LlavaLossWeighting,
} from "../src/pretrain/llava_training";
import { ObjectMapHead } from "../src/pretrain/object_map";
import { maxDifference } from "./helpers/max_difference";
import { tinyLlavaConfig } from "./helpers/tiny_llava";

const WORLD = path.join(__dirname, "../data/world");
const tokenizer = loadTokenizer(path.join(WORLD, "tokenizer"));
const IMAGE = tokenizer.tokenId("<image>");
const IMAGE_TOKENS = 4;
const CONFIG = tinyLlavaConfig(tokenizer);

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const tokenize = (turns: ConversationTurn[]) => tokenizeConversation(tokenizer, turns, { imageTokens: IMAGE_TOKENS });

describe("splitByLength", () => {
  it("counts the positions parts take once padded: rows × each part's longest", () => {
    expect(paddedPositions([150, 210, 120], [[0, 1, 2]])).toBe(630);
    expect(paddedPositions([150, 210, 120], [[1], [2, 0]])).toBe(210 + 300);
  });

  it("cuts where the padded positions are fewest, longest rows first, every row once", () => {
    // one long row among seven short ones: alone in its part (210 + 7 × 150 = 1,260 against 8 × 210 = 1,680)
    expect(splitByLength([150, 210, 150, 120, 150, 150, 150, 150])).toEqual([[1], [0, 2, 4, 5, 6, 7, 3]]);
    // half long, half short: cut between them
    expect(splitByLength([100, 200, 100, 200])).toEqual([
      [1, 3],
      [0, 2],
    ]);
    // nothing to spare: one part
    expect(splitByLength([50, 50, 50])).toEqual([[0, 1, 2]]);
    expect(splitByLength([7])).toEqual([[0]]);
    for (const lengths of [
      [30, 7, 12, 99, 5, 64],
      [3, 1, 2],
    ]) {
      const parts = splitByLength(lengths);
      expect(parts.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, k) => k));
      expect(paddedPositions(lengths, parts)).toBeLessThanOrEqual(paddedPositions(lengths, [lengths.map((_, k) => k)]));
    }
  });

  it("refuses no rows and lengths that are not positive integers, quoting them", () => {
    expect(() => splitByLength([])).toThrow(/non-empty list of positive integers, got \[\]/);
    expect(() => splitByLength([3, 0])).toThrow(/got \[3,0\]/);
    expect(() => splitByLength([2.5])).toThrow(/got \[2.5\]/);
  });
});

describe("a batch in parts", () => {
  it("gives the padded batch's loss and gradients, per token and per conversation, with no tensor leaks", async () => {
    const model = new LlavaForConditionalGeneration(CONFIG);
    const before = tf.memory().numTensors;
    const questions = ["is there a red star in the image?", "is there a blue circle in the image?"].map((instruction, k) =>
      tokenize(conversationFromPairs([{ instruction, response: k ? "no" : "yes" }])),
    );
    const rows = [
      packBranches(questions, IMAGE),
      tokenize(
        conversationFromPairs([
          { instruction: "describe the image in detail.", response: "a red star above a blue circle and a green square." },
          { instruction: "how many objects are there?", response: "3" },
        ]),
      ),
      tokenize(conversationFromPairs([{ instruction: "what color is the star?", response: "red" }])),
      tokenize(conversationFromPairs([{ instruction: "how many objects are there?", response: "2" }])),
    ];
    const parts = splitByLength(rows.map((r) => r.inputIds.length));
    expect(parts.length).toBe(2); // the description pads the others in one batch
    const pixels = tf.randomUniform([rows.length, 3, 16, 16], -1, 1, "float32", 4);
    const features = model.visionFeatures(pixels); // [4, Nimg, Dv]: one image per row
    const rowsOf = (indices: number[]) => indices.map((k) => rows[k]);
    const featuresOf = (indices: number[]) => tf.gather(features, indices) as tf.Tensor3D;
    const whole = llavaBatch(rows, tokenizer.padTokenId, tf.clone(features) as tf.Tensor3D);
    const inParts = parts.map((indices) => llavaBatch(rowsOf(indices), tokenizer.padTokenId, featuresOf(indices)));
    expect(inParts.map((p) => p.inputIds.shape[1]).reduce((a, b) => a + b)).toBeGreaterThan(whole.inputIds.shape[1]);

    const variables = model.trainableParameters();
    for (const weighting of ["token", "conversation"] as LlavaLossWeighting[]) {
      const one = tf.variableGrads(() => llavaLoss(model, whole, weighting), variables);
      const split = tf.variableGrads(() => llavaLoss(model, inParts, weighting), variables);
      expect(Math.abs((await one.value.data())[0] - (await split.value.data())[0])).toBeLessThan(1e-5);
      let largest = 0;
      for (const name of Object.keys(one.grads))
        largest = Math.max(largest, await maxDifference(one.grads[name], split.grads[name]));
      expect(largest).toBeLessThan(1e-5);
      tf.dispose([one.value, split.value, ...Object.values(one.grads), ...Object.values(split.grads)]);
    }
    // parts of one row each: the same again
    const single = rows.map((_, k) => llavaBatch([rows[k]], tokenizer.padTokenId, featuresOf([k])));
    const oneLoss = llavaLoss(model, whole);
    const singleLoss = llavaLoss(model, single);
    expect(Math.abs((await oneLoss.data())[0] - (await singleLoss.data())[0])).toBeLessThan(1e-5);

    tf.dispose([oneLoss, singleLoss, pixels, features]);
    disposeBatch(whole);
    disposeBatch(inParts);
    disposeBatch(single);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it("is refused by a trainer with an object-map objective, and parts must be given", async () => {
    const model = new LlavaForConditionalGeneration(CONFIG);
    const head = new ObjectMapHead(CONFIG.text.hiddenSize, 1);
    const trainer = new LlavaTrainer(model, { stage: 2, objectMap: { weight: 1, head } });
    const row = tokenize(conversationFromPairs([{ instruction: "how many objects are there?", response: "2" }]));
    const pixels = tf.randomUniform([1, 3, 16, 16], -1, 1, "float32", 5);
    const batch = llavaBatch([row], tokenizer.padTokenId, model.visionFeatures(pixels) as tf.Tensor3D);
    expect(() => trainer.step([batch])).toThrow(/object-map objective takes a batch in one part/);
    expect(() => llavaLoss(model, [])).toThrow(/has no parts/);
    disposeBatch(batch);
    tf.dispose(pixels);
    trainer.dispose();
    head.dispose();
    model.dispose();
  });
});

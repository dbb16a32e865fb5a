/**
 * BLIP-2 stage 1 and 2 and InstructBLIP (lab 01): the Q-Former with its text
 * side, the three masks, the losses on hand-computable cases, hard negatives,
 * the soft prompt, no tensor leaks; the committed checkpoint loads, `eval`
 * reproduces its card, and the card clears its targets against the baselines.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { Blip2QFormerWithText, type Blip2QFormerTextConfig } from "../src/models/blip2_qformer";
import {
  itcAttentionMask,
  itmAttentionMask,
  itgAttentionMask,
  itcSimilarity,
  itcLoss,
  sampleHardNegatives,
  itmLoss,
  itgLoss,
  shiftedLanguageModelLoss,
  assembleSoftPrompt,
} from "../src/models/blip2_losses";
import { Blip2ForPretraining } from "../src/models/blip2_pretraining";
import { Blip2Pipeline, languageText, qformerText } from "../src/pipelines/blip2";
import {
  loadBlip2Pipeline,
  evaluateBlip2,
  blip2BridgeConfig,
  bridgeConfigToHF,
  questionsOfTypes,
  pretrainBlip2,
  BLIP2_PLAN,
  type SceneFeatures,
} from "../src/pretrain/blip2";
import {
  Blip2ForConditionalGeneration,
  Blip2QFormerModel,
  qformerImageContext,
  resolveBlip2QFormerConfig,
  type Blip2Config,
} from "../src/models/blip2";
import { blip2ConfigFromHF, blip2ConfigToHF } from "../src/models/blip2_spec";
import { readHFConfig } from "../src/io/hf_config";
import { saveCheckpoint } from "../src/io/safetensors";
import { vqaAccuracy, QUESTION_TYPES } from "../src/data/vqa";
import { LlamaForCausalLM } from "../src/models/llama";
import { AdamW } from "../src/train/adamw";
import { Random } from "../src/util/random";
import { loadTokenizer } from "../src/tokenizer/tokenizer";

const ROOT = path.join(__dirname, "..");
const WORLD = path.join(ROOT, "data", "world");
const CHECKPOINT = path.join(ROOT, "data", "checkpoints", "blip2");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const tiny: Blip2QFormerTextConfig = {
  hiddenSize: 16,
  intermediateSize: 32,
  numLayers: 2,
  numHeads: 2,
  crossAttentionFrequency: 2,
  encoderHiddenSize: 12,
  vocabSize: 851,
  maxPositionEmbeddings: 40,
};
const tinyModel = () =>
  new Blip2ForPretraining({
    qformer: tiny,
    numQueryTokens: 3,
    embedDim: 8,
    languageHiddenSize: 128,
    instructionAware: true,
    seed: 1,
  });

/** The 0/1 pattern of an additive mask row by row, for batch row b. */
async function pattern(mask: tf.Tensor, b = 0): Promise<number[][]> {
  const values = (await mask.array()) as number[][][][];
  return values[b][0].map((row) => row.map((v) => (v === 0 ? 1 : 0)));
}

describe("masks over [queries; text]", () => {
  // Nq = 2 queries, T = 3 text tokens, the last one padding in row 0.
  const padding = () =>
    tf.tensor2d(
      [
        [1, 1, 0],
        [1, 1, 1],
      ],
      [2, 3],
      "int32",
    );

  it("ITC (uni-modal): queries see queries, text sees real text", async () => {
    const pad = padding();
    const mask = itcAttentionMask(2, pad);
    expect(mask.shape).toEqual([2, 1, 5, 5]);
    expect(await pattern(mask)).toEqual([
      [1, 1, 0, 0, 0],
      [1, 1, 0, 0, 0],
      [0, 0, 1, 1, 0],
      [0, 0, 1, 1, 0],
      [0, 0, 1, 1, 0],
    ]);
    expect((await pattern(mask, 1))[4]).toEqual([0, 0, 1, 1, 1]);
    tf.dispose([pad, mask]);
  });

  it("ITM (bi-directional): everyone sees every query and every real token", async () => {
    const pad = padding();
    const mask = itmAttentionMask(2, pad);
    expect(await pattern(mask)).toEqual(new Array(5).fill([1, 1, 1, 1, 0]));
    expect(await pattern(mask, 1)).toEqual(new Array(5).fill([1, 1, 1, 1, 1]));
    tf.dispose([pad, mask]);
  });

  it("ITG (multi-modal causal, UniLM): queries see queries; text sees queries and earlier text", async () => {
    const pad = padding();
    const mask = itgAttentionMask(2, pad);
    expect(await pattern(mask, 1)).toEqual([
      [1, 1, 0, 0, 0],
      [1, 1, 0, 0, 0],
      [1, 1, 1, 0, 0],
      [1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1],
    ]);
    expect((await pattern(mask, 0))[4]).toEqual([1, 1, 1, 1, 0]); // padding is never a key
    tf.dispose([pad, mask]);
  });

  it("rejects a padding that is not [B, T]", () => {
    const bad = tf.ones([3]);
    expect(() => itcAttentionMask(2, bad)).toThrow(/textPadding must be \[B, T\].*got \[3\]/);
    bad.dispose();
  });
});

describe("losses on hand-computable cases", () => {
  it("ITC: max over queries, temperature, both directions", async () => {
    // Image 0's queries: (1,0) and (0,1); image 1's: (1,0) twice. Texts: (1,0) and (0,1).
    const images = tf.tensor3d([
      [
        [1, 0],
        [0, 1],
      ],
      [
        [1, 0],
        [1, 0],
      ],
    ]);
    const texts = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const sim = itcSimilarity(images, texts, 0.5);
    expect(Array.from(await sim.data())).toEqual([2, 2, 2, 0]); // max_q(q·t) / 0.5
    const loss = itcLoss(images, texts, 0.5);
    // i→t: rows [2,2] (target col 0) → log 2; [2,0] (target col 1) → −log(1/(1+e²)) = log(1+e²).
    // t→i: columns [2,2] (target row 0) → log 2; [2,0] (target row 1) → log(1+e²).
    const expected = (Math.log(2) + Math.log(1 + Math.exp(2))) / 2;
    expect((await loss.data())[0]).toBeCloseTo(expected, 5);
    tf.dispose([images, texts, sim, loss]);
  });

  it("ITM: the head averaged over the queries, 2-way cross-entropy", async () => {
    const queries = tf.tensor3d([
      [
        [2, 0],
        [0, 0],
      ],
      [
        [0, 0],
        [0, 4],
      ],
    ]); // mean logits [1, 0] and [0, 2]
    const labels = tf.tensor1d([0, 1], "int32");
    const { loss, logits } = itmLoss(queries, (x) => x.clone(), labels);
    expect(Array.from(await logits.data())).toEqual([1, 0, 0, 2]);
    const expected = (Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.exp(-2))) / 2;
    expect((await loss.data())[0]).toBeCloseTo(expected, 5);
    tf.dispose([queries, labels, loss, logits]);
  });

  it("ITG and the stage-2 LM loss: next token only where labels count", async () => {
    const V = 4;
    // Uniform logits except position 0 that is sure of token 2.
    const logits = tf.tensor3d([
      [
        [0, 0, 9, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ],
    ]);
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
    const both = itgLoss(logits, ids, tf.tensor2d([[1, 1, 1]], [1, 3], "int32"));
    const firstOnly = itgLoss(logits, ids, tf.tensor2d([[1, 1, 0]], [1, 3], "int32")); // token 3 is padding
    const sure = -Math.log(Math.exp(9) / (Math.exp(9) + 3));
    expect((await both.data())[0]).toBeCloseTo((sure + Math.log(V)) / 2, 5);
    expect((await firstOnly.data())[0]).toBeCloseTo(sure, 5);
    const labels = tf.tensor2d([[-100, -100, 3]], [1, 3], "int32");
    const lm = shiftedLanguageModelLoss(logits, labels);
    expect((await lm.data())[0]).toBeCloseTo(Math.log(V), 5);
    tf.dispose([logits, ids, both, firstOnly, labels, lm]);
  });
});

describe("ITM hard negatives", () => {
  it("never draw a positive, follow the similarities, and are seeded", () => {
    const random = new Random(3);
    const B = 6;
    const group = [0, 0, 1, 2, 2, 3]; // rows 0, 1 share a caption; so do 3, 4
    const sim = Array.from({ length: B * B }, () => random.next() * 4);
    sim[0 * B + 5] = 30; // row 0: column 5 is by far the hardest negative
    const isPositive = (r: number, c: number) => group[r] === group[c];
    const counts = new Array(B).fill(0);
    for (let draw = 0; draw < 300; draw++) {
      const picks = sampleHardNegatives(sim, B, isPositive, random);
      picks.forEach((c, r) => expect(isPositive(r, c), `row ${r} drew positive ${c}`).toBe(false));
      counts[picks[0]]++;
    }
    expect(counts[5]).toBeGreaterThan(290);
    expect(sampleHardNegatives(sim, B, isPositive, new Random(9))).toEqual(
      sampleHardNegatives(sim, B, isPositive, new Random(9)),
    );
    expect(() => sampleHardNegatives([1, 2, 3, 4], 2, () => true, random)).toThrow(/row 0 has no negative/);
  });
});

describe("the model", () => {
  it("has the shapes of its parts and LAVIS's parameter names", () => {
    const qformer = new Blip2QFormerWithText(tiny, 0);
    const names = qformer.namedParameters().map(([n]) => n);
    for (const name of [
      "embeddings.word_embeddings.weight",
      "layernorm.weight",
      "encoder.layer.0.crossattention.attention.key.weight",
      "encoder.layer.0.intermediate_query.dense.weight",
      "encoder.layer.0.intermediate.dense.weight",
      "encoder.layer.1.output.LayerNorm.bias",
    ]) {
      expect(names).toContain(name);
    }
    expect(names.some((n) => n.startsWith("encoder.layer.1.crossattention"))).toBe(false); // frequency 2: layers 0 only
    const queries = tf.randomNormal([2, 3, 16]);
    const ids = tf.tensor2d(
      [
        [1, 5, 6, 3],
        [1, 7, 3, 0],
      ],
      [2, 4],
      "int32",
    );
    const image = tf.randomNormal([2, 5, 12]);
    const out = qformer.forward({
      queryEmbeds: queries,
      inputIds: ids,
      image,
      mask: itgAttentionMask(
        3,
        tf.tensor2d([
          [1, 1, 1, 1],
          [1, 1, 1, 0],
        ]),
      ),
      outputCrossAttentions: true,
    });
    expect(out.lastHiddenState.shape).toEqual([2, 7, 16]);
    expect(out.crossAttentions!.map((w) => w.shape)).toEqual([[2, 2, 3, 5]]);
    expect(() => qformer.forward({ queryEmbeds: queries, image: tf.zeros([2, 5, 7]) })).toThrow(/width 12, got \[2,5,7\]/);
    const model = tinyModel();
    expect(model.queryOutputs(image).queries.shape).toEqual([2, 3, 16]);
    expect(model.softPrompt(image).shape).toEqual([2, 3, 128]);
    expect(
      model.itcSimilarities(image, {
        inputIds: ids,
        padding: tf.tensor2d([
          [1, 1, 1, 1],
          [1, 1, 1, 0],
        ]),
      }).shape,
    ).toEqual([2, 2]);
    expect(model.lmLogits(tf.zeros([2, 4, 16])).shape).toEqual([2, 4, 851]);
    expect(model.namedParameters().map(([n]) => n)).toContain(
      "instruct.qformer.encoder.layer.0.crossattention.attention.query.weight",
    );
    qformer.dispose();
    model.dispose();
  });

  it("under the ITC mask the queries ignore the text (the same as a queries-only pass)", async () => {
    const model = tinyModel();
    const image = tf.randomNormal([2, 5, 12], 0, 1, "float32", 4);
    const a = qformerText(loadTokenizer(path.join(WORLD, "tokenizer")), [
      "a red circle",
      "two shapes: a blue star and a green square",
    ]);
    const b = qformerText(loadTokenizer(path.join(WORLD, "tokenizer")), ["a yellow diamond", "a purple triangle"]);
    const queriesWith = (text: { inputIds: tf.Tensor; padding: tf.Tensor }) =>
      model.qformer
        .forward({
          queryEmbeds: model.queryTokens.tile([2, 1, 1]),
          inputIds: text.inputIds,
          image,
          mask: itcAttentionMask(3, text.padding),
        })
        .lastHiddenState.slice([0, 0, 0], [2, 3, 16]);
    const diff = tf.tidy(() => queriesWith(a).sub(queriesWith(b)).abs().max());
    expect((await diff.data())[0]).toBeLessThan(1e-5);
    const alone = tf.tidy(() => model.queryOutputs(image).queries.sub(queriesWith(a)).abs().max());
    expect((await alone.data())[0]).toBeLessThan(1e-5);
    tf.dispose([diff, alone, image, a.inputIds, a.padding, b.inputIds, b.padding]);
    model.dispose();
  });

  it("patchAttention: each query's weights over the patches (class token dropped)", async () => {
    const model = tinyModel();
    const pipeline = new Blip2Pipeline(
      undefined as never,
      model,
      undefined as never,
      loadTokenizer(path.join(WORLD, "tokenizer")),
    );
    const image = tf.randomNormal([2, 5, 12], 0, 1, "float32", 6);
    const maps = pipeline.patchAttention(image);
    expect(maps.shape).toEqual([2, 3, 4]);
    const sums = Array.from(await maps.sum(-1).data());
    sums.forEach((sum) => expect(sum).toBeLessThan(1)); // the class token took the rest
    sums.forEach((sum) => expect(sum).toBeGreaterThan(0.5));
    expect(pipeline.patchAttention(image, { instructionAware: true }).shape).toEqual([2, 3, 4]);
    expect(() => pipeline.patchAttention(image, { layer: 1 })).toThrow(/layer must be 0…0/);
    tf.dispose([image, maps]);
    model.dispose();
  });

  it("assembles the soft prompt: queries first, always attended, never learned", async () => {
    const queries = tf.ones([2, 3, 4]);
    const text = tf.zeros([2, 2, 4]);
    const mask = tf.tensor2d(
      [
        [1, 0],
        [1, 1],
      ],
      [2, 2],
      "int32",
    );
    const labels = tf.tensor2d(
      [
        [7, -100],
        [8, 9],
      ],
      [2, 2],
      "int32",
    );
    const prompt = assembleSoftPrompt(queries, text, mask, labels);
    expect(prompt.inputsEmbeds.shape).toEqual([2, 5, 4]);
    expect(await prompt.attentionMask.array()).toEqual([
      [1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1],
    ]);
    expect(await prompt.labels!.array()).toEqual([
      [-100, -100, -100, 7, -100],
      [-100, -100, -100, 8, 9],
    ]);
    expect(Array.from(await prompt.inputsEmbeds.slice([0, 2, 0], [1, 2, 1]).data())).toEqual([1, 0]);
    expect(() => assembleSoftPrompt(queries, tf.zeros([2, 2, 5]), mask)).toThrow(/textEmbeds must be \[2, T, 4\]/);
    tf.dispose([queries, text, mask, labels, prompt.inputsEmbeds, prompt.attentionMask, prompt.labels!]);
  });

  it("trains stage 1 and stage 2 without leaking tensors; the LLM stays frozen", async () => {
    const tokenizer = loadTokenizer(path.join(WORLD, "tokenizer"));
    const model = tinyModel();
    const language = new LlamaForCausalLM({
      vocabSize: 851,
      hiddenSize: 128,
      intermediateSize: 64,
      numLayers: 1,
      numHeads: 2,
      maxPositionEmbeddings: 64,
      eosTokenIds: [3],
      padTokenId: 0,
      seed: 2,
    });
    language.setTrainable(false);
    const pipeline = new Blip2Pipeline(undefined as never, model, language, tokenizer);
    const image = tf.randomNormal([4, 5, 12], 0, 1, "float32", 5);
    const captions = ["a red circle", "a blue star", "a red circle", "two shapes: a green square and a blue star"];
    const llmBefore = (await language.model.embedTokens.weight.data()).slice();
    const optimizer = new AdamW({ learningRate: 1e-3 });
    const before = tf.memory().numTensors;
    const text = qformerText(tokenizer, captions);
    const targets = tf.eye(4);
    const losses: number[] = [];
    for (let step = 0; step < 2; step++) {
      const loss = optimizer.minimize(
        () => {
          const l = model.stage1Losses(image, text, targets, [1, 0, 1, 0], [1, 0, 3, 2]);
          return l.itc.add(l.itm).add(l.itg) as tf.Scalar;
        },
        model.trainableParameters().filter((v) => !v.name.includes("instruct")),
      );
      losses.push((await loss.data())[0]);
      loss.dispose();
    }
    const lm = languageText(
      tokenizer,
      ["", "question: what color is the circle? answer:", "", ""],
      captions.map((c, k) => (k === 1 ? " red" : c)),
    );
    const stage2 = optimizer.minimize(
      () => pipeline.languageModelLoss(image, lm),
      [model.queryTokens, ...model.qformer.trainableParameters(), ...model.languageProjection.trainableParameters()],
    );
    expect(Number.isFinite((await stage2.data())[0])).toBe(true);
    const answers = await pipeline.answer(image, ["what color is the circle?", "a", "b", "c"], { instructionAware: true });
    expect(answers).toHaveLength(4);
    tf.dispose([text.inputIds, text.padding, targets, lm.inputIds, lm.attentionMask, lm.labels, stage2]);
    optimizer.dispose();
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(Array.from(await language.model.embedTokens.weight.data())).toEqual(Array.from(llmBefore));
    image.dispose();
    model.dispose();
    language.dispose();
  }, 60_000);
});

/** A tiny transformers-layout BLIP-2 (a 3 × 3 patch grid) for the config.json round trip. */
const TINY_BLIP2: Blip2Config = {
  vision: { hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, imageSize: 12, patchSize: 4 },
  qformer: { hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 2 },
  text: { vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, maxPositionEmbeddings: 16 },
  numQueryTokens: 3,
  imageTokenId: 39,
};
const hfDocument = (json: Record<string, unknown>) => ({ json: JSON.parse(JSON.stringify(json)), where: "config.json" });

describe("the windowed Q-Former (encoderWindow: each key/value is a patch's 3×3 neighbourhood)", () => {
  const windowed: Blip2QFormerTextConfig = { ...tiny, encoderWindow: 3 };
  const G = 3; // a 3 × 3 patch grid: Tk = 1 + 9 tokens
  const Dv = 12;
  /** The row-major index (1 + r·g + c) of patch (r, c) among the tokens (class token first). */
  const token = (r: number, c: number) => 1 + r * G + c;
  /** The image with patch (r, c) moved by +10 in every channel. */
  const perturbed = (image: tf.Tensor, r: number, c: number) =>
    tf.tidy(() =>
      image.add(tf.scalar(10).mul(tf.oneHot(tf.tensor1d([token(r, c)], "int32"), 1 + G * G).reshape([1, 1 + G * G, 1]))),
    );

  it("validates the window, quoting the bad value; 1 is the default and writes nothing", () => {
    for (const bad of [2, 0, -1, 1.5, Number.NaN])
      expect(() => resolveBlip2QFormerConfig({ encoderWindow: bad })).toThrow(
        `Q-Former: config.encoderWindow must be an odd integer ≥ 1 (1 = off), got ${JSON.stringify(bad)}`,
      );
    expect(resolveBlip2QFormerConfig({}).encoderWindow).toBe(1);
    expect(resolveBlip2QFormerConfig({ encoderWindow: 5 }).encoderWindow).toBe(5);
    const image = tf.zeros([2, 1 + 8, Dv]); // 8 patches: no square grid
    expect(() => qformerImageContext(image, 3)).toThrow(
      "Q-Former: encoderWindow 3 needs image features [B, 1 + g·g, Dv] (a class token, then a square patch grid), got [2,9,12]",
    );
    expect(qformerImageContext(image, 1)).toBe(image); // off: the features themselves
    image.dispose();
  });

  it("gives each patch its 3×3 neighbourhood (zeros beyond the edge) and the class token its own vector in the centre slot", async () => {
    const image = tf.randomNormal([2, 1 + G * G, Dv], 0, 1, "float32", 21);
    const context = qformerImageContext(image, 3);
    expect(context.shape).toEqual([2, 1 + G * G, 9 * Dv]);
    const x = (await image.array()) as number[][][];
    const c = (await context.array()) as number[][][];
    const slot = (b: number, t: number, k: number) => c[b][t].slice(k * Dv, (k + 1) * Dv);
    const zeros = new Array(Dv).fill(0);
    for (let k = 0; k < 9; k++) expect(slot(1, 0, k)).toEqual(k === 4 ? x[1][0] : zeros); // class token
    // Patch (0, 0): its up/left neighbours are beyond the edge; slot 5 (right) is patch (0, 1), slot 8 (down-right) patch (1, 1).
    expect([0, 1, 2, 3, 6].map((k) => slot(0, token(0, 0), k))).toEqual(new Array(5).fill(zeros));
    expect(slot(0, token(0, 0), 4)).toEqual(x[0][token(0, 0)]);
    expect(slot(0, token(0, 0), 5)).toEqual(x[0][token(0, 1)]);
    expect(slot(0, token(0, 0), 8)).toEqual(x[0][token(1, 1)]);
    // The centre patch (1, 1) sees the whole grid, row-major.
    for (let k = 0; k < 9; k++) expect(slot(0, token(1, 1), k)).toEqual(x[0][1 + k]);
    tf.dispose([image, context]);
  });

  it("has a cross-attention of input width window²·Dv and the shapes of the unwindowed model", () => {
    const qformer = new Blip2QFormerWithText(windowed, 0);
    const key = qformer.layers[0].crossAttention!.key.weight;
    expect([key.shape, qformer.layers[0].crossAttention!.value.weight.shape]).toEqual([
      [16, 9 * Dv],
      [16, 9 * Dv],
    ]);
    const image = tf.randomNormal([2, 1 + G * G, Dv], 0, 1, "float32", 22);
    const out = qformer.forward({
      queryEmbeds: tf.randomNormal([2, 3, 16], 0, 1, "float32", 23),
      image,
      outputCrossAttentions: true,
    });
    expect(out.lastHiddenState.shape).toEqual([2, 3, 16]);
    expect(out.crossAttentions!.map((w) => w.shape)).toEqual([[2, 2, 3, 1 + G * G]]); // one weight per token, as before
    expect(() => qformer.forward({ queryEmbeds: tf.zeros([2, 3, 16]), image: tf.zeros([2, 1 + G * G, 9 * Dv]) })).toThrow(
      /width 12, got \[2,10,108\]/, // the caller gives the tower's features; the Q-Former builds the neighbourhoods
    );
    const bridge = new Blip2ForPretraining({
      qformer: windowed,
      numQueryTokens: 3,
      embedDim: 8,
      languageHiddenSize: 128,
      seed: 1,
    });
    expect(bridge.softPrompt(image).shape).toEqual([2, 3, 128]);
    const plain = new Blip2QFormerModel({ ...windowed, numLayers: 2 }, 0); // the transformers-layout Q-Former reads the same context
    expect(plain.apply(tf.zeros([2, 3, 16]), image).shape).toEqual([2, 3, 16]);
    tf.dispose([image, out.lastHiddenState, ...out.crossAttentions!]);
    qformer.dispose();
    bridge.dispose();
    plain.dispose();
  });

  it("a patch's neighbour changes how a query weighs that patch with the window, and not without", async () => {
    // Only layer 0 cross-attends (frequency 2), and its queries come from the query embeddings alone, so the ratio of a
    // query's weights on two tokens, log w_p − log w_r = (q·k_p − q·k_r)/√Dh, moves only if k_p or k_r moved.
    const queries = tf.randomNormal([1, 3, 16], 0, 1, "float32", 24);
    const image = tf.randomNormal([1, 1 + G * G, Dv], 0, 1, "float32", 25);
    const moved = perturbed(image, 0, 0); // patch (0, 0): a neighbour of (0, 1), (1, 0), (1, 1), not of (2, 2)
    const logRatio = async (qformer: Blip2QFormerWithText, features: tf.Tensor, p: number, r: number) => {
      const weights = qformer.forward({ queryEmbeds: queries, image: features, outputCrossAttentions: true }).crossAttentions![0];
      const ratio = tf.tidy(() =>
        weights
          .slice([0, 0, 0, p], [1, -1, -1, 1])
          .log()
          .sub(weights.slice([0, 0, 0, r], [1, -1, -1, 1]).log()),
      );
      const values = Array.from(await ratio.data());
      tf.dispose([weights, ratio]);
      return values;
    };
    const change = async (qformer: Blip2QFormerWithText, p: number, r: number) => {
      const before = await logRatio(qformer, image, p, r);
      const after = await logRatio(qformer, moved, p, r);
      return Math.max(...before.map((v, k) => Math.abs(v - after[k])));
    };
    const plain = new Blip2QFormerWithText(tiny, 3);
    const window = new Blip2QFormerWithText(windowed, 3);
    // Patch (1, 1) against the class token (0) and against the far corner (2, 2): neither key moves without the window.
    expect(await change(plain, token(1, 1), 0)).toBeLessThan(1e-4);
    expect(await change(plain, token(0, 1), token(2, 2))).toBeLessThan(1e-4);
    // With it, (1, 1)'s and (0, 1)'s keys hold (0, 0) in a neighbour slot; (2, 2)'s and the class token's do not.
    expect(await change(window, token(1, 1), 0)).toBeGreaterThan(1e-2);
    expect(await change(window, token(0, 1), token(2, 2))).toBeGreaterThan(1e-2);
    expect(await change(window, token(2, 2), 0)).toBeLessThan(1e-4);
    tf.dispose([queries, image, moved]);
    plain.dispose();
    window.dispose();
  });

  it("acts only through the neighbour slots: with those key/value weights zero it is the unwindowed Q-Former", async () => {
    const plain = new Blip2QFormerWithText(tiny, 5);
    const window = new Blip2QFormerWithText(windowed, 6);
    const own = Object.fromEntries(plain.namedParameters());
    for (const [name, variable] of window.namedParameters()) {
      tf.tidy(() => {
        if (/crossattention\.attention\.(key|value)\.weight$/.test(name)) {
          const w = own[name]; // [Dq, Dv] → the centre slot of [Dq, 9·Dv]
          variable.assign(tf.concat([tf.zeros([16, 4 * Dv]), w, tf.zeros([16, 4 * Dv])], 1));
        } else variable.assign(own[name]);
      });
    }
    const queries = tf.randomNormal([2, 3, 16], 0, 1, "float32", 26);
    const image = tf.randomNormal([2, 1 + G * G, Dv], 0, 1, "float32", 27);
    const ids = tf.tensor2d(
      [
        [1, 5, 6, 3],
        [1, 7, 3, 0],
      ],
      [2, 4],
      "int32",
    );
    const run = (qformer: Blip2QFormerWithText) =>
      qformer.forward({ queryEmbeds: queries, inputIds: ids, image }).lastHiddenState;
    const same = tf.tidy(() => run(window).sub(run(plain)).abs().max());
    expect((await same.data())[0]).toBeLessThan(1e-5);
    for (const weight of [window.layers[0].crossAttention!.key.weight, window.layers[0].crossAttention!.value.weight]) {
      // now let the right-hand neighbour (slot 5) in
      tf.tidy(() =>
        weight.assign(weight.add(tf.concat([tf.zeros([16, 5 * Dv]), tf.fill([16, Dv], 0.3), tf.zeros([16, 3 * Dv])], 1))),
      );
    }
    const apart = tf.tidy(() => run(window).sub(run(plain)).abs().max());
    expect((await apart.data())[0]).toBeGreaterThan(1e-3);
    tf.dispose([queries, image, ids, same, apart]);
    plain.dispose();
    window.dispose();
  });

  it("round-trips through config.json (the bridge's and transformers' layout), the key written only when on", async () => {
    const checkpoints = path.join(ROOT, "data", "checkpoints");
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "blip2-window-"));
    try {
      for (const backbone of ["vision", "language"])
        fs.symlinkSync(path.join(checkpoints, backbone), path.join(folder, backbone));
      const visionWidth = readHFConfig(path.join(checkpoints, "vision")).json.vision_config.hidden_size as number;
      const model = new Blip2ForPretraining(blip2BridgeConfig(851, visionWidth, 128, 7, 3));
      const document = bridgeConfigToHF(model, path.join(folder, "vision"), path.join(folder, "language")) as {
        qformer_config: Record<string, unknown>;
      };
      expect(document.qformer_config.mllm_labs_encoder_window).toBe(3);
      const plainModel = new Blip2ForPretraining(blip2BridgeConfig(851, visionWidth, 128, 7));
      const plainDocument = bridgeConfigToHF(plainModel, path.join(folder, "vision"), path.join(folder, "language")) as {
        qformer_config: Record<string, unknown>;
      };
      expect("mllm_labs_encoder_window" in plainDocument.qformer_config).toBe(false); // existing checkpoints: unchanged
      plainModel.dispose();
      const bridgeDir = path.join(folder, "blip2");
      fs.mkdirSync(bridgeDir);
      await saveCheckpoint(bridgeDir, model.stateDict());
      fs.writeFileSync(path.join(bridgeDir, "config.json"), JSON.stringify(document));
      for (const name of ["tokenizer.json", "tokenizer_config.json"])
        fs.copyFileSync(path.join(WORLD, "tokenizer", name), path.join(bridgeDir, name));
      const pipeline = loadBlip2Pipeline(bridgeDir);
      expect(pipeline.bridge.config.qformer.encoderWindow).toBe(3);
      const image = tf.randomNormal([2, 1 + 64, visionWidth], 0, 1, "float32", 28);
      const diff = tf.tidy(() => pipeline.bridge.softPrompt(image).sub(model.softPrompt(image)).abs().max());
      expect((await diff.data())[0]).toBe(0);
      tf.dispose([image, diff]);
      pipeline.dispose();
      model.dispose();
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
    // transformers' Blip2Config: an mllm_labs_-prefixed key in qformer_config, read back; absent when off.
    const hf = blip2ConfigToHF({ ...TINY_BLIP2, qformer: { ...TINY_BLIP2.qformer, encoderWindow: 3 } });
    expect((hf.qformer_config as Record<string, unknown>).mllm_labs_encoder_window).toBe(3);
    expect(blip2ConfigFromHF(hfDocument(hf)).qformer.encoderWindow).toBe(3);
    const off = blip2ConfigToHF(TINY_BLIP2);
    expect("mllm_labs_encoder_window" in (off.qformer_config as Record<string, unknown>)).toBe(false);
    expect(blip2ConfigFromHF(hfDocument(off)).qformer.encoderWindow).toBe(1);
    const model = new Blip2ForConditionalGeneration(blip2ConfigFromHF(hfDocument(hf)));
    expect(model.qformer.layers[0].crossAttention!.key.weight.shape).toEqual([12, 9 * 16]);
    const pixels = tf.randomNormal([2, 3, 12, 12], 0, 1, "float32", 30);
    const encoded = model.encodeImage(pixels);
    expect(encoded.qformerLastHiddenState.shape).toEqual([2, 3, 12]);
    tf.dispose([pixels, encoded.visionLastHiddenState, encoded.qformerLastHiddenState, encoded.languageModelInputs]);
    model.dispose();
  }, 60_000);

  it("trains (stage 1 and the soft prompt) without leaking tensors", async () => {
    const tokenizer = loadTokenizer(path.join(WORLD, "tokenizer"));
    const model = new Blip2ForPretraining({
      qformer: windowed,
      numQueryTokens: 3,
      embedDim: 8,
      languageHiddenSize: 128,
      seed: 1,
    });
    const image = tf.randomNormal([4, 1 + G * G, Dv], 0, 1, "float32", 29);
    const optimizer = new AdamW({ learningRate: 1e-3 });
    const before = tf.memory().numTensors;
    const text = qformerText(tokenizer, ["a red circle", "a blue star", "a red circle", "a green square"]);
    const targets = tf.eye(4);
    const loss = optimizer.minimize(() => {
      const l = model.stage1Losses(image, text, targets, [1, 0, 1, 0], [1, 0, 3, 2]);
      return l.itc.add(l.itm).add(l.itg).add(model.softPrompt(image).square().mean()) as tf.Scalar;
    }, model.trainableParameters());
    expect(Number.isFinite((await loss.data())[0])).toBe(true);
    const key = model.qformer.layers[0].crossAttention!.key.weight;
    expect(key.shape).toEqual([16, 9 * Dv]);
    tf.dispose([loss, text.inputIds, text.padding, targets]);
    optimizer.dispose();
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    image.dispose();
    model.dispose();
  }, 60_000);
});

describe("the instruct stage's phases (question types per phase)", () => {
  const question = (type: "color" | "shape" | "count", answer: string) => ({
    type,
    question: `a ${type} question`,
    answer,
    answers: new Array(10).fill(answer),
  });
  const scenes = (): SceneFeatures => ({
    features: tf.tensor3d(
      Array.from({ length: 3 * 2 * 2 }, (_, k) => k),
      [3, 2, 2],
    ),
    captions: [["scene 0"], ["scene 1"], ["scene 2"]],
    vqa: [
      [question("color", "red"), question("count", "1")],
      [question("count", "2")],
      [question("shape", "star"), question("color", "blue")],
    ],
  });

  it("questionsOfTypes keeps the scenes with such questions, only those questions, and their own features", async () => {
    const data = scenes();
    const before = tf.memory().numTensors;
    const colour = questionsOfTypes(data, ["color"]);
    expect(colour.captions).toEqual([["scene 0"], ["scene 2"]]);
    expect(colour.vqa.map((qs) => qs.map((q) => q.answer))).toEqual([["red"], ["blue"]]);
    expect(await colour.features.array()).toEqual([
      [
        [0, 1],
        [2, 3],
      ],
      [
        [8, 9],
        [10, 11],
      ],
    ]);
    const two = questionsOfTypes(data, ["shape", "count"]);
    expect(two.vqa.map((qs) => qs.map((q) => q.answer))).toEqual([["1"], ["2"], ["star"]]);
    tf.dispose([colour.features, two.features]);
    expect(tf.memory().numTensors, "questionsOfTypes leaks").toBe(before);
    data.features.dispose();
  });

  it("questionsOfTypes refuses an unknown type and a selection with no scene, naming them", () => {
    const data = scenes();
    expect(() => questionsOfTypes(data, ["colour" as "color"])).toThrow(
      /unknown question type "colour" \(expected one of color, shape/,
    );
    expect(() => questionsOfTypes(data, ["relation"])).toThrow(/no scene has a question of type relation/);
    data.features.dispose();
  });

  it("the card's plan sums its phases to steps.instruct, and pretrainBlip2 refuses phases that do not", async () => {
    const phases = BLIP2_PLAN.instructPhases!;
    expect(phases.reduce((sum, phase) => sum + phase.steps, 0)).toBe(BLIP2_PLAN.steps.instruct);
    // Shape before colour, and count, exist and relation held out: beside colour from the start shape is never learnt,
    // and count beside colour costs colour its target (docs/lab01-plan.md).
    expect(phases.map((phase) => phase.questionTypes)).toEqual([["shape"], ["shape", "color"]]);
    const bad = { ...BLIP2_PLAN, instructPhases: [{ steps: 10, questionTypes: ["shape" as const] }] };
    await expect(pretrainBlip2({ world: WORLD, out: path.join(os.tmpdir(), "never-written") }, bad)).rejects.toThrow(
      new RegExp(
        `the instruct phases' steps \\(10\\) must be positive integers summing to steps.instruct \\(${BLIP2_PLAN.steps.instruct}\\)`,
      ),
    );
    const empty = {
      ...BLIP2_PLAN,
      instructPhases: [
        { steps: 0, questionTypes: ["shape" as const] },
        { steps: BLIP2_PLAN.steps.instruct, questionTypes: ["color" as const] },
      ],
    };
    await expect(pretrainBlip2({ world: WORLD, out: path.join(os.tmpdir(), "never-written") }, empty)).rejects.toThrow(
      /steps \(0 \+ \d+\) must be positive integers/,
    );
  });
});

describe("loading", () => {
  it("refuses a transformers BLIP-2 checkpoint, naming what a lab bridge needs", () => {
    expect(() => loadBlip2Pipeline(path.join(__dirname, "fixtures/hf/blip2/model"))).toThrow(
      /is not an mllm-labs BLIP-2 bridge \(expected model_type "blip-2" with mllm_labs.vision_checkpoint/,
    );
  });
});

describe("the committed checkpoint (data/checkpoints/blip2)", () => {
  const hasCheckpoint = fs.existsSync(path.join(CHECKPOINT, "card.json"));
  // The card's numbers; the first test checks that `eval` reproduces them.
  const card = hasCheckpoint ? JSON.parse(fs.readFileSync(path.join(CHECKPOINT, "card.json"), "utf8")) : undefined;

  it.runIf(hasCheckpoint)(
    "loads, fits the size budget, and `eval` reproduces the card without leaking tensors",
    async () => {
      expect(fs.statSync(path.join(CHECKPOINT, "model.safetensors")).size).toBeLessThanOrEqual(5.6e6);
      expect(card.train_seconds).toBeLessThanOrEqual(30 * 60);
      const pipeline = loadBlip2Pipeline(CHECKPOINT);
      expect(pipeline.bridge.parameterCount()).toBe(card.parameters);
      const before = tf.memory().numTensors;
      const result = await evaluateBlip2(pipeline, WORLD);
      expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
      pipeline.dispose();
      expect(Object.keys(result.metrics).sort()).toEqual(Object.keys(card.metrics).sort());
      for (const [name, value] of Object.entries(result.metrics))
        expect(Math.abs(value - card.metrics[name]), `${name}: eval ${value}, card ${card.metrics[name]}`).toBeLessThanOrEqual(
          0.01 * Math.max(1, Math.abs(card.metrics[name])),
        );
      expect(Object.keys(result.baselines).sort()).toEqual(Object.keys(card.baselines).sort());
      for (const [baseline, values] of Object.entries(result.baselines)) {
        for (const [name, value] of Object.entries(values))
          expect(
            Math.abs(value - card.baselines[baseline][name]),
            `${baseline} ${name}: eval ${value}, card ${card.baselines[baseline][name]}`,
          ).toBeLessThanOrEqual(0.01 * Math.max(1, Math.abs(card.baselines[baseline][name])));
      }
    },
    600_000,
  );

  it.runIf(hasCheckpoint)(
    "evaluateBlip2 with a limit measures only the first test scenes and returns what it generated",
    async () => {
      const pipeline = loadBlip2Pipeline(CHECKPOINT);
      try {
        await expect(evaluateBlip2(pipeline, WORLD, { limit: 1 })).rejects.toThrow(/limit must be an integer ≥ 2 .*got 1/);
        await expect(evaluateBlip2(pipeline, WORLD, { limit: 2.5 })).rejects.toThrow(/got 2.5/);
        const before = tf.memory().numTensors;
        const { metrics, outputs } = await evaluateBlip2(pipeline, WORLD, { limit: 6 });
        expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
        expect(outputs.references).toHaveLength(6);
        for (const path of ["blip2", "instruct", "blind"] as const) expect(outputs.captions[path]).toHaveLength(6);
        expect(outputs.questions.length).toBe(outputs.references.length * 3);
        expect(outputs.questions.every((q) => q.image >= 0 && q.image < 6)).toBe(true);
        for (const answers of Object.values(outputs.answers)) expect(answers).toHaveLength(outputs.questions.length);
        // The metrics are those of the outputs: VQA accuracy recomputed from the returned answers.
        const scores = outputs.questions.map((q, k) => vqaAccuracy(outputs.answers.blip2[k], q.answers));
        expect(metrics.vqa_accuracy).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / scores.length, 6);
      } finally {
        pipeline.dispose();
      }
    },
    300_000,
  );

  it.runIf(hasCheckpoint)("beats its baselines: captions (CIDEr-D ≥ 2× blind, > another image's), color VQA, retrieval", () => {
    const { metrics, baselines } = card;
    for (const type of ["color", "shape"])
      expect(
        Number.isFinite(metrics[`instruct_vqa_${type}_accuracy`]) && Number.isFinite(baselines.blind[`vqa_${type}_accuracy`]),
        `${type} numbers on the card`,
      ).toBe(true);
    expect(metrics.caption_cider_d).toBeGreaterThanOrEqual(2 * baselines.blind.caption_cider_d); // issue 15 target
    expect(metrics.caption_cider_d).toBeGreaterThan(baselines.other_image.caption_cider_d);
    for (const prefix of ["", "instruct_"])
      expect(
        metrics[`${prefix}vqa_color_accuracy`] - baselines.blind[`${prefix}vqa_color_accuracy`],
        `${prefix}color`,
      ).toBeGreaterThan(0.15);
    expect(metrics.instruct_vqa_color_accuracy).toBeGreaterThan(baselines.other_image.instruct_vqa_color_accuracy + 0.15);
    expect(metrics.itc_image_to_text_recall_at_5).toBeGreaterThan(2 * baselines.chance.itc_image_to_text_recall_at_5);
  });

  // Issue 15's VQA target: colour and shape at least 0.3 above the blind LLM. The instruct stage tunes on shape questions,
  // then on shape and colour (BLIP2_PLAN.instructPhases); tuned on every type from the start, shape stayed at the blind
  // LLM's 0.304, and with count questions beside colour, colour was 0.26–0.31 over blind, against 0.49 without them
  // (docs/lab01-plan.md).
  for (const type of ["shape", "color"])
    it.runIf(hasCheckpoint)(
      `InstructBLIP answers ${type} questions ≥ 0.3 above the blind LLM and another image's features`,
      () => {
        const { metrics, baselines } = card; // checked finite by the test above
        const accuracy = metrics[`instruct_vqa_${type}_accuracy`];
        expect(accuracy - baselines.blind[`vqa_${type}_accuracy`], "over blind").toBeGreaterThanOrEqual(0.3);
        expect(accuracy - baselines.other_image[`instruct_vqa_${type}_accuracy`], "over another image").toBeGreaterThanOrEqual(
          0.3,
        );
      },
    );

  it.runIf(hasCheckpoint)("the card names the question types the instruct stage held out, and its phases", () => {
    const tuned = new Set<string>(card.instruct_phases.flatMap((phase: { question_types: string[] }) => phase.question_types));
    expect(card.instruct_held_out_types).toEqual(QUESTION_TYPES.filter((type) => !tuned.has(type)));
    expect(card.instruct_held_out_types.length).toBeGreaterThan(0);
    // The card was trained with the plan's phases.
    expect(card.instruct_phases).toEqual(
      BLIP2_PLAN.instructPhases!.map((phase) => ({ steps: phase.steps, question_types: [...phase.questionTypes] })),
    );
    expect(card.description).toContain(`(${card.instruct_held_out_types.join(", ")}) are held out`);
  });
});

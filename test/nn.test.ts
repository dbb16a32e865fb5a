import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import {
  causalMask,
  crossEntropy,
  GPT,
  Linear,
  MultiHeadAttention,
  Random,
  scaledDotProductAttention,
  initEngine,
  quantize,
} from "../src/index";
import { maxDifference } from "./helpers/max_difference";

beforeAll(async () => {
  await initEngine({ backend: "cpu", verbose: false });
});

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

describe("scaled dot-product attention", () => {
  it("equals a loop over queries and keys computed by hand", async () => {
    const [B, H, Tq, Tk, Dh] = [1, 2, 3, 4, 5];
    const q = tf.randomNormal([B, H, Tq, Dh], 0, 1, "float32", 1);
    const k = tf.randomNormal([B, H, Tk, Dh], 0, 1, "float32", 2);
    const v = tf.randomNormal([B, H, Tk, Dh], 0, 1, "float32", 3);
    const [qa, ka, va] = [await q.array(), await k.array(), await v.array()] as number[][][][][];
    const { output, weights } = scaledDotProductAttention(q, k, v);
    const got = (await output.array()) as number[][][][];
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < Tq; i++) {
        const scores = ka[0][h].map((key) => key.reduce((s, kv, d) => s + kv * qa[0][h][i][d], 0) / Math.sqrt(Dh));
        const max = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - max));
        const total = exps.reduce((a, b) => a + b, 0);
        for (let d = 0; d < Dh; d++) {
          const want = exps.reduce((s, e, j) => s + (e / total) * va[0][h][j][d], 0);
          expect(got[0][h][i][d]).toBeCloseTo(want, 5);
        }
      }
    }
    expect(weights.shape).toEqual([B, H, Tq, Tk]);
    tf.dispose([q, k, v, output, weights]);
  });

  it("with a causal mask gives zero weight to later positions", async () => {
    const x = tf.randomNormal([1, 1, 4, 2], 0, 1, "float32", 4);
    const mask = causalMask(4);
    const { output, weights } = scaledDotProductAttention(x, x, x, mask);
    const w = (await weights.array()) as number[][][][];
    for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) expect(w[0][0][i][j]).toBe(0);
    expect(w[0][0][0][0]).toBeCloseTo(1, 6);
    tf.dispose([x, mask, output, weights]);
  });

  it("rejects mismatched shapes with the shapes in the message", () => {
    const a = tf.zeros([1, 1, 2, 4]);
    const b = tf.zeros([1, 1, 2, 3]);
    expect(() => scaledDotProductAttention(a, b, b)).toThrow(/q has Dh=4 but k has 3/);
    expect(() => scaledDotProductAttention(tf.zeros([2, 4]), a, a)).toThrow(/expected rank-4/);
    tf.dispose([a, b]);
  });
});

describe("layers", () => {
  it("Linear uses PyTorch's [out, in] weight layout: y = x·Wᵀ + b", async () => {
    const linear = new Linear({ inFeatures: 3, outFeatures: 2, seed: 1 });
    linear.weight.assign(
      tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]),
    );
    linear.bias!.assign(tf.tensor1d([0.5, -0.5]));
    const y = linear.apply(tf.tensor3d([[[1, 0, -1]]]));
    expect(y.shape).toEqual([1, 1, 2]);
    expect(await values(y)).toEqual([-1.5, -2.5]);
    expect(() => linear.apply(tf.zeros([2, 4]))).toThrow(/expected input \[\.\.\., 3\], got \[2, 4\]/);
    linear.dispose();
    y.dispose();
  });

  it("MultiHeadAttention rejects a head count that does not divide the width", () => {
    expect(() => new MultiHeadAttention({ dim: 10, heads: 3, seed: 0 })).toThrow(/heads \(3\) must divide dim \(10\)/);
  });

  it("crossEntropy of uniform logits is ln V, and the mask selects positions", async () => {
    const logits = tf.zeros([2, 3, 5]);
    const targets = tf.tensor2d(
      [
        [0, 1, 2],
        [3, 4, 0],
      ],
      undefined,
      "int32",
    );
    const loss = crossEntropy(logits, targets);
    expect((await values(loss))[0]).toBeCloseTo(Math.log(5), 6);
    const peaked = tf.oneHot(targets, 5).mul(10);
    const masked = crossEntropy(
      peaked,
      targets,
      tf.tensor2d([
        [1, 0, 0],
        [0, 0, 0],
      ]),
    );
    expect((await values(masked))[0]).toBeLessThan(1e-3);
    tf.dispose([logits, targets, loss, peaked, masked]);
  });
});

describe("GPT", () => {
  it("gives logits [B, T, V], is the same for the same seed, and leaks nothing", async () => {
    const config = { vocabSize: 11, contextLength: 8, dim: 16, layers: 2, heads: 2, seed: 3 };
    const a = new GPT(config);
    const b = new GPT(config);
    const ids = tf.tensor2d(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      undefined,
      "int32",
    );
    const before = tf.memory().numTensors;
    const la = a.apply(ids);
    expect(tf.memory().numTensors - before).toBe(1);
    const lb = b.apply(ids);
    expect(la.shape).toEqual([2, 3, 11]);
    expect(await values(la)).toEqual(await values(lb));
    tf.dispose([ids, la, lb]);
    a.dispose();
    b.dispose();
  });

  it("is causal: changing a later token leaves earlier logits unchanged", async () => {
    const model = new GPT({ vocabSize: 7, contextLength: 6, dim: 8, layers: 1, heads: 2, seed: 0 });
    const x = model.apply(tf.tensor2d([[1, 2, 3, 4]], undefined, "int32"));
    const y = model.apply(tf.tensor2d([[1, 2, 3, 6]], undefined, "int32"));
    const [xa, ya] = [(await x.array()) as number[][][], (await y.array()) as number[][][]];
    expect(xa[0].slice(0, 3)).toEqual(ya[0].slice(0, 3));
    expect(xa[0][3]).not.toEqual(ya[0][3]);
    tf.dispose([x, y]);
    model.dispose();
  });

  it("trains: 40 Adam steps on a copy task cut the loss, with no tensor leak per step", async () => {
    const model = new GPT({ vocabSize: 8, contextLength: 8, dim: 16, layers: 1, heads: 2, seed: 1 });
    const optimizer = tf.train.adam(1e-2);
    const random = new Random(2);
    const losses: number[] = [];
    let afterFirst = 0;
    for (let step = 0; step < 40; step++) {
      const rows = Array.from({ length: 16 }, () => {
        const first = random.int(0, 8);
        return [first, first, first, first, first];
      });
      const ids = tf.tensor2d(
        rows.map((r) => r.slice(0, -1)),
        undefined,
        "int32",
      );
      const targets = tf.tensor2d(
        rows.map((r) => r.slice(1)),
        undefined,
        "int32",
      );
      const loss = optimizer.minimize(() => crossEntropy(model.apply(ids), targets), true, model.trainableParameters())!;
      losses.push((await loss.data())[0]);
      tf.dispose([ids, targets, loss]);
      if (step === 0) afterFirst = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(afterFirst);
    expect(losses[39]).toBeLessThan(losses[0] / 3);
    optimizer.dispose();
    model.dispose();
  });

  it("validates its config", () => {
    expect(() => new GPT({ vocabSize: 0, contextLength: 8, dim: 16, layers: 1, heads: 2 })).toThrow(
      /config.vocabSize must be a positive integer, got 0/,
    );
    expect(() => new GPT({ vocabSize: 5, contextLength: 8, dim: 16, layers: 1, heads: 3 })).toThrow(
      /GPT: heads \(3\) must divide dim \(16\)/,
    );
  });

  it("outputAttentions: one causal [B, H, T, T] per block, rows summing to 1, the logits of apply, the weights of the block's attention; no leak", async () => {
    const model = new GPT({ vocabSize: 9, contextLength: 8, dim: 16, layers: 2, heads: 4, seed: 5 });
    const ids = tf.tensor2d(
      [
        [1, 2, 3, 4, 5],
        [8, 7, 6, 5, 4],
      ],
      undefined,
      "int32",
    );
    const before = tf.memory().numTensors;
    const { logits, attentions } = model.forward(ids, { outputAttentions: true });
    expect(tf.memory().numTensors - before).toBe(3); // logits and two attention tensors
    expect(attentions!.map((a) => a.shape)).toEqual([
      [2, 4, 5, 5],
      [2, 4, 5, 5],
    ]);
    const plain = model.apply(ids);
    expect(await maxDifference(logits, plain)).toBe(0);
    const weights = (await attentions![1].array()) as number[][][][];
    for (const row of weights.flat(2)) expect(row.reduce((sum, w) => sum + w, 0)).toBeCloseTo(1, 5);
    for (const head of weights.flat(1)) for (let i = 0; i < 5; i++) for (let j = i + 1; j < 5; j++) expect(head[i][j]).toBe(0);
    // Block 0's weights, computed by hand as lab 00 did before the option existed.
    const byHand = tf.tidy(() => {
      const x = model.tokenEmbedding.apply(ids).add(model.positionEmbedding.apply(tf.range(0, 5, 1, "int32")));
      const block = model.blocks[0];
      return block.attention.applyWithWeights(block.norm1.apply(x), causalMask(5)).weights;
    });
    expect(await maxDifference(attentions![0], byHand)).toBe(0);
    const withoutOption = model.forward(ids);
    expect(withoutOption.attentions).toBeUndefined();
    tf.dispose([ids, logits, plain, byHand, withoutOption.logits, ...attentions!]);
    expect(tf.memory().numTensors).toBe(before - 1);
    model.dispose();
  });
});

describe("Module.dispose", () => {
  it("frees a child's quantized weight too (QLoRA models leaked their packed codes and constants)", async () => {
    const before = tf.memory().numTensors;
    const model = new GPT({ vocabSize: 16, contextLength: 8, dim: 64, layers: 1, heads: 2, seed: 0 });
    await quantize(model, { type: "nf4", doubleQuant: true, skipModules: [] });
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    model.dispose();
    expect(tf.memory().numTensors, "tensors left after dispose").toBe(before);
  });
});

describe("causalMask", () => {
  it("with keys > queries masks, for query i, the keys after position keys − queries + i", async () => {
    const mask = causalMask(2, 4);
    expect(await mask.array()).toEqual([
      [0, 0, 0, -1e9],
      [0, 0, 0, 0],
    ]);
    expect(() => causalMask(3, 2)).toThrow(/keys must be an integer ≥ queries \(3\), got 2/);
    mask.dispose();
  });
});

/**
 * The engine's backward walk (src/engine/backprop.ts): the same gradients as tfjs's `tf.variableGrads`, bit
 * for bit, on several models and on graphs that stress the bookkeeping (a tensor used twice, a gradient
 * handed on unchanged, outputs without a gradient); no tensor leaks; and a lower peak of memory.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { valueAndGradients } from "../src/engine/backprop";
import { LlamaForCausalLM, type LlamaConfig } from "../src/models/llama";
import { GPT } from "../src/models/gpt";
import { getLoraModel } from "../src/peft/lora";
import { quantize } from "../src/peft/quantize";
import { crossEntropy } from "../src/train/loss";
import { AdamW } from "../src/train/adamw";
import type { Module } from "../src/nn/module";
import { Linear } from "../src/nn/linear";
import { LoraLayer } from "../src/peft/lora_layer";
import { recordTape, releaseTape } from "../src/engine/tfjs_internals";

const LLAMA: LlamaConfig = {
  vocabSize: 48,
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKeyValueHeads: 2,
  seed: 3,
};

beforeAll(() => {
  registerNativeBackend();
});

const tokens = (B: number, T: number, V: number, offset: number) =>
  tf.tensor2d(
    Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 7 + t * 3 + offset) % V)),
    [B, T],
    "int32",
  );

interface Case {
  readonly name: string;
  /** The model and its loss, built on the current backend. */
  build(): Promise<{ model: Module; loss: () => tf.Scalar; dispose: () => void }>;
}

const llamaLoss = (model: LlamaForCausalLM) => {
  const inputs = tokens(2, 6, LLAMA.vocabSize, 0);
  const targets = tokens(2, 6, LLAMA.vocabSize, 1);
  return { loss: () => crossEntropy(model.apply(inputs), targets), dispose: () => tf.dispose([inputs, targets]) };
};

const LORA = { r: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "down_proj"], init: false as const };

const CASES: Case[] = [
  {
    name: "llama (full fine-tuning)",
    build: async () => {
      const model = new LlamaForCausalLM(LLAMA);
      return { model, ...llamaLoss(model) };
    },
  },
  {
    name: "llama + LoRA",
    build: async () => {
      const model = new LlamaForCausalLM(LLAMA);
      getLoraModel(model, LORA);
      return { model, ...llamaLoss(model) };
    },
  },
  {
    name: "llama + QLoRA (NF4, double quantization)",
    build: async () => {
      const model = new LlamaForCausalLM(LLAMA);
      await quantize(model, { type: "nf4", doubleQuant: true });
      getLoraModel(model, LORA);
      return { model, ...llamaLoss(model) };
    },
  },
  {
    name: "gpt",
    build: async () => {
      const model = new GPT({ vocabSize: 40, contextLength: 8, dim: 32, layers: 2, heads: 4, seed: 2 });
      const inputs = tokens(2, 8, 40, 0);
      const targets = tokens(2, 8, 40, 5);
      return {
        model,
        loss: () => crossEntropy(model.apply(inputs), targets),
        dispose: () => tf.dispose([inputs, targets]),
      };
    },
  },
];

async function values(tensors: (tf.Tensor | undefined)[]): Promise<(Float32Array | undefined)[]> {
  return Promise.all(tensors.map(async (t) => (t ? ((await t.data()) as Float32Array) : undefined)));
}

describe.each(["cpu", "native"])("valueAndGradients on %s", (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
  });

  it.each(CASES.map((c) => [c.name, c] as const))(
    "%s: gradients bit-identical to tf.variableGrads, no leak, lower peak",
    async (_, c) => {
      const { model, loss, dispose } = await c.build();
      const variables = model.trainableParameters();
      const before = tf.memory().numTensors;

      let reference: { value: tf.Scalar; grads: Record<string, tf.Tensor> } | undefined;
      // tf.profile returns the same object every time: read the peak before the next profile.
      const referencePeak = (
        await tf.profile(() => {
          reference = tf.variableGrads(loss, variables);
          return [];
        })
      ).peakBytes;
      const expectedValue = (await reference!.value.data())[0];
      const expected = await values(variables.map((v) => reference!.grads[v.name]));
      tf.dispose([reference!.value, ...Object.values(reference!.grads)]);
      expect(tf.memory().numTensors).toBe(before);

      let mine: { value: tf.Scalar; grads: (tf.Tensor | undefined)[] } | undefined;
      const peak = (
        await tf.profile(() => {
          mine = valueAndGradients(loss, variables);
          return [];
        })
      ).peakBytes;
      expect((await mine!.value.data())[0]).toBe(expectedValue);
      const actual = await values(mine!.grads);
      expect(actual.length).toBe(expected.length);
      let compared = 0;
      actual.forEach((grad, i) => {
        expect(grad === undefined, variables[i].name).toBe(expected[i] === undefined);
        if (grad) {
          // Bit for bit: the same kernels in the same order.
          expect(
            Buffer.from(grad.buffer, grad.byteOffset, grad.byteLength).equals(
              Buffer.from(expected[i]!.buffer, expected[i]!.byteOffset, expected[i]!.byteLength),
            ),
            variables[i].name,
          ).toBe(true);
          compared++;
        }
      });
      expect(compared).toBeGreaterThan(0);
      tf.dispose([mine!.value, ...(mine!.grads.filter(Boolean) as tf.Tensor[])]);
      expect(tf.memory().numTensors, "tensors left behind by the walk").toBe(before);
      expect(peak, "peak bytes: the walk frees what it consumed").toBeLessThan(referencePeak);
      dispose();
      model.dispose();
    },
  );

  it("bookkeeping: a tensor used twice, a gradient handed on unchanged, an output without a gradient", async () => {
    const a = tf.variable(tf.tensor1d([0.5, -1.5, 2, 3]));
    const b = tf.variable(tf.tensor1d([1, 2, -3, 0.25]));
    const passThrough = tf.customGrad((x: tf.Tensor, save: tf.GradSaveFunc) => {
      save([x]);
      return { value: x.mul(2), gradFunc: (dy: tf.Tensor) => [dy] };
    });
    const f = () =>
      tf.tidy(() => {
        const x = a.mul(b); // used twice below
        const [top] = tf.split(x, 2); // two outputs; the second gets no gradient
        const twice = (passThrough as (x: tf.Tensor) => tf.Tensor)(x.add(x));
        return twice.sum().add(top.square().sum()).add(x.mul(x).sum()) as tf.Scalar;
      });
    const before = tf.memory().numTensors;
    const reference = tf.variableGrads(f, [a, b]);
    const mine = valueAndGradients(f, [a, b]);
    for (const [i, v] of [a, b].entries())
      expect(Array.from(await mine.grads[i]!.data())).toEqual(Array.from(await reference.grads[v.name].data()));
    tf.dispose([reference.value, mine.value, ...Object.values(reference.grads), ...(mine.grads as tf.Tensor[])]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });

  it("a LoRA layer saves no [N, out] activation for its sum, with the gradients of tfjs's add and mul bit for bit", async () => {
    const base = new Linear({ inFeatures: 24, outFeatures: 20, bias: false, seed: 1 });
    const lora = new LoraLayer(base);
    lora.add("default", { r: 4, alpha: 8, seed: 2, init: false });
    base.adapter = lora;
    const { A, B, scale } = lora.weights("default");
    const x = tf.randomNormal([5, 24], 0, 1, "float32", 3) as tf.Tensor2D;
    const probe = tf.randomNormal([5, 20], 0, 1, "float32", 4);
    const loss = (f: () => tf.Tensor) => () => f().mul(probe).sum() as tf.Scalar;
    // The formula before: output + B(A(x))·scale in plain tfjs ops.
    const before = tf.variableGrads(
      loss(() => tf.matMul(x, base.weight, false, true).add(tf.matMul(tf.matMul(x, A, false, true), B, false, true).mul(scale))),
      [A, B],
    );
    const after = valueAndGradients(
      loss(() => base.apply(x)),
      [A, B],
    );
    for (const [i, v] of [A, B].entries())
      expect(Array.from(await after.grads[i]!.data()), v.name).toEqual(Array.from(await before.grads[v.name].data()));
    const { tape, value } = recordTape(() => base.apply(x).sum() as tf.Scalar);
    const savedBySum = tape
      .filter((node) => node.kernelName === "Add" || node.kernelName === "Multiply")
      .flatMap((node) => (node.saved ?? []).filter((t) => t instanceof tf.Tensor).map((t) => t.shape.join("x")));
    expect(savedBySum, "no [5, 20] tensor kept by an add or a mul").not.toContain("5x20");
    for (const node of tape) tf.dispose((node.saved ?? []).filter((t) => t instanceof tf.Tensor) as tf.Tensor[]);
    releaseTape();
    tf.dispose([value, x, probe, before.value, after.value, ...Object.values(before.grads), ...(after.grads as tf.Tensor[])]);
    base.dispose();
  });

  it("a frozen Linear: the same output and input gradient as the fused product, bit for bit, and no weight gradient computed", async () => {
    const layer = new Linear({ inFeatures: 37, outFeatures: 29, bias: false, seed: 6 });
    layer.weight.trainable = false;
    const x = tf.variable(tf.randomNormal([11, 37], 0, 1, "float32", 7));
    const probe = tf.randomNormal([11, 29], 0, 1, "float32", 8);
    const fused = () => tf.fused.matMul({ a: x, b: layer.weight, transposeB: true });
    const reference = tf.variableGrads(() => fused().mul(probe).sum() as tf.Scalar, [x]);
    const mine = valueAndGradients(() => layer.apply(x).mul(probe).sum() as tf.Scalar, [x]);
    expect(Array.from(await mine.grads[0]!.data())).toEqual(Array.from(await reference.grads[x.name].data()));
    const [outFused, outPlain] = [fused(), layer.apply(x)];
    expect(Array.from(await outPlain.data())).toEqual(Array.from(await outFused.data()));
    // The plain product on the tape, not tfjs's fused one (whose custom gradient computes dW eagerly).
    const { tape, value } = recordTape(() => layer.apply(x).sum() as tf.Scalar);
    const kernels = tape.map((node) => node.kernelName);
    expect(kernels).toContain("BatchMatMul"); // its gradient's thunks are lazy: dW is never asked for
    expect(kernels.filter((name) => /fused/i.test(name))).toEqual([]);
    for (const node of tape) tf.dispose((node.saved ?? []).filter((t) => t instanceof tf.Tensor) as tf.Tensor[]);
    releaseTape();
    tf.dispose([value, x, probe, outFused, outPlain, reference.value, mine.value, reference.grads[x.name], mine.grads[0]!]);
    layer.dispose();
  });

  it("AdamW.minimize keeps no gradient and no optimizer state for frozen weights", async () => {
    const model = new LlamaForCausalLM(LLAMA);
    getLoraModel(model, LORA);
    const { loss, dispose } = llamaLoss(model);
    const optimizer = new AdamW();
    const trainable = model.trainableParameters();
    const all = model.namedParameters().map(([, v]) => v);
    expect(all.length).toBeGreaterThan(trainable.length);
    const before = tf.memory().numBytes;
    optimizer.minimize(loss, all).dispose();
    const trainableBytes = trainable.reduce((sum, v) => sum + v.size * 4, 0);
    // Two moments per trainable weight, and nothing else stays.
    expect(tf.memory().numBytes - before).toBe(2 * trainableBytes);
    expect(() =>
      optimizer.minimize(
        loss,
        all.filter((v) => !v.trainable),
      ),
    ).toThrow(/none of the \d+ variables is trainable/);
    optimizer.dispose();
    dispose();
    model.dispose();
  });
});

/**
 * The fused 4-bit product (src/kernels/quantized_matmul, native/quantized_matmul.cc): x · Wᵀ and its input
 * gradient dy · W equal the composite (dequantize, then multiply) within float rounding, on random shapes
 * including odd ones, with and without double quantization; the dequantization it reads is the one
 * src/peft/quantize_4bit.ts defines, exactly; a QLoRA layer's training step keeps no float copy of W.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { valueAndGradients } from "../src/engine/backprop";
import { measurePeakBytes, startMemoryMeter } from "../src/engine/memory";
import { hasFusedKernels } from "../src/kernels/registry";
import { QUANTIZED_MATMUL, dequantize4bit, quantizedMatMul, quantizedMatMulComposite } from "../src/kernels/quantized_matmul";
import { QuantizedWeight4bit } from "../src/peft/quantized_weight";
import { dequantize4bit as dequantizeReference, quantize4bit } from "../src/peft/quantize_4bit";
import { Linear } from "../src/nn/linear";
import { LoraLayer } from "../src/peft/lora_layer";
import { Random } from "../src/util/random";
import { maxDifference } from "./helpers/max_difference";

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A random weight [out, in], quantized. */
function randomWeight(out: number, inFeatures: number, seed: number, doubleQuant: boolean, blockSize = 64): QuantizedWeight4bit {
  const random = new Random(seed);
  const values = Float32Array.from({ length: out * inFeatures }, () => (random.next() - 0.5) * 0.1);
  return new QuantizedWeight4bit(quantize4bit(values, [out, inFeatures], { type: "nf4", doubleQuant, blockSize }));
}

const randomMatrix = (rows: number, columns: number, seed: number) =>
  tf.randomNormal([rows, columns], 0, 1, "float32", seed) as tf.Tensor2D;

/** max |a − b| relative to max |b|: float rounding of sums over a few hundred products is well under 1e-5. */
async function relativeDifference(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const scale = tf.tidy(() => b.abs().max());
  const value = (await maxDifference(a, b)) / (await scale.data())[0];
  scale.dispose();
  return value;
}

// [N, out, in, blockSize]: odd sizes, a block straddling rows, one row, several panels with a remainder.
const SHAPES: [number, number, number, number][] = [
  [3, 5, 7, 64],
  [17, 130, 33, 64],
  [64, 257, 129, 64],
  [1, 300, 200, 128],
  [9, 96, 190, 6],
  [5, 1100, 300, 64], // over 2^18 values: two panels each way, the second partial
];

describe("quantizedMatMul on native", () => {
  it("has the fused kernels on native", () => {
    expect(hasFusedKernels(QUANTIZED_MATMUL, "native")).toBe(true);
  });

  it.each([false, true])(
    "dequantize4bit (tensors) = quantize_4bit's reference dequantization exactly (double quant %s)",
    async (dq) => {
      const random = new Random(7);
      const values = Float32Array.from({ length: 37 * 19 }, () => random.next() - 0.5);
      const state = quantize4bit(values, [37, 19], { doubleQuant: dq });
      const weight = new QuantizedWeight4bit(state);
      const restored = dequantize4bit(weight.tensors);
      expect(Array.from(await restored.data())).toEqual(Array.from(dequantizeReference(state)));
      restored.dispose();
      weight.dispose();
    },
  );

  it.each(SHAPES.flatMap((shape) => [false, true].map((dq) => [...shape, dq] as const)))(
    "N=%i out=%i in=%i block=%i dq=%s: forward and input gradient = composite within float rounding",
    async (N, out, inFeatures, blockSize, dq) => {
      const before = tf.memory().numTensors;
      const weight = randomWeight(out, inFeatures, N + out + inFeatures, dq, blockSize);
      const x = randomMatrix(N, inFeatures, 1);
      const probe = randomMatrix(N, out, 2); // a loss Σ probe ⊙ y, so dy = probe
      const fused = quantizedMatMul(x, weight.tensors);
      const composite = quantizedMatMulComposite(x, weight.tensors, true);
      expect(fused.shape).toEqual([N, out]);
      expect(await relativeDifference(fused, composite)).toBeLessThan(1e-5);
      const fusedGrad = tf.grad((input: tf.Tensor) =>
        quantizedMatMul(input as tf.Tensor2D, weight.tensors)
          .mul(probe)
          .sum(),
      )(x);
      const compositeGrad = tf.grad((input: tf.Tensor) =>
        quantizedMatMulComposite(input as tf.Tensor2D, weight.tensors, true)
          .mul(probe)
          .sum(),
      )(x);
      expect(fusedGrad.shape).toEqual([N, inFeatures]);
      expect(await relativeDifference(fusedGrad, compositeGrad)).toBeLessThan(1e-5);
      // Not vacuous: the product is not zero.
      const largest = tf.tidy(() => composite.abs().max());
      expect((await largest.data())[0]).toBeGreaterThan(0);
      largest.dispose();
      tf.dispose([x, probe, fused, composite, fusedGrad, compositeGrad]);
      weight.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it("the same product on cpu (composite) and native (fused)", async () => {
    const weight = randomWeight(70, 45, 3, true);
    const x = randomMatrix(6, 45, 4);
    const native = quantizedMatMul(x, weight.tensors);
    const nativeValues = await native.data();
    await tf.setBackend("cpu");
    try {
      expect(hasFusedKernels(QUANTIZED_MATMUL, "cpu")).toBe(false);
      const cpu = quantizedMatMul(x, weight.tensors);
      const cpuValues = await cpu.data();
      const scale = Math.max(...Array.from(cpuValues, Math.abs));
      const worst = Math.max(...Array.from(cpuValues, (v, i) => Math.abs(v - nativeValues[i])));
      expect(worst / scale).toBeLessThan(1e-5);
      cpu.dispose();
    } finally {
      await tf.setBackend("native");
    }
    tf.dispose([x, native]);
    weight.dispose();
  });

  it("rejects a weight whose block constants do not match its shape, naming both", () => {
    const weight = randomWeight(8, 16, 5, false);
    const x = randomMatrix(2, 15, 6);
    expect(() => quantizedMatMul(x, weight.tensors)).toThrow(/x must be float32 \[N, 16\], got float32 \[2,15\]/);
    const tensors = { ...weight.tensors, absmax: tf.zeros([1]) as tf.Tensor1D };
    const y = randomMatrix(2, 16, 6);
    expect(() => quantizedMatMul(y, tensors)).toThrow(/absmax must have 2 values \(one per block of 64\), got 1/);
    tf.dispose([x, y, tensors.absmax]);
    weight.dispose();
  });

  it("a QLoRA layer's training step holds no float copy of its 4-bit weight", async () => {
    startMemoryMeter();
    const layer = new Linear({ inFeatures: 512, outFeatures: 384, bias: false, seed: 1 });
    layer.setQuantizedWeight(await QuantizedWeight4bit.fromTensor(layer.weight, { doubleQuant: true }));
    const lora = new LoraLayer(layer);
    lora.add("default", { r: 4, alpha: 8, seed: 2, init: false });
    layer.adapter = lora;
    const x = randomMatrix(4, 512, 3);
    const { A, B } = lora.weights("default");
    const { peakBytes, startBytes } = await measurePeakBytes(() => {
      const { value, grads } = valueAndGradients(() => layer.apply(x).square().mean() as tf.Scalar, [A, B]);
      tf.dispose([value, ...(grads as tf.Tensor[])]);
    });
    const floatWeightBytes = 512 * 384 * 4;
    // A few [4, 384] activations and gradients (6 KB each; ≈ 48 KB in all): far under the float weight (786 KB).
    expect(peakBytes - startBytes).toBeGreaterThan(4 * 384 * 4);
    expect(peakBytes - startBytes).toBeLessThan(floatWeightBytes / 8);
    tf.dispose(x);
    layer.dispose();
  });
});

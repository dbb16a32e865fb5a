/** A product with a 4-bit weight in tfjs ops: dequantize the whole weight, then multiply (what backends without the kernel run). */
import * as tf from "@tensorflow/tfjs";
import { dequantizeBlockwise } from "../dequantize";
import type { Quantized4bitTensors } from "./attrs";

/** W as float32 [out, in]: the block constants (8-bit ones dequantized first), then the 4-bit codes. */
export function dequantize4bit(weight: Quantized4bitTensors): tf.Tensor2D {
  return tf.tidy(() => {
    const [out, inFeatures] = weight.shape;
    const nested = weight.nested;
    const constants = nested
      ? dequantizeBlockwise(nested.packed, tf.tensor1d(nested.code), nested.absmax, {
          bits: 8,
          count: Math.ceil((out * inFeatures) / weight.blockSize),
          blockSize: nested.blockSize,
        }).add(tf.scalar(nested.offset))
      : weight.absmax!;
    return dequantizeBlockwise(weight.packed, tf.tensor1d(weight.code), constants, {
      bits: 4,
      count: out * inFeatures,
      blockSize: weight.blockSize,
    }).reshape([out, inFeatures]) as tf.Tensor2D; // [out·in] → [out, in]
  });
}

/**
 * x: [N, in] → x · Wᵀ [N, out] (`transposeWeight`, a linear layer's forward), or x: [N, out] → x · W [N, in]
 * (its gradient with respect to the input).
 */
export function quantizedMatMulComposite(x: tf.Tensor2D, weight: Quantized4bitTensors, transposeWeight: boolean): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(x, dequantize4bit(weight), false, transposeWeight));
}

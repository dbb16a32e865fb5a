/**
 * `quantizedMatMul(x, W)`: x · Wᵀ with W a 4-bit blockwise-quantized weight (NF4 or FP4, optionally with
 * double-quantized block constants), the product of a QLoRA linear layer, differentiable in x. On `native`
 * it never materialises the float weight: the C++ kernel dequantizes W a panel at a time into the GEMM,
 * forward (x · Wᵀ) and backward (dy · W) alike; on `webgpu` a WGSL program dequantizes each value it
 * reads. On `cpu` the composite dequantizes the whole weight and multiplies. Either way nothing but the quantized weight is kept for the backward pass (the gradient
 * dequantizes again), so a QLoRA step never holds a float copy of its frozen weights.
 *
 * Paper: Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs" (2023).
 * Reference: bitsandbytes `autograd/_functions.py` (`MatMul4Bit`: forward `x @ dequantize_4bit(W).t()`,
 * backward `dy @ dequantize_4bit(W)`), `functional.py` (`dequantize_4bit`).
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import type { Quantized4bitTensors, QuantizedMatMulAttrs } from "./attrs";
import { dequantize4bit, quantizedMatMulComposite } from "./composite";
import { quantizedMatMulGradNative, quantizedMatMulNative } from "./native";
import { quantizedMatMulGradWebGpu, quantizedMatMulWebGpu } from "./webgpu";

export { dequantize4bit, quantizedMatMulComposite, type Quantized4bitTensors, type QuantizedMatMulAttrs };

export const QUANTIZED_MATMUL_KERNEL = "MllmQuantizedMatMul";
export const QUANTIZED_MATMUL_GRAD_KERNEL = "MllmQuantizedMatMulGrad";

export const QUANTIZED_MATMUL = defineKernel({
  op: "quantizedMatMul",
  summary: "x · Wᵀ with W 4-bit blockwise-quantized (NF4, + double quantization); gradient dy · W; no float W",
  composite: quantizedMatMulComposite,
  kernels: {
    [QUANTIZED_MATMUL_KERNEL]: { native: quantizedMatMulNative, webgpu: quantizedMatMulWebGpu },
    [QUANTIZED_MATMUL_GRAD_KERNEL]: { native: quantizedMatMulGradNative, webgpu: quantizedMatMulGradWebGpu },
  },
});

function validate(x: tf.Tensor, weight: Quantized4bitTensors, columns: number, what: string): void {
  if (x.rank !== 2 || x.shape[1] !== columns || x.dtype !== "float32")
    throw new Error(`quantizedMatMul: ${what} must be float32 [N, ${columns}], got ${x.dtype} [${x.shape}]`);
  const [out, inFeatures] = weight.shape;
  const blocks = Math.ceil((out * inFeatures) / weight.blockSize);
  if (weight.packed.dtype !== "int32" || weight.packed.size * 4 < Math.ceil((out * inFeatures) / 2))
    throw new Error(
      `quantizedMatMul: packed must be int32 words holding ${Math.ceil((out * inFeatures) / 2)} bytes, got ${weight.packed.dtype} [${weight.packed.shape}]`,
    );
  if (weight.code.length !== 16)
    throw new Error(`quantizedMatMul: the 4-bit code must have 16 values, got ${weight.code.length}`);
  if (weight.nested && weight.nested.code.length !== 256)
    throw new Error(`quantizedMatMul: the 8-bit code must have 256 values, got ${weight.nested.code.length}`);
  if (!weight.nested && weight.absmax?.size !== blocks)
    throw new Error(
      `quantizedMatMul: absmax must have ${blocks} values (one per block of ${weight.blockSize}), got ${weight.absmax?.size}`,
    );
}

/** The kernel's inputs besides x, by name. */
function weightInputs(weight: Quantized4bitTensors): tf.NamedTensorMap {
  const { packed, absmax, nested } = weight;
  return nested ? { packed, absmaxCodes: nested.packed, nestedAbsmax: nested.absmax } : { packed, absmax: absmax! };
}

function attrsOf(weight: Quantized4bitTensors): QuantizedMatMulAttrs {
  return {
    outFeatures: weight.shape[0],
    inFeatures: weight.shape[1],
    blockSize: weight.blockSize,
    nestedBlockSize: weight.nested?.blockSize ?? 0,
    offset: weight.nested?.offset ?? 0,
    code: weight.code,
    nestedCode: weight.nested?.code ?? new Float32Array(0),
  };
}

/** x: [N, out] → x · W [N, in]: the gradient of {@link quantizedMatMul} with respect to its input. */
export function quantizedMatMulGrad(dy: tf.Tensor2D, weight: Quantized4bitTensors): tf.Tensor2D {
  validate(dy, weight, weight.shape[0], "dy");
  if (!hasFusedKernels(QUANTIZED_MATMUL)) return quantizedMatMulComposite(dy, weight, false);
  return tf
    .engine()
    .runKernel(
      QUANTIZED_MATMUL_GRAD_KERNEL,
      { x: dy, ...weightInputs(weight) },
      attrsOf(weight) as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
}

/**
 * x: [N, in] → x · Wᵀ [N, out], W [out, in] quantized. The weight's tensors must outlive the backward pass
 * (they are a layer's frozen weight): the gradient reads them again rather than saving anything.
 */
export function quantizedMatMul(x: tf.Tensor2D, weight: Quantized4bitTensors): tf.Tensor2D {
  validate(x, weight, weight.shape[1], "x");
  const fused = hasFusedKernels(QUANTIZED_MATMUL);
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor2D;
    return {
      value: fused
        ? (tf
            .engine()
            .runKernel(
              QUANTIZED_MATMUL_KERNEL,
              { x: input, ...weightInputs(weight) },
              attrsOf(weight) as unknown as tf.NamedAttrMap,
            ) as tf.Tensor2D)
        : quantizedMatMulComposite(input, weight, true),
      // Nothing saved: dy · W dequantizes W again.
      gradFunc: (dy: tf.Tensor) => quantizedMatMulGrad(dy as tf.Tensor2D, weight),
    };
  });
  return product(x) as tf.Tensor2D;
}
